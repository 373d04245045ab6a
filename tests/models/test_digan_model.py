"""DIGAN generator and discriminators at a tiny config: the contract and the project-page uses."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vidgan.config import from_dict, load_preset, to_dict
from vidgan.data.pairs import sample_pair_times
from vidgan.errors import VidganError
from vidgan.models import get_model
from vidgan.models.digan import (
    DIGANConfig,
    DIGANGenerator,
    MotionDiscriminator,
    build_discriminators,
)
from vidgan.nn.inr import CoordGrid
from vidgan.sample import difference_video

# 32 px with one upsampling stage (blocks b4..b16 at 16 px, b32 at 32 px with an extra conv)
TINY = DIGANConfig(
    resolution=32,
    input_resolution=16,
    z_dim=32,
    w_dim=32,
    motion_dim=24,
    channel_base=256,
    channel_max=16,
    fmm_rank=2,
    emb_size_low=8,
    emb_size_high=12,
    emb_high_from=32,
    extra_convs_from=32,
    d_channel_base=256,
    d_channel_max=16,
)


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Perturb every parameter so zero-initialised biases do not hide mistakes."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def G() -> DIGANGenerator:
    torch.manual_seed(0)
    g = DIGANGenerator(TINY).eval()
    _randomise(g)
    return g


def _latents(G, batch=2, seed=1):
    return G.sample_latents(batch, generator=torch.Generator().manual_seed(seed))


def test_structure_and_config_round_trip(G):
    assert G.synthesis.block_names == ["b4", "b8", "b16", "b32"]
    assert G.synthesis.num_up == 1 and G.num_ws == 1 + 2 + 2 + 3 + 1
    assert G.synthesis.b32.coord_fuser.emb_size == 12 and G.synthesis.b8.coord_fuser is None
    assert len(G.synthesis.b32.extra_convs) == 1 and len(G.synthesis.b16.extra_convs) == 0
    assert from_dict(DIGANConfig, to_dict(TINY)) == TINY
    spec = get_model("digan")
    assert spec.config_cls is DIGANConfig
    assert isinstance(spec.build_generator(TINY), DIGANGenerator)
    assert set(spec.build_discriminators(TINY)) == {"video", "image"}


def test_frame_times_span_the_training_clip(G):
    torch.testing.assert_close(G.frame_times(16), torch.arange(16) / 15)
    assert G.frame_times(32)[-1] == pytest.approx(31 / 15)  # beyond 16 frames: extrapolation


@torch.no_grad()
def test_determinism_under_a_seeded_generator(G):
    a, b, c = _latents(G), _latents(G), _latents(G, seed=2)
    assert torch.equal(a.content, b.content) and torch.equal(a.motion, b.motion)
    assert not torch.equal(a.content, c.content)
    t = G.frame_times(4)
    v1, v2 = G.generate(a, t), G.generate(b, t)
    assert v1.shape == (2, 3, 4, 32, 32) and torch.equal(v1, v2)
    assert (G.generate(c, t) - v1).abs().amax() > 1e-2


@torch.no_grad()
def test_batch_of_two_equals_one_plus_one(G):
    lat = _latents(G)
    t = torch.tensor([0.0, 0.4, 1.7])
    both = G.generate(lat, t)
    one = torch.cat([G.generate(lat.select(slice(i, i + 1)), t) for i in range(2)])
    # BLAS picks other kernels for 1 and 2 rows in the mapping: float rounding only
    torch.testing.assert_close(both, one, atol=2e-5, rtol=0)
    # per-video times [B, T]
    tt = torch.tensor([[0.0, 0.5], [0.25, 3.0]])
    per = G.generate(lat, tt)
    torch.testing.assert_close(
        per[1:], G.generate(lat.select(slice(1, 2)), tt[1]), atol=2e-5, rtol=0
    )


@torch.no_grad()
def test_single_frame_equals_the_frame_inside_the_video(G):
    lat = _latents(G)
    t = G.frame_times(16)
    video = G.generate(lat, t)
    for k in (0, 7, 15):
        frame = G.frame(lat.content, lat.motion, float(t[k]))
        # 1 frame vs 16 frames per GEMM: other kernel blockings, float rounding only (AVX-512)
        torch.testing.assert_close(frame, video[:, :, k], atol=1e-5, rtol=0)


@torch.no_grad()
def test_chunked_generation_equals_one_shot_exactly(G):
    lat = _latents(G)
    t = G.frame_times(21)  # past the training clip, not a multiple of the chunk
    full = G.generate(lat, t)
    chunked = G.generate_chunked(lat.content, lat.motion, t, chunk=8)
    assert torch.equal(chunked, full)
    pieces = list(G.iter_chunks(lat.content, lat.motion, t, chunk=16))
    assert [p.shape[2] for p in pieces] == [16, 5]


@torch.no_grad()
def test_motion_code_does_not_act_at_t0_but_does_later(G):
    lat = _latents(G)
    other = torch.randn(lat.motion.shape, generator=torch.Generator().manual_seed(9))
    t = torch.tensor([0.0, 1.0])
    a = G(lat.content, lat.motion, t)
    b = G(lat.content, other, t)
    torch.testing.assert_close(a[:, :, 0], b[:, :, 0], atol=1e-6, rtol=0)
    assert (a[:, :, 1] - b[:, :, 1]).abs().amax() > 1e-3


@torch.no_grad()
def test_space_upsampling_follows_the_coordinate_grid(G):
    """Invariant (U = 1 upsampling stage): up2[2i + 1, 2j] == base[i, j] for odd i, even j.

    There every stage of the 2x render sees exactly the coordinates the base render uses; at the
    other pixels the 16 px stage is sampled on its 2x denser grid, so they differ.
    """
    lat = _latents(G)
    t = torch.tensor([0.3, 1.4])
    base = G.generate(lat, t)
    up = G.upsampled(lat.content, lat.motion, t, 2)
    assert up.shape == (2, 3, 2, 64, 64)
    torch.testing.assert_close(up[..., 3::4, ::4], base[..., 1::2, ::2], atol=2e-5, rtol=0)
    assert (up[..., 1::4, 2::4] - base[..., ::2, 1::2]).abs().amax() > 1e-3
    up4 = G.upsampled(lat.content, lat.motion, t, 4)
    assert up4.shape[-1] == 128
    torch.testing.assert_close(up4[..., 7::8, ::8], base[..., 1::2, ::2], atol=2e-5, rtol=0)


@torch.no_grad()
def test_zoom_out_keeps_the_training_view_in_the_centre(G):
    lat = _latents(G)
    t = torch.tensor([0.5])
    base = G.generate(lat, t)
    wide = G.zoomed_out(lat.content, lat.motion, t, 1.5)
    assert wide.shape[-1] == 48
    torch.testing.assert_close(wide[..., 8:40, 8:40], base, atol=2e-5, rtol=0)
    with pytest.raises(VidganError, match="multiple of 2"):
        G.synthesize(G.mapping_for(lat.content), lat.motion, t, coords=CoordGrid(33))


@torch.no_grad()
def test_diverse_motion_shares_the_content(G):
    lat = _latents(G, batch=1)
    motions = torch.randn(3, TINY.motion_dim, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([0.0, 0.6, 1.0])
    videos = G.diverse_motion(lat.content, motions, t)
    want = G(lat.content.expand(3, -1), motions, t)
    torch.testing.assert_close(videos, want, atol=2e-5, rtol=0)
    torch.testing.assert_close(videos[1:, :, 0], videos[:1, :, 0].expand(2, -1, -1, -1))
    assert (videos[1, :, 2] - videos[0, :, 2]).abs().amax() > 1e-3
    diff = difference_video(videos)
    assert diff[:, :, 0].abs().amax() == 0
    torch.testing.assert_close(diff[:, :, 2], (videos[:, :, 2] - videos[:, :, 0]) / 2)


@torch.no_grad()
def test_truncation_pulls_towards_w_avg(G):
    z = _latents(G).content
    w = G.mapping_for(z)
    torch.testing.assert_close(
        G.mapping_for(z, truncation_psi=0.5), G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg)
    )


def test_training_mode_tracks_w_avg():
    g = DIGANGenerator(TINY).train()
    z = torch.randn(4, TINY.z_dim)
    w = g.mapping_for(z)
    torch.testing.assert_close(g.mapping.w_avg, (1 - TINY.w_avg_beta) * w.detach().mean(0))


def test_bad_inputs_raise_clear_errors(G):
    lat = _latents(G)
    with pytest.raises(VidganError, match="z_content"):
        G(lat.content[:, :5], lat.motion, torch.tensor([0.0]))
    with pytest.raises(VidganError, match="z_motion"):
        G(lat.content, lat.motion[:, :5], torch.tensor([0.0]))


def test_gradients_reach_generator_and_both_discriminators(G):
    g = DIGANGenerator(TINY).train()
    _randomise(g, 3)
    Ds = build_discriminators(TINY)
    lat = _latents(g, batch=2)
    t1, t2, dt = sample_pair_times(2, "digan", generator=torch.Generator().manual_seed(5))
    video = g(lat.content, lat.motion, torch.stack([t1, t2], dim=1))  # (B, 3, 2, H, W)
    pair = MotionDiscriminator.from_video(video, dt)
    frames = video.permute(0, 2, 1, 3, 4).reshape(4, 3, 32, 32)  # b c t h w -> (b t) c h w
    loss = torch.nn.functional.softplus(-Ds["video"](pair)).mean()
    loss = loss + torch.nn.functional.softplus(-Ds["image"](frames)).mean()
    loss.backward()
    for name, module in (("G", g), ("video", Ds["video"]), ("image", Ds["image"])):
        for pname, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} has no gradient"


def test_motion_discriminator_sees_dt_and_the_frame_order():
    torch.manual_seed(0)
    D = build_discriminators(TINY)["video"].eval()
    _randomise(D, 1)
    f1, f2 = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    dt = torch.tensor([0.2, 0.9])
    x = MotionDiscriminator.pair_input(f1, f2, dt)
    assert x.shape == (2, 7, 32, 32) and torch.equal(x[:, 6, 5, 7], dt)
    with torch.no_grad():
        base = D(x)
        assert (D(MotionDiscriminator.pair_input(f1, f2, dt.flip(0))) - base).abs().max() > 0
        assert (D(MotionDiscriminator.pair_input(f2, f1, dt)) - base).abs().max() > 0


def test_conditional_variant_uses_labels():
    cfg = dataclasses.replace(TINY, num_classes=3)
    torch.manual_seed(0)
    g = DIGANGenerator(cfg).eval()
    _randomise(g, 2)
    Ds = build_discriminators(cfg)
    lat = g.sample_latents(2, generator=torch.Generator().manual_seed(0))
    assert lat.labels is not None and lat.labels.shape == (2,)
    t = torch.tensor([0.5])
    with torch.no_grad():
        a = g(lat.content, lat.motion, t, labels=torch.tensor([0, 1]))
        b = g(lat.content, lat.motion, t, labels=torch.tensor([2, 1]))
        assert (a[0] - b[0]).abs().amax() > 1e-3
        torch.testing.assert_close(a[1], b[1])
        x = a[:, :, 0]
        la, lb = Ds["image"](x, torch.tensor([0, 1])), Ds["image"](x, torch.tensor([2, 1]))
        assert (la[0] - lb[0]).abs() > 0
    with pytest.raises(VidganError, match="labels"):
        g(lat.content, lat.motion, t)
    assert "embed.weight" in dict(g.mapping.named_parameters())


def test_bf16_autocast_runs_on_cpu(G):
    lat = _latents(G)
    t = torch.tensor([0.0, 0.7])
    with torch.no_grad():
        ref = G.generate(lat, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            video = G.generate(lat, t)
            Ds = build_discriminators(TINY)
            logits = Ds["video"](MotionDiscriminator.from_video(video, t[1:].expand(2)))
    assert video.dtype == torch.bfloat16 and torch.isfinite(video.float()).all()
    assert torch.isfinite(logits.float()).all()
    err = (video.float() - ref).abs().mean() / ref.abs().mean()
    assert err < 0.05
    # training-mode mapping (w_avg tracking) and truncation also run under autocast
    g = DIGANGenerator(TINY).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = g.mapping_for(lat.content, truncation_psi=0.7)
    assert torch.isfinite(w.float()).all() and g.mapping.w_avg.dtype == torch.float32
    assert g.mapping.w_avg.abs().sum() > 0


@pytest.mark.parametrize("name", ["digan-paper-128", "digan-toy-32", "digan-toy-64"])
def test_presets_build(name):
    preset = load_preset(name)
    assert preset["model_name"] == "digan"
    cfg = from_dict(DIGANConfig, preset["model"])
    with torch.device("meta"):
        g = DIGANGenerator(cfg)
        Ds = build_discriminators(cfg)
    n_g = sum(p.numel() for p in g.parameters())
    n_d = sum(p.numel() for p in Ds["image"].parameters())
    if name == "digan-paper-128":
        assert cfg == DIGANConfig()
        assert round(n_g / 1e6, 1) == 63.5  # REFERENCES.md: 63.5M generator parameters
        assert g.num_ws == 13 and g.synthesis.b128.conv0.in_channels == 768
    else:
        assert n_g < 1.5e6 and n_d < 0.5e6  # CPU-sized
