"""FMR generator/discriminator behaviour at a tiny config (16 px, 4-frame clips)."""

from __future__ import annotations

import json

import pytest
import torch

from vidgan.config import from_dict, to_dict
from vidgan.errors import ConfigError, VidganError
from vidgan.models import get_model
from vidgan.models.fmr import (
    DeltaVideoDiscriminator,
    FMRConfig,
    FMRGenerator,
    ImageDiscriminator,
    PatchImageDiscriminator,
    PatchVideoDiscriminator,
    VideoDiscriminator,
    build_discriminators,
)

TINY = FMRConfig(
    image_size=16,
    dim_z_content=16,
    dim_z_motion=16,
    freq_bands=(3.0, 7.0),
    n_mlp=2,
    channels={4: 16, 8: 16, 16: 8},
    d_channels={4: 16, 8: 16, 16: 8},
    video_length=4,
    vd_resize_ratio=0.5,
)
TOL = {"atol": 2e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    g = FMRGenerator(TINY).eval()
    with torch.no_grad():  # non-zero noise strengths and biases so every path matters
        for p in g.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return g


def _latents(G, batch=2, seed=1):
    return G.sample_latents(batch, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_seeded_sampling_is_deterministic(G):
    a, b = _latents(G), _latents(G)
    for x, y in zip([a.content, a.motion, *a.noise], [b.content, b.motion, *b.noise]):
        assert torch.equal(x, y)
    assert [n.shape[-1] for n in a.noise] == [4, 8, 8, 16, 16]
    t = G.frame_times(4)
    assert torch.equal(G.generate(a, t), G.generate(b, t))
    assert not torch.equal(G.generate(_latents(G, seed=2), t), G.generate(a, t))


@torch.no_grad()
def test_batch_of_two_equals_one_plus_one(G):
    lat = _latents(G, batch=2)
    t = G.frame_times(4)
    both = G.generate(lat, t)
    assert both.shape == (2, 3, 4, 16, 16)
    singles = torch.cat([G.generate(lat.select(slice(i, i + 1)), t) for i in range(2)])
    torch.testing.assert_close(both, singles, **TOL)


@torch.no_grad()
@pytest.mark.parametrize("n_frames", [3, 7, 33])
def test_any_length_shares_the_time_axis(G, n_frames):
    lat = _latents(G)
    video = G.generate(lat, G.frame_times(n_frames))
    assert video.shape == (2, 3, n_frames, 16, 16) and torch.isfinite(video).all()
    # frames depend only on their own time: a prefix of the grid renders the same frames
    short = G.generate(lat, G.frame_times(2))
    torch.testing.assert_close(video[:, :, :2], short, **TOL)
    # and frames at different times differ (motion is on)
    assert (video[:, :, 1] - video[:, :, 0]).abs().max() > 1e-3


@torch.no_grad()
def test_time_grids_interpolate_and_extrapolate(G):
    lat = _latents(G)
    base = G.generate(lat, G.frame_times(4))
    torch.testing.assert_close(G.frame_times(4), torch.tensor([-1.0, -0.5, 0.0, 0.5]))
    dense = G.generate(lat, G.time_grid(8))  # 2x interpolation over [-1, 1)
    torch.testing.assert_close(dense[:, :, ::2], base, **TOL)
    long = G.generate(lat, G.frame_times(8))  # 2x extrapolation over [-1, 3)
    torch.testing.assert_close(G.frame_times(8), G.time_grid(8, -1.0, 3.0))
    torch.testing.assert_close(long[:, :, :4], base, **TOL)
    # per-video times [B, T]: video 1 at shifted times equals rendering it alone at those times
    t2 = torch.stack([G.frame_times(4), G.frame_times(4) + 0.3])
    mixed = G.generate(lat, t2)
    alone = G.generate(lat.select(slice(1, 2)), t2[1])
    torch.testing.assert_close(mixed[1:], alone, **TOL)


@torch.no_grad()
def test_training_times_are_sorted_grid_points(G):
    t = G.sample_training_times(64, 2, generator=torch.Generator().manual_seed(0))
    grid = G.frame_times(4)
    assert t.shape == (64, 2) and (t[:, 1] >= t[:, 0]).all()
    assert torch.isin(t, grid).all()


@torch.no_grad()
def test_frequency_edits(G):
    lat = _latents(G)
    t = G.frame_times(4)
    z_c, z_m, noise = lat.content, lat.motion, lat.noise
    z_m2 = torch.randn(z_m.shape, generator=torch.Generator().manual_seed(9))
    # no bands kept: w(t) is constant, so (with per-video noise) every frame is the same
    still = G.with_edit(G.edit(edges=(3.0,), keep=()))(z_c, z_m, t, noise=noise)
    assert torch.equal(still[:, :, 1:], still[:, :, :1].expand_as(still[:, :, 1:]))
    # every band driven by z_m2 == plain generation with z_m2 (same for every generator)
    all_bands = G.edit(edges=(2.0, 5.0), band_motions={0: z_m2, 1: z_m2, 2: z_m2})
    want = G(z_c, z_m2, t, noise=noise)
    torch.testing.assert_close(G.with_edit(all_bands)(z_c, z_m, t, noise=noise), want, **TOL)
    per_gen = G.edit(generator_motions={0: z_m2, 1: z_m2})
    torch.testing.assert_close(G.with_edit(per_gen)(z_c, z_m, t, noise=noise), want, **TOL)
    # a code shared by the batch ([Dm]) broadcasts
    shared = G.edit(band_motions={0: z_m2[0]})
    torch.testing.assert_close(G.with_edit(shared)(z_c, z_m, t, noise=noise)[0], want[0], **TOL)
    # altering only the high band changes the video but not w_c
    alt = G.w_of_t(z_c, z_m, t, edit=G.edit(edges=(3.0,), band_motions={1: z_m2}))
    assert (alt - G.w_of_t(z_c, z_m, t)).abs().max() > 1e-4
    # ratio edges are fractions of the largest learned |w| of each band generator
    for spec, m_ratio, lff in zip(G.frequency_spectrum(), G.band_masks((0.5,), ratio=True), G.LFF):
        assert torch.equal(m_ratio, lff.band_masks((0.5 * float(spec.max()),)))
    with pytest.raises(VidganError):
        G.edit(edges=(3.0,), keep=(5,))
    with pytest.raises(VidganError):
        G.edit(edges=(5.0, 3.0))


def _all_discriminators():
    ch = {4: 16, 8: 16, 16: 8}
    return {
        "image": ImageDiscriminator(size=16, channels=ch),
        "patch_image": PatchImageDiscriminator(size=16, channels=ch),
        "video": VideoDiscriminator(size=16, channels=ch),
        "patch_video": PatchVideoDiscriminator(size=8, channels=ch),
        "delta": DeltaVideoDiscriminator(size=16, channels=ch),
    }


def _d_out(name, D, video, dt):
    if name in ("image", "patch_image"):
        return D(video[:, :, 0])
    if name == "delta":
        return D(video[:, :, :2], dt)
    return D(video)


def test_gradients_reach_every_parameter(G):
    G.train()
    try:
        lat = _latents(G)
        video = G.generate(lat, G.sample_training_times(2, 16))
        loss = video.sum() * 0
        ds = _all_discriminators()
        for name, D in ds.items():
            loss = loss + _d_out(name, D, video, torch.rand(2)).sum()
        loss.backward()
        for label, module in [("G", G), *ds.items()]:
            for pname, p in module.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, f"{label}.{pname}"
    finally:
        G.zero_grad(set_to_none=True)
        G.eval()


@torch.no_grad()
@pytest.mark.parametrize("batch", [1, 3, 5, 6])
def test_discriminators_any_batch_and_length(batch):
    torch.manual_seed(0)
    ds = _all_discriminators()
    video = torch.rand(batch, 3, 16, 16, 16) * 2 - 1
    for name, D in ds.items():
        out = _d_out(name, D.eval(), video, torch.rand(batch))
        assert out.shape[0] == batch and torch.isfinite(out).all()
    # each sample's logit depends on itself (up to the shared stddev feature): patch Ds exactly
    one = ds["patch_video"](video[:1])
    torch.testing.assert_close(ds["patch_video"](video)[:1], one, **TOL)
    # the 3-D patch D takes any clip length, including the 2-frame clips that crash the release
    for n_t in (1, 2, 3, 5):
        assert torch.isfinite(ds["patch_video"](video[:, :, :n_t])).all()
    # delta D: dt as [B] or [B, 1]
    d = ds["delta"]
    dt = torch.rand(batch)
    torch.testing.assert_close(d(video[:, :, :2], dt), d(video[:, :, :2], dt[:, None]))
    with pytest.raises(VidganError):
        d(video[:, :, :3], dt)


@torch.no_grad()
def test_video_discriminator_pools_full_resolution_video():
    torch.manual_seed(0)
    D = build_discriminators(TINY)["video"]
    assert isinstance(D, PatchVideoDiscriminator) and D.size == 8
    video = torch.rand(2, 3, 4, 16, 16)
    pooled = torch.nn.functional.avg_pool3d(video, (1, 2, 2))
    torch.testing.assert_close(D(video), D(pooled), atol=0, rtol=0)
    with pytest.raises(VidganError):
        D(torch.rand(2, 3, 4, 12, 12))


def test_bf16_autocast_on_cpu(G):
    lat = _latents(G)
    t = G.frame_times(16)
    with torch.no_grad():
        ref = G.generate(lat, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = G.generate(lat, t)
            logits = [
                _d_out(n, D.eval(), ref, torch.rand(2)) for n, D in _all_discriminators().items()
            ]
    assert torch.isfinite(low.float()).all() and all(
        torch.isfinite(x.float()).all() for x in logits
    )
    err = (low.float() - ref).abs().mean() / ref.abs().mean()
    assert err < 0.1


def test_config_round_trip_registry_and_errors():
    data = json.loads(json.dumps(to_dict(TINY)))  # JSON turns the channel keys into strings
    back = from_dict(FMRConfig, data)
    G = FMRGenerator(back)
    assert G.renderer.convs[2].conv.weight.shape[1] == 8
    assert back.freq_bands == TINY.freq_bands
    spec = get_model("fmr")
    assert spec.config_cls is FMRConfig
    assert isinstance(spec.build_generator(TINY), FMRGenerator)
    assert set(spec.build_discriminators(TINY)) == {"image", "video"}
    assert TINY.band_ranges == [(0.0, 3.0), (3.0, 7.0)]
    assert FMRConfig(freq_bands=(3, 3)).band_ranges == [(0.0, 3.0), (0.0, 3.0)]
    # default (official run.sh) widths: min(512, 16384 * 2 // res)
    with torch.device("meta"):
        big = FMRGenerator(FMRConfig())
    assert big.renderer.convs[-1].conv.weight.shape[1] == 128
    with pytest.raises(ConfigError):
        FMRConfig(image_size=48)
    with pytest.raises(ConfigError):
        FMRConfig(num_classes=3)
    with pytest.raises(ConfigError):
        FMRConfig(image_size=16, vd_resize_ratio=0.1)


@pytest.mark.parametrize("name", ["fmr-paper-256", "fmr-toy-32", "fmr-toy-64", "fmr-tiny"])
def test_presets_build(name):
    from vidgan.config import load_preset

    data = load_preset(name)
    assert data["model_name"] == "fmr"
    cfg = from_dict(FMRConfig, data["model"])
    with torch.device("meta"):
        G = FMRGenerator(cfg)
        ds = build_discriminators(cfg)
    assert G.renderer.size == cfg.image_size
    assert ds["video"].size == cfg.video_d_size
    if name == "fmr-paper-256":  # run.sh: 256 px, one band, video D at half resolution
        assert (cfg.image_size, cfg.freq_bands, cfg.video_d_size) == (256, (7.0,), 128)
        assert cfg.channels is None and cfg.d_channels is None
