"""INR parts: coordinate grids, Fourier features with a time phase shift, FMM layers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidgan.nn.inr import (
    CoordGrid,
    FMMLinear,
    ModulatedToRGB,
    TemporalFourierFeatures,
    coordinate_grid,
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
