"""INR parts: coordinate grids, Fourier features with a time phase shift, FMM layers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vidgan.nn.inr import (
    CoordGrid,
    FMMLinear,
    ModulatedToRGB,
    TemporalFourierFeatures,
    coordinate_grid,
    linear_act,
    pixel_add_upsampled_,
    pixel_features,
    pixel_frames_layer,
    pixel_layer,
    upsample_nearest,
)


def test_coordinate_grid_is_left_aligned_with_y_up():
    g = coordinate_grid(4)
    row = torch.tensor([-1.0, -0.5, 0.0, 0.5])  # 2 j / n - 1
    torch.testing.assert_close(g[0], row[None, :].expand(4, 4))  # x along the width
    torch.testing.assert_close(g[1], row.flip(0)[:, None].expand(4, 4))  # top row largest y
    torch.testing.assert_close(coordinate_grid(4, fov=1.5), 1.5 * g)


def test_denser_and_wider_grids_contain_the_base_grid():
    base = coordinate_grid(8)
    # 2x denser: y is flipped and left-aligned too, so base pixel (i, j) is dense (2i + 1, 2j)
    torch.testing.assert_close(coordinate_grid(16)[:, 1::2, ::2], base)
    assert not torch.allclose(coordinate_grid(16)[:, ::2, ::2], base)
    wide = CoordGrid(12, fov=1.5).stage(12)  # 1.5x wider at the same density
    torch.testing.assert_close(wide[:, 2:10, 2:10], base, atol=1e-6, rtol=0)


def test_fmm_linear_matches_its_formula():
    torch.manual_seed(0)
    layer = FMMLinear(5, 4, w_dim=6, rank=2)
    with torch.no_grad():
        layer.affine.bias.normal_()
        layer.bias.normal_()
    w = torch.randn(3, 6)
    s = layer.affine(w)
    left, right = s[:, :8].reshape(3, 4, 2), s[:, 8:].reshape(3, 2, 5)
    wm = layer.weight * (1 + torch.einsum("bor,bri->boi", left, right) / math.sqrt(2))
    wm = wm / (wm.norm(dim=2, keepdim=True) + 1e-8)
    got = layer.modulate(w)
    torch.testing.assert_close(got, wm)
    torch.testing.assert_close(got.norm(dim=2), torch.ones(3, 4))  # demodulated rows
    x = torch.randn(3, 2, 5, 7)  # (B, T, C_in, P)
    want = F.leaky_relu(torch.einsum("boi,btip->btop", wm, x) + layer.bias[:, None], 0.2)
    torch.testing.assert_close(layer(x, w), want * math.sqrt(2), atol=1e-5, rtol=1e-5)


def test_torgb_is_modulated_without_demodulation():
    torch.manual_seed(1)
    layer = ModulatedToRGB(6, w_dim=4)
    w, x = torch.randn(2, 4), torch.randn(2, 3, 6, 5)
    styles = layer.affine(w) / math.sqrt(6)
    want = torch.einsum("ci,bi,btip->btcp", layer.weight, styles, x) + layer.bias[:, None]
    torch.testing.assert_close(layer(x, w), want, atol=1e-5, rtol=1e-5)


def test_time_only_rotates_each_fourier_pair_by_a_constant_phase():
    torch.manual_seed(2)
    f = TemporalFourierFeatures(w_dim=8, motion_dim=6, emb_size=5)
    with torch.no_grad():
        for p in f.parameters():
            p.normal_()
    w, z_m = torch.randn(2, 8), torch.randn(2, 6)
    grid = coordinate_grid(6)
    t = torch.tensor([[0.0, 0.3, 2.5]]).expand(2, 3)
    feats = f(w, z_m, t, grid)  # (B, T, 2E, P)
    sin, cos = feats[:, :, :5], feats[:, :, 5:]
    torch.testing.assert_close(sin**2 + cos**2, torch.ones_like(sin))
    angle = torch.atan2(sin, cos)  # (B, T, E, P)
    delta = torch.remainder(angle[:, 1:] - angle[:, :1], 2 * math.pi)  # per pixel
    spread = torch.remainder(delta - delta[..., :1] + math.pi, 2 * math.pi) - math.pi
    assert spread.abs().max() < 1e-4  # the same shift at every pixel
    assert delta[..., 0].std() > 0.01  # and it does move with t
    # at t = 0 the shift MLP(0) does not depend on the motion code
    a = f(w, z_m, t[:, :1], grid)
    b = f(w, torch.randn(2, 6), t[:, :1], grid)
    torch.testing.assert_close(a, b)


def test_upsample_nearest_matches_interpolate():
    x = torch.randn(2, 3, 4, 25)
    want = F.interpolate(x.reshape(6, 4, 5, 5), scale_factor=2, mode="nearest")
    torch.testing.assert_close(upsample_nearest(x, 5), want.reshape(2, 3, 4, 100))


def test_projection_commutes_with_nearest_upsampling():
    torch.manual_seed(3)
    layer = FMMLinear(6 + 4, 5, w_dim=3, rank=2)
    weight = layer.modulate(torch.randn(2, 3))
    x_low, extra = torch.randn(2, 3, 6, 16), torch.randn(2, 3, 4, 64)  # 4x4 -> 8x8
    want = layer.project(weight, torch.cat([upsample_nearest(x_low, 4), extra], dim=2))
    got = layer.project_upsampled(weight, x_low, 4, extra)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


# --- pixel-major inference ops -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("lrelu", [True, False])
def test_fused_linear_matches_linear_then_lrelu(dtype, lrelu):
    """oneDNN's fused bias + lrelu (CPUs) against F.linear then leaky_relu in float64, within
    the dtype's rounding (bf16: one rounding of the output, 8 bits)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 64, generator=g).to(dtype)
    w, b = torch.randn(48, 64, generator=g) * 0.2, torch.randn(48, generator=g)
    want = F.linear(x.double(), w.to(dtype).double(), b.to(dtype).double())
    want = F.leaky_relu(want, 0.2) if lrelu else want
    got = linear_act(x, w, b, lrelu=lrelu)
    assert got.dtype == dtype and got.shape == (300, 48)
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    assert (got.double() - want).abs().max() <= tol * want.abs().max()
    assert (want < 0).any()  # the negative slope was exercised


def test_pixel_layers_equal_the_channel_major_projection():
    """The pixel-major ops compute FMMLinear's sums: per-video layers, per-frame weights on
    time-free features, and the upsampled-coarse accumulation."""
    torch.manual_seed(5)
    layer = FMMLinear(6 + 4, 5, w_dim=3, rank=2)
    layer.bias.data.normal_()
    weight = layer.modulate(torch.randn(2, 3)).detach()
    x_low = torch.randn(2, 3, 6, 16)  # (B, T, C, 4x4)
    extra = torch.randn(2, 3, 4, 64)  # (B, T, C, 8x8)
    with torch.no_grad():
        want = layer.project(weight, torch.cat([upsample_nearest(x_low, 4), extra], dim=2))
        pm = lambda t: t.transpose(-1, -2).contiguous()  # noqa: E731  (.., C, P) -> (.., P, C)
        s2 = math.sqrt(2)
        # per-video layer on the concatenated input
        full = torch.cat([upsample_nearest(x_low, 4), extra], dim=2)
        got = pixel_layer(pm(full), weight * s2, layer.bias * s2, lrelu=True)
        torch.testing.assert_close(got, pm(want), atol=1e-5, rtol=1e-5)
        # per-frame weights on frame-independent features, the coarse part added upsampled
        feats = torch.randn(2, 64, 4)  # (B, P, C_e), time-free
        w_frames = torch.randn(2, 3, 5, 4)  # (B, T, C_out, C_e)
        coarse = pixel_layer(pm(x_low), weight[:, :, :6] * s2, layer.bias * s2, lrelu=False)
        y = pixel_frames_layer(feats, w_frames, coarse, 4)
        ref = torch.einsum("bpe,btoe->btpo", feats, w_frames)
        ref = pixel_add_upsampled_(ref.clone(), coarse, 4)
        torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
        up = pm(upsample_nearest(coarse.transpose(-1, -2), 4))
        torch.testing.assert_close(ref - torch.einsum("bpe,btoe->btpo", feats, w_frames), up)
        torch.testing.assert_close(pixel_frames_layer(feats, w_frames), ref - up, atol=1e-5, rtol=0)


def test_pixel_features_are_the_content_features_transposed():
    torch.manual_seed(6)
    f = TemporalFourierFeatures(w_dim=8, motion_dim=8, emb_size=7)
    with torch.no_grad():
        freqs, phase = f.content(torch.randn(2, 8))
        spatial = f.spatial_phase(freqs, coordinate_grid(5))
        want = f.content_features(spatial, phase).transpose(1, 2)
        got = pixel_features(freqs, phase, coordinate_grid(5), torch.float32)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        got16 = pixel_features(freqs, phase, coordinate_grid(5), torch.bfloat16)
    assert got16.dtype == torch.bfloat16
    torch.testing.assert_close(got16.float(), want, atol=4e-3, rtol=0)
