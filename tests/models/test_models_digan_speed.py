"""DIGAN's fast render path against the textbook computation: same frames, same gradients.

The fast path (vidgan.nn.inr, DIGANSynthesis.render) computes the Fourier features once per
video and turns the time shift into a rotation of the next layer's weights, applies the FMM gain
and bias in place, and adds upsampled maps by broadcasting. The reference below renders every
frame the way the paper and the release describe it: features sin/cos(W.xy + b + h(t)) per
frame, nearest upsampling, concatenation, lrelu(W' x + b) * sqrt(2), skip RGB sum.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vidgan.models.digan import DIGANConfig, DIGANGenerator
from vidgan.nn.inr import CoordGrid, TemporalFourierFeatures, coordinate_grid, upsample_nearest

# 32 px, two upsampling stages (b4..b8 at 8 px, b16 and b32 upsample with fresh features)
CFG = DIGANConfig(
    resolution=32,
    input_resolution=8,
    z_dim=16,
    w_dim=16,
    motion_dim=12,
    channel_base=128,
    channel_max=12,
    fmm_rank=2,
    emb_size_low=6,
    emb_size_high=10,
    emb_high_from=32,
    extra_convs_from=32,
)
TOL = 1e-5  # the fast path reorders float sums; frames are O(1)


@pytest.fixture(scope="module")
def G() -> DIGANGenerator:
    torch.manual_seed(0)
    g = DIGANGenerator(CFG).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return g


def _lrelu_fmm(weight, bias, x):
    """lrelu_0.2(W' x + b) * sqrt(2) on `[B, T, C, P]`, textbook form."""
    y = torch.einsum("boi,btip->btop", weight, x) + bias[:, None]
    return F.leaky_relu(y, 0.2) * math.sqrt(2)


def reference_render(G: DIGANGenerator, w, z_m, t, coords: CoordGrid):
    """Frames `[B, T, 3, H, W]` computed frame-wise, without any of the fast path's rewrites."""
    syn = G.synthesis
    ws = w[:, None].expand(-1, syn.num_ws, -1)
    x = img = prev = None
    for block, (wf, wc, wr), n in zip(syn.blocks(), syn.w_index, syn.stage_sizes(coords.size)):
        if block.coord_fuser is not None:
            grid = coordinate_grid(n, fov=coords.fov)
            feats = block.coord_fuser(ws[:, wf], z_m, t, grid)  # (B, T, 2E, n*n)
            if block.up:
                x = torch.cat([upsample_nearest(x, prev), feats], dim=2)
                img = upsample_nearest(img, prev)
            else:
                x = feats if x is None else torch.cat([x, feats], dim=2)
        for conv, i in zip(block.convs(), wc):
            x = _lrelu_fmm(conv.modulate(ws[:, i]), conv.bias, x)
        rgb_w = block.torgb.modulate(ws[:, wr])
        rgb = torch.einsum("boi,btip->btop", rgb_w, x) + block.torgb.bias[:, None]
        img = rgb if img is None else img + rgb
        prev = n
    b, n_t = t.shape
    return img.reshape(b, n_t, 3, prev, prev)


def _inputs(batch=2, n_t=5, seed=3):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(batch, CFG.w_dim, generator=g)
    z_m = torch.randn(batch, CFG.motion_dim, generator=g)
    t = torch.rand(batch, n_t, generator=g) * 3 - 1  # off-grid, negative and beyond the clip
    return w, z_m, t


@pytest.mark.parametrize(
    "coords", [CoordGrid(32), CoordGrid(64), CoordGrid(48, fov=1.5)], ids=["1x", "up2", "zoom"]
)
def test_fast_render_equals_the_framewise_reference(G, coords):
    w, z_m, t = _inputs()
    with torch.no_grad():
        want = reference_render(G, w, z_m, t, coords)
        got = G.synthesize(w, z_m, t, coords=coords).permute(0, 2, 1, 3, 4)
    assert want.abs().max() > 0.5  # not a degenerate all-zero video
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)


def _grads(G, render, w) -> list[torch.Tensor]:
    G.zero_grad()
    w = w.clone().requires_grad_(True)
    (render(w) * torch.linspace(-1, 1, 32)).sum().backward()  # uneven weights per column
    return [w.grad] + [p.grad.clone() for p in G.parameters() if p.grad is not None]


def test_fast_render_has_the_reference_gradients(G):
    """Training renders through the same path: the in-place ops must keep autograd exact."""
    w, z_m, t = _inputs(n_t=3)
    coords = CoordGrid(32)
    want = _grads(G, lambda w: reference_render(G, w, z_m, t, coords), w)
    got = _grads(G, lambda w: G.synthesize(w, z_m, t, coords=coords).permute(0, 2, 1, 3, 4), w)
    assert len(got) == len(want) > 10
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_time_shift_as_a_weight_rotation_equals_shifted_features():
    torch.manual_seed(4)
    f = TemporalFourierFeatures(w_dim=8, motion_dim=8, emb_size=7)
    w, z_m = torch.randn(2, 8), torch.randn(2, 8)
    t = torch.tensor([[0.0, 0.4, 1.7], [2.0, -0.5, 0.1]])
    freqs, phase = f.content(w)
    spatial = f.spatial_phase(freqs, coordinate_grid(5))
    shift = f.phase_shift(f.motion_code(w, z_m), t)
    weight = torch.randn(2, 9, 14)  # a layer with 9 outputs fed by the 2E = 14 features
    want = weight[:, None] @ f.features(spatial, phase, shift)  # (B, T, 9, P)
    rotated = f.rotate_weight(weight, shift)  # (B, T, 9, 14), once per frame
    got = (rotated.reshape(2, 27, 14) @ f.content_features(spatial, phase)).reshape(2, 3, 9, 25)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # the rotation keeps each (sin, cos) pair's norm: it only moves the phase
    e = 7
    pair = lambda m: m[..., :e] ** 2 + m[..., e:] ** 2  # noqa: E731
    torch.testing.assert_close(pair(rotated), pair(weight)[:, None].expand_as(pair(rotated)))


def _channel_major(G, w, z_m, t, coords):
    """The autograd render path (a trace forces it), frames `[B, T, 3, H, W]`."""
    content = G.prepare(w, z_m)
    return G.synthesis.render(content, t, coords, trace={})


def test_inference_path_in_bf16_is_as_close_to_fp32_as_the_autograd_path(G):
    """Under bf16 autocast the pixel-major inference path (fused oneDNN linears) and the autograd
    path round differently; both stay within bf16 error of fp32, and the inference path is no
    further from fp32 than twice the autograd path's error."""
    w, z_m, t = _inputs()
    coords = CoordGrid(64)
    with torch.no_grad():
        ref = G.synthesis.render(G.prepare(w, z_m), t, coords)  # fp32, pixel path
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = G.synthesis.render(G.prepare(w, z_m), t, coords)
            slow = _channel_major(G, w, z_m, t, coords)
            assert isinstance(G.prepare(w, z_m).convs[0][0], torch.Tensor)
            assert G.prepare(w, z_m).convs[0][0].dtype == torch.float32  # styles stay fp32
    assert fast.dtype == torch.bfloat16
    scale = ref.abs().max()
    err_fast = (fast.float() - ref).abs().max() / scale
    err_slow = (slow.float() - ref).abs().max() / scale
    assert err_fast < 0.03 and err_slow < 0.03
    assert err_fast <= 2 * err_slow + 1e-3


def test_frame_groups_do_not_change_the_frames(G, monkeypatch):
    """Inference renders frames in groups of `PIXEL_GROUP` pixels (more frames per group in the
    blocks before the first upsampling): one frame per group, mixed group sizes and all frames
    at once give the same video."""
    w, z_m, t = _inputs(n_t=5)
    coords = CoordGrid(32)
    with torch.no_grad():
        monkeypatch.setattr(type(G.synthesis), "PIXEL_GROUP", 1)
        one = G.synthesize(w, z_m, t, coords=coords)
        monkeypatch.setattr(type(G.synthesis), "PIXEL_GROUP", 1024)  # 8 px: 16, 32 px: 1 frame
        mixed = G.synthesize(w, z_m, t, coords=coords)
        monkeypatch.setattr(type(G.synthesis), "PIXEL_GROUP", 1 << 30)
        whole = G.synthesize(w, z_m, t, coords=coords)
        channel = _channel_major(G, w, z_m, t, coords).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(one, whole, atol=TOL, rtol=0)  # GEMM blocking may differ
    torch.testing.assert_close(mixed, whole, atol=TOL, rtol=0)
    torch.testing.assert_close(whole, channel, atol=TOL, rtol=0)
