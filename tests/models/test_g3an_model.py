"""G3AN generator and discriminators: contract, spectral norm, attention layouts, conditioning."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidgan.config import from_dict, load_preset, to_dict
from vidgan.errors import ConfigError, VidganError
from vidgan.models import get_model
from vidgan.models.g3an import (
    SUPPORTED_LENGTHS,
    FactorizedSpatioTemporalAttention,
    G3ANConfig,
    G3ANGenerator,
    ImageDiscriminator,
    SelfAttention,
    SNConv2d,
    SNConv3d,
    SNConvTranspose3d,
    VideoDiscriminator,
    build_discriminators,
    count_parameters,
)

# tiny widths; F-SA after block 3 (16x16) instead of 4 (32x32) keeps the attention cheap
TINY = G3ANConfig(ch=2, video_d_ch=2, image_d_ch=2, attention_after=3)


def tiny_generator(**kw) -> G3ANGenerator:
    torch.manual_seed(0)
    G = G3ANGenerator(dataclasses.replace(TINY, **kw))
    # a trained-like generator: non-zero attention gains, so the F-SA path matters
    for p in G.parameters():
        if p.shape == (1,):
            p.data.fill_(0.7)
    return G.eval()


# --- config ---------------------------------------------------------------------------------


def test_config_round_trip_and_presets():
    cfg = G3ANConfig(ch=8, channel_mults=(4, 4, 2, 1, 1), mode="3d", num_classes=5)
    assert from_dict(G3ANConfig, to_dict(cfg)) == cfg
    assert from_dict(G3ANConfig, load_preset("g3an-paper-64")["model"]) == G3ANConfig()
    toy = from_dict(G3ANConfig, load_preset("g3an-toy-64")["model"])
    assert toy.ch == 8 and not toy.use_attention  # F-SA off, as in the official train.py
    assert get_model("g3an").config_cls is G3ANConfig


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "2d"},
        {"attention_layout": "scrambled"},
        {"channel_mults": (8, 4, 2, 1)},
        {"ch": 0},
        {"attention_after": 6},
        {"ch": 1, "attention_reduction": 16},
        {"num_classes": -1},
    ],
)
def test_config_rejects_bad_values(kw):
    with pytest.raises(ConfigError):
        G3ANConfig(**kw)


@pytest.mark.slow
def test_paper_widths_give_the_official_parameter_counts():
    """23.1M / 8.3M / 2.8M (REFERENCES.md), built without allocating memory."""
    cfg = G3ANConfig()
    with torch.device("meta"):
        G = G3ANGenerator(cfg)
        Ds = build_discriminators(cfg)
    assert round(count_parameters(G) / 1e6, 1) == 23.1
    assert round(count_parameters(Ds["video"]) / 1e6, 1) == 8.3
    assert round(count_parameters(Ds["image"]) / 1e6, 1) == 2.8


# --- contract --------------------------------------------------------------------------------


def test_seeded_generator_is_deterministic():
    G = tiny_generator()
    g1, g2, g3 = (torch.Generator().manual_seed(s) for s in (5, 5, 6))
    a, b, c = (G.sample_latents(2, n_frames=20, generator=g) for g in (g1, g2, g3))
    assert a.motion.shape == (2, TINY.c_m, 2) and a.content.shape == (2, TINY.c_a)
    t = G.frame_times(20)
    torch.testing.assert_close(t, torch.arange(20.0))
    with torch.no_grad():
        va, vb, vc = G.generate(a, t), G.generate(b, t), G.generate(c, t)
    assert torch.equal(va, vb)
    assert (va - vc).abs().max() > 1e-3


def test_latents_are_standard_normal():
    G = tiny_generator()
    lat = G.sample_latents(4000, n_frames=16, generator=torch.Generator().manual_seed(0))
    for z in (lat.content, lat.motion):
        assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01


def test_batch_of_two_equals_one_plus_one():
    G = tiny_generator()
    lat = G.sample_latents(2, generator=torch.Generator().manual_seed(1))
    t = G.frame_times(16)
    with torch.no_grad():
        both = G.generate(lat, t)
        one = torch.cat([G.generate(lat.select([i]), t) for i in range(2)])
    torch.testing.assert_close(both, one, atol=1e-6, rtol=0)


def test_every_supported_length_and_values_in_range():
    assert tuple(range(16, 49, 4)) == SUPPORTED_LENGTHS
    assert G3ANGenerator.continuous_time is False
    G = tiny_generator()
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for n in SUPPORTED_LENGTHS:
            lat = G.sample_latents(1, n_frames=n, generator=gen)
            video = G.generate(lat, G.frame_times(n))
            assert video.shape == (1, 3, n, 64, 64)
            assert video.abs().max() <= 1 and video.std() > 1e-3
            # the motion code moves things: frames differ over time
            assert (video[:, :, 1:] - video[:, :, :-1]).abs().max() > 1e-4


@pytest.mark.parametrize("n", [0, 12, 15, 17, 52, 64])
def test_unsupported_lengths_raise(n):
    G = tiny_generator()
    with pytest.raises(VidganError, match="frames"):
        G.sample_latents(1, n_frames=n)
    with pytest.raises(VidganError):
        G.frame_times(n)


def test_forward_checks_its_inputs():
    G = tiny_generator()
    lat = G.sample_latents(1, n_frames=20)  # T0 = 2
    with pytest.raises(VidganError, match="20 frames"):
        G(lat.content, lat.motion, G.frame_times(16))
    with pytest.raises(VidganError, match=r"0\.\.T-1"):
        G(lat.content, lat.motion, G.frame_times(20) + 0.5)
    with pytest.raises(VidganError, match="z_content"):
        G(lat.content[:, :5], lat.motion, G.frame_times(20))
    with pytest.raises(VidganError, match="labels"):
        G(lat.content, lat.motion, G.frame_times(20), labels=torch.zeros(1, dtype=torch.long))
    with pytest.raises(VidganError, match="noise"):
        G(lat.content, lat.motion, G.frame_times(20), noise=[torch.zeros(1)])
    # [B, T] timestamps are accepted too
    with torch.no_grad():
        a = G(lat.content, lat.motion, G.frame_times(20))
        b = G(lat.content, lat.motion, G.frame_times(20)[None])
    assert torch.equal(a, b)


def test_gradients_reach_every_parameter_of_g_and_both_ds():
    G = tiny_generator().train()
    Ds = build_discriminators(TINY)
    lat = G.sample_latents(2, generator=torch.Generator().manual_seed(3))
    video = G.generate(lat, G.frame_times(16))
    frame = video[:, :, 7]
    # D applied twice before one backward (real then fake, as in a D step): the train-mode
    # power iteration must not break the first graph
    real = torch.rand_like(video) * 2 - 1
    loss = F.softplus(-Ds["video"](real)).mean() + F.softplus(Ds["video"](video)).mean()
    loss = loss + F.softplus(-Ds["image"](frame)).mean()
    loss.backward()
    for name, module in (("G", G), ("video D", Ds["video"]), ("image D", Ds["image"])):
        for pname, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} has no gradient"
            assert torch.isfinite(p.grad).all()


def test_modes_and_no_attention_build_and_differ():
    torch.manual_seed(0)
    lat = G3ANGenerator(TINY).sample_latents(1, generator=torch.Generator().manual_seed(4))
    outs = {}
    for kw in ({"mode": "1p2d"}, {"mode": "2p1d"}, {"mode": "3d"}, {"use_attention": False}):
        G = tiny_generator(**kw)
        with torch.no_grad():
            outs[str(kw)] = G.generate(lat, G.frame_times(16))
        kinds = [type(m.conv).__name__ for m in G.blocks[0].main]
        assert kinds == ["SNConvTranspose3d"] * (1 if kw.get("mode") == "3d" else 2)
        if "mode" in kw and kw["mode"] != "3d":
            first = G.blocks[0].main[0].conv.kernel_size
            assert first == ((4, 1, 1) if kw["mode"] == "1p2d" else (1, 4, 4))
    values = list(outs.values())
    assert all((a - b).abs().max() > 1e-4 for i, a in enumerate(values) for b in values[i + 1 :])
    assert tiny_generator(use_attention=False).fsa is None


def test_widths_follow_the_config():
    G = G3ANGenerator(G3ANConfig(ch=3, channel_mults=(5, 4, 3, 2, 1), attention_reduction=2))
    assert [b.appearance.conv.out_channels for b in G.blocks] == [15, 12, 9, 6, 3]
    assert G.fsa.temporal.value.in_channels == 12 and G.fsa.temporal.query.out_channels == 6
    assert G.to_rgb.in_channels == 6


# --- spectral norm -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "x_shape"),
    [
        (SNConvTranspose3d, nn.ConvTranspose3d, (2, 4, 3, 5, 5)),
        (SNConv3d, nn.Conv3d, (2, 4, 3, 5, 5)),
        (SNConv2d, nn.Conv2d, (2, 4, 6, 6)),
    ],
)
def test_spectral_norm_matches_torch_legacy(ours, theirs, x_shape):
    """Same state, same maths as torch.nn.utils.spectral_norm in train and eval mode."""
    torch.manual_seed(0)
    k = (2, 3, 3) if len(x_shape) == 5 else 3
    ref = nn.utils.spectral_norm(theirs(4, 6, k, stride=2, padding=1))
    mine = ours(4, 6, k, stride=2, padding=1)
    assert set(mine.state_dict()) == set(ref.state_dict())
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(x_shape)
    for training in (False, True, True):
        ref.train(training)
        mine.train(training)
        torch.testing.assert_close(mine(x), ref(x), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(mine.weight_u, ref.weight_u)
        torch.testing.assert_close(mine.weight_v, ref.weight_v)


def test_spectral_norm_iterates_only_in_training():
    torch.manual_seed(0)
    conv = SNConv3d(8, 4, 1)
    conv.weight_u.copy_(F.normalize(torch.randn(4), dim=0))  # not converged, like the release's
    u0 = conv.weight_u.clone()
    conv.eval()
    w_eval = conv.normalized_weight()
    assert torch.equal(conv.weight_u, u0)
    sigma = torch.dot(u0, conv.weight_orig.flatten(1).mv(conv.weight_v))
    torch.testing.assert_close(w_eval, conv.weight_orig / sigma)
    conv.train()
    for _ in range(50):
        conv.normalized_weight()
    assert not torch.equal(conv.weight_u, u0)
    # after many power iterations sigma is the largest singular value: ||W_SN||_2 = 1
    w = conv.normalized_weight().flatten(1)
    torch.testing.assert_close(
        torch.linalg.matrix_norm(w, ord=2), torch.tensor(1.0), atol=1e-4, rtol=0
    )


# --- attention layouts ----------------------------------------------------------------------


def _fsa(layout: str, seed: int = 0) -> FactorizedSpatioTemporalAttention:
    torch.manual_seed(seed)
    fsa = FactorizedSpatioTemporalAttention(channels=16, reduction=4, layout=layout).eval()
    for p in fsa.parameters():
        if p.shape == (1,):
            p.data.fill_(0.9)
    return fsa


@torch.no_grad()
def test_intended_layout_is_permutation_equivariant_and_release_is_not():
    """Attention has no position code: permuting frames or pixels permutes the output alike."""
    x = torch.randn(2, 16, 5, 4, 3)
    t_perm = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    s_perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))

    def permute(v):
        v = v[:, :, t_perm]
        return v.flatten(3)[..., s_perm].reshape(v.shape)

    intended, release = _fsa("intended"), _fsa("release")
    torch.testing.assert_close(intended(permute(x)), permute(intended(x)), atol=1e-5, rtol=0)
    assert (release(permute(x)) - permute(release(x))).abs().max() > 1e-2


@pytest.mark.parametrize("axis", ["time", "space"])
@torch.no_grad()
def test_intended_layout_averages_the_right_axis_under_uniform_attention(axis):
    """With q = k ~ 0 attention is uniform: out = x + gamma * mean over the attended axis of v."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 4, 3)
    for layout, expect_match in (("intended", True), ("release", False)):
        att = SelfAttention(channels=8, reduction=2, axis=axis, layout=layout).eval()
        att.gamma.data.fill_(0.5)
        for conv in (att.query, att.key):  # eval-mode SN divides by u.Wv: a huge v gives W ~ 0
            conv.weight_v.mul_(1e8)
            conv.bias.data.zero_()
        v = att.value(x)
        mean = v.mean(2, keepdim=True) if axis == "time" else v.mean((3, 4), keepdim=True)
        want = x + 0.5 * mean.expand_as(x)
        if expect_match:
            torch.testing.assert_close(att(x), want, atol=1e-6, rtol=0)
        else:
            assert (att(x) - want).abs().max() > 1e-2


@torch.no_grad()
def test_release_layout_is_the_raw_view_of_the_attention_result():
    """Release mode = the attention result read as (b, h, w, C, t) from its memory."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 4, 3, 2)
    att = SelfAttention(channels=8, reduction=2, axis="space", layout="release").eval()
    att.gamma.data.fill_(1.0)
    q, k, v = att.query(x), att.key(x), att.value(x)
    b, c, t, h, w = x.shape
    tok = [y.transpose(2, 1).reshape(b * t, -1, h * w).transpose(2, 1) for y in (q, k, v)]
    res = torch.softmax(tok[0] @ tok[1].transpose(1, 2), -1) @ tok[2]  # (b t, h w, C)
    raw = res.contiguous().view(b, h, w, c, t).permute(0, 3, 4, 1, 2)
    # unscaled scores reach ~100 here; the fused CPU kernel's fast exp leaves ~1e-5 differences,
    # a wrong layout differs by O(1)
    torch.testing.assert_close(att(x), raw + x, atol=2e-4, rtol=0)
    correct = res.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)
    assert (correct - raw).abs().max() > 0.1


# --- class-conditional ---------------------------------------------------------------------------


def test_conditional_generator_and_discriminators():
    cfg = dataclasses.replace(TINY, num_classes=3, class_embed_dim=4)
    torch.manual_seed(0)
    G = G3ANGenerator(cfg).eval()
    Ds = build_discriminators(cfg)
    lat = G.sample_latents(2, generator=torch.Generator().manual_seed(0))
    assert lat.labels is not None and lat.labels.dtype == torch.long
    assert int(lat.labels.min()) >= 0 and int(lat.labels.max()) < 3
    assert G.blocks[0].appearance.conv.in_channels == cfg.c_a + 4
    assert G.blocks[0].motion.conv.in_channels == cfg.c_m + 4
    t = G.frame_times(16)
    with torch.no_grad():
        y0 = G(lat.content, lat.motion, t, labels=torch.tensor([0, 0]))
        y1 = G(lat.content, lat.motion, t, labels=torch.tensor([1, 1]))
        y_mix = G(lat.content, lat.motion, t, labels=torch.tensor([0, 1]))
    assert (y0 - y1).abs().max() > 1e-4
    torch.testing.assert_close(y_mix[0], y0[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(y_mix[1], y1[1], atol=1e-6, rtol=0)
    with pytest.raises(VidganError, match="pass labels"):
        G(lat.content, lat.motion, t)
    with pytest.raises(VidganError, match=r"0\.\.2"):
        G(lat.content, lat.motion, t, labels=torch.tensor([0, 3]))
    with pytest.raises(VidganError, match="unconditional"):
        tiny_generator().sample_latents(1, labels=torch.tensor([0]))

    # projection discriminators: D(x, y) = D_uncond(x) + <e_y, phi(x)>
    vd, idisc = Ds["video"].eval(), Ds["image"].eval()
    with torch.no_grad():
        s0, s1 = vd(y0, torch.tensor([0, 0])), vd(y0, torch.tensor([1, 1]))
        i0, i1 = idisc(y0[:, :, 3], torch.tensor([0, 0])), idisc(y0[:, :, 3], torch.tensor([2, 2]))
    assert (s0 - s1).abs().max() > 1e-6 and (i0 - i1).abs().max() > 1e-6
    with pytest.raises(VidganError, match="pass labels"):
        vd(y0)
    # gradients reach the embeddings of G and both Ds
    G.train()
    labels = torch.tensor([2, 1])
    video = G(lat.content, lat.motion, t, labels=labels)
    (vd(video, labels).sum() + idisc(video[:, :, 0], labels).sum()).backward()
    for m in (G.label_embed, vd.projection.embed, idisc.projection.embed):
        w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
        assert w.grad is not None and w.grad.abs().sum() > 0


def test_unconditional_models_have_no_extra_parameters():
    G = G3ANGenerator(TINY)
    Ds = build_discriminators(TINY)
    assert G.label_embed is None and Ds["video"].projection is None
    assert not any("embed" in k for m in (G, *Ds.values()) for k in m.state_dict())


def test_fresh_models_are_usable_in_eval_mode():
    """u, v are power-iterated at init, so sigma is the top singular value from the start."""
    G, Ds = tiny_generator(), build_discriminators(TINY)
    for m in (G, *Ds.values()):
        for layer in m.modules():
            if hasattr(layer, "weight_orig") and layer.weight_orig.ndim > 1:
                w = layer._weight_matrix(layer.normalized_weight().detach())
                torch.testing.assert_close(
                    torch.linalg.matrix_norm(w, ord=2), torch.tensor(1.0), atol=0.05, rtol=0
                )
    lat = G.sample_latents(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        video = G.generate(lat, G.frame_times(16))
        logits = Ds["video"].eval()(video)
    assert (video.abs() > 0.999).float().mean() < 0.5  # not saturated
    assert logits.abs().max() < 10


def test_discriminators_reject_wrong_inputs_and_average_longer_clips():
    torch.manual_seed(0)
    vd, idisc = VideoDiscriminator(ch=2).eval(), ImageDiscriminator(ch=2).eval()
    with pytest.raises(VidganError, match="16 frames"):
        vd(torch.zeros(1, 3, 12, 64, 64))
    with pytest.raises(VidganError, match="64x64"):
        idisc(torch.zeros(1, 3, 32, 32))
    x = torch.rand(1, 3, 20, 64, 64) * 2 - 1
    with torch.no_grad():
        logits = torch.stack([vd(x[:, :, s : s + 16]) for s in range(5)])
        torch.testing.assert_close(vd(x), logits.mean(0), atol=1e-6, rtol=0)


def test_bf16_autocast_matches_float32():
    G = tiny_generator()
    Ds = build_discriminators(TINY)
    lat = G.sample_latents(1, generator=torch.Generator().manual_seed(5))
    t = G.frame_times(16)
    with torch.no_grad():
        ref = G.generate(lat, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = G.generate(lat, t)
            logit = Ds["video"].eval()(low)
    assert low.dtype == torch.bfloat16 and torch.isfinite(logit).all()
    assert (low.float() - ref).abs().max() < 0.05


# --- inference fast paths (issue #8) ------------------------------------------------------------


def test_eval_spectral_norm_cache_is_exact_and_follows_weight_changes():
    """Cached W_SN equals the uncached one bit for bit and is recomputed after a weight update."""
    G = tiny_generator()
    z = G.sample_latents(2, generator=torch.Generator().manual_seed(3))
    t = G.frame_times(16)
    with torch.no_grad():
        first = G.generate(z, t)
        again = G.generate(z, t)  # served from the cache
    assert torch.equal(first, again)
    conv = G.blocks[0].appearance.conv
    assert "_sn_cache" in conv.__dict__
    with torch.no_grad():
        conv.weight_orig.mul_(2.0)  # in-place update bumps the version: cache must not be stale
        conv.weight_u.neg_()
        conv.weight_v.neg_()
    G_ref = tiny_generator()
    G_ref.load_state_dict(G.state_dict())
    with torch.no_grad():
        changed = G.generate(z, t)
        fresh = G_ref.generate(z, t)  # never cached
    assert torch.equal(changed, fresh)


def test_temporal_attention_unpadded_matches_padded_reference():
    """The temporal branch skips zero-padding q, k; the result equals explicit softmax(QK^T)V."""
    torch.manual_seed(0)
    att = SelfAttention(channels=16, reduction=8, axis="time", layout="intended").eval()
    att.gamma.data.fill_(1.0)
    x = torch.randn(2, 16, 5, 3, 4)
    with torch.no_grad():
        out = att(x)
        tok = att._tokens(x)
        q, k, v = (
            F.linear(tok, c.normalized_weight().flatten(1), c.bias)
            for c in (att.query, att.key, att.value)
        )
        ref = torch.softmax(q @ k.transpose(1, 2), -1) @ v  # (b h w) t c
        ref = ref.reshape(2, 3, 4, 5, 16).permute(0, 4, 3, 1, 2) + x
    assert (out - ref).abs().max() < 1e-5
