"""FMR fast paths change no output: in-place inference layers and the channels_last renderer.

Tolerances: the fast paths reorder no sums except demodulation after (instead of before) the
up-sampling blur, and oneDNN may pick other kernels for NHWC; both move fp32 results by a few
ulps of the largest activations, so outputs must agree to 1e-5 relative / 1e-5 absolute.
"""

from __future__ import annotations

import pytest
import torch

import vidgan.nn.stylegan2 as sg
from vidgan.models.fmr import FMRConfig, FMRGenerator

TINY = FMRConfig(
    image_size=16,
    dim_z_content=16,
    dim_z_motion=16,
    freq_bands=(3.0, 7.0),
    n_mlp=2,
    channels={4: 16, 8: 16, 16: 8},
    d_channels={4: 16, 8: 16, 16: 8},
    video_length=4,
)
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    g = FMRGenerator(TINY).eval()
    with torch.no_grad():  # non-zero noise strengths and biases so every fused op matters
        for p in g.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return g


@pytest.fixture()
def plain_paths(monkeypatch):
    """Set the fast paths off for a call: plain(G, fn)."""

    def run(G, fn):
        monkeypatch.setattr(sg, "INPLACE_INFERENCE", False)
        monkeypatch.setattr(G.renderer, "channels_last", False)
        try:
            return fn()
        finally:
            monkeypatch.setattr(sg, "INPLACE_INFERENCE", True)
            monkeypatch.setattr(G.renderer, "channels_last", True)

    return run


def _lat(G, b=3):
    return G.sample_latents(b, generator=torch.Generator().manual_seed(5))


@torch.no_grad()
def test_inference_fast_paths_match_plain_maths(G, plain_paths):
    lat, t = _lat(G), G.frame_times(5)
    fast = G.generate(lat, t)
    plain = plain_paths(G, lambda: G.generate(lat, t))
    assert fast.abs().max() > 0.5  # a real signal, not all zeros
    torch.testing.assert_close(fast, plain, **TOL)
    # each fast path alone as well
    sg.INPLACE_INFERENCE = False
    try:
        torch.testing.assert_close(G.generate(lat, t), plain, **TOL)
    finally:
        sg.INPLACE_INFERENCE = True
    G.renderer.channels_last = False
    try:
        torch.testing.assert_close(G.generate(lat, t), plain, **TOL)
    finally:
        G.renderer.channels_last = True


def test_training_gradients_match_plain_maths(G, plain_paths):
    lat, t = _lat(G, 2), G.frame_times(4)

    def grads():
        G.zero_grad(set_to_none=True)
        with torch.enable_grad():
            G.generate(lat, t).square().mean().backward()
        return {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}

    fast, plain = grads(), plain_paths(G, grads)
    assert fast.keys() == plain.keys() and len(fast) > 50
    for name in fast:
        torch.testing.assert_close(fast[name], plain[name], atol=1e-5, rtol=1e-4, msg=name)
    G.zero_grad(set_to_none=True)


@torch.no_grad()
def test_inplace_layers_leave_their_inputs_alone(G):
    conv = G.renderer.convs[1]  # a 3x3 StyledConv (not up-sampling)
    x = torch.randn(2, conv.conv.in_channels, 8, 8)
    w = torch.randn(2, TINY.dim_z_content)
    noise = torch.randn(2, 1, 8, 8)
    x0, w0, n0 = x.clone(), w.clone(), noise.clone()
    a = conv(x, w, noise)
    assert torch.equal(x, x0) and torch.equal(w, w0) and torch.equal(noise, n0)
    rgb = G.renderer.to_rgbs[0]
    skip = torch.randn(2, 3, 4, 4)
    s0 = skip.clone()
    rgb(a, w, skip)
    assert torch.equal(skip, s0)
    with torch.enable_grad():  # the graph path is out of place and still differentiable
        xg = x.clone().requires_grad_(True)
        conv(xg, w, noise).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


def test_bf16_emulated_convs_match_autocast_and_fp32(G):
    """bf16 autocast, convs emulated in fp32 (CPUs without native bf16) vs the plain autocast
    convs: videos within 0.01 mean / 0.1 max abs on [-1, 1] (a dozen bf16 roundings in a row,
    0.4% each), no further from fp32 than autocast's own, and all G gradients within 5% (L2)."""
    import vidgan.precision as eq

    lat, t = _lat(G, 2), G.frame_times(4)
    saved = dict(eq._NATIVE)

    def run(emulate):
        eq._NATIVE[torch.bfloat16] = not emulate
        G.zero_grad(set_to_none=True)
        with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            v = G.generate(lat, t)
            v.float().square().mean().backward()
        return v.float().detach(), {
            n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None
        }

    try:
        (fast, gf), (plain, gp) = run(True), run(False)
    finally:
        eq._NATIVE.clear()
        eq._NATIVE.update(saved)
        G.zero_grad(set_to_none=True)
    with torch.no_grad():
        ref = G.generate(lat, t)
    assert ref.abs().max() > 0.5
    # bf16 through a dozen layers is far from fp32 (mean 0.015 here, max 0.15 on this tiny G
    # with perturbed weights): the emulation must be as close to fp32 as autocast's own convs
    err_fast, err_plain = (fast - ref).abs().mean(), (plain - ref).abs().mean()
    assert err_fast <= 1.1 * err_plain + 1e-3
    assert (fast - plain).abs().mean() <= 0.01 and (fast - plain).abs().max() <= 0.1
    assert gf.keys() == gp.keys() and len(gf) > 50
    # one-element grads (noise strengths) are sums over every pixel and mostly cancellation,
    # so the bound is on all G gradients together
    a, b = (torch.cat([g[n].flatten() for n in gf]) for g in (gf, gp))
    assert (a - b).norm() <= 0.05 * b.norm()


@torch.no_grad()
def test_torgb_matmul_and_consumed_inputs_match_the_conv_path(G):
    """Inference ToRGB as one batched matmul (both memory formats) and StyledConv scaling a
    consumed input in place: same outputs as the modulated-conv path to 1e-5."""
    rgb, conv = G.renderer.to_rgbs[0], G.renderer.convs[1]
    w = torch.randn(2, TINY.dim_z_content)
    x = torch.randn(2, rgb.conv.in_channels, 8, 8)
    ref = rgb.conv(x, w) + rgb.bias
    for fmt in (torch.contiguous_format, torch.channels_last):
        xf = x.contiguous(memory_format=fmt)
        torch.testing.assert_close(rgb(xf, w), ref, **TOL)
    x = torch.randn(2, conv.conv.in_channels, 8, 8).contiguous(memory_format=torch.channels_last)
    noise = torch.randn(2, 1, 8, 8)
    kept = conv(x, w, noise)
    torch.testing.assert_close(conv(x.clone(), w, noise, consume=True), kept, **TOL)


@torch.no_grad()
def test_frame_groups_of_the_later_layers_match_one_batch(G, monkeypatch):
    """Inference runs the later (larger) layers on groups of frames (`Renderer.GROUP_ELEMENTS`):
    single-frame groups, groups of five from the 16 px block on, and one batch give the same
    frames."""
    lat = _lat(G, b=2)
    t = G.frame_times(5)
    noise = [torch.randn(2, 1, r, r) for r in G.renderer.noise_resolutions]
    videos = {}
    # 10 frames; 8 px maps hold 16 x 64, 16 px maps 8 x 256 elements per frame
    for name, budget in (("whole", 1 << 30), ("16 px in fives", 12000), ("single", 1)):
        monkeypatch.setattr(type(G.renderer), "GROUP_ELEMENTS", budget)
        videos[name] = G(lat.content, lat.motion, t, noise=noise)
    assert videos["whole"].abs().max() > 0.1
    torch.testing.assert_close(videos["16 px in fives"], videos["whole"], **TOL)
    torch.testing.assert_close(videos["single"], videos["whole"], **TOL)
