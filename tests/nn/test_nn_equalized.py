"""Equalized-lr layers: effective weights, lr_mul and the fused lrelu."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidgan.nn.equalized import (
    EqualConv2d,
    EqualConv3d,
    EqualLinear,
    FusedLeakyReLU,
    fused_leaky_relu,
)


def test_fused_leaky_relu_values():
    x = torch.tensor([[-1.0, 2.0], [0.5, -3.0]])
    b = torch.tensor([0.5, -1.0])
    want = F.leaky_relu(x + b, 0.2) * math.sqrt(2)
    torch.testing.assert_close(fused_leaky_relu(x, b), want)
    x4 = torch.randn(2, 3, 4, 4)
    b3 = torch.randn(3)
    torch.testing.assert_close(
        fused_leaky_relu(x4, b3), F.leaky_relu(x4 + b3[:, None, None], 0.2) * math.sqrt(2)
    )
    m = FusedLeakyReLU(3)
    m.bias.data.copy_(b3)
    torch.testing.assert_close(m(x4), fused_leaky_relu(x4, b3))


def test_equal_linear_effective_weight_and_lr_mul():
    torch.manual_seed(0)
    lin = EqualLinear(8, 5, bias_init=1.0, lr_mul=0.01)
    assert torch.allclose(lin.bias, torch.ones(5))
    x = torch.randn(3, 8)
    w_eff = lin.weight * 0.01 / math.sqrt(8)
    torch.testing.assert_close(lin(x), x @ w_eff.T + 0.01)
    # raw weights are N(0,1)/lr_mul so the effective weight has std 1/sqrt(in)
    big = EqualLinear(256, 256, lr_mul=0.01)
    assert abs(float((big.weight * big.scale).detach().std()) * 16 - 1) < 0.05
    act = EqualLinear(8, 5, activation="lrelu", lr_mul=0.5)
    act.bias.data.normal_()
    want = F.leaky_relu(x @ (act.weight * 0.5 / math.sqrt(8)).T + act.bias * 0.5, 0.2) * math.sqrt(
        2
    )
    torch.testing.assert_close(act(x), want)
    # works on extra leading axes (features last)
    torch.testing.assert_close(act(x[None])[0], want)


def test_equal_linear_scales_the_product_with_the_weight_scaled_result_and_gradients():
    """The run-time scale multiplies the product (no scaled copy of a large weight): the result
    and gradients are those of x (s W)^T + b."""
    torch.manual_seed(1)
    for act in (None, "lrelu"):
        lin = EqualLinear(16, 40, lr_mul=0.1, activation=act)
        lin.bias.data.normal_()
        for rows in (3, 64):
            x = torch.randn(rows, 16, requires_grad=True)
            got = lin(x)
            g = torch.linspace(-1, 1, got.numel()).view_as(got)
            gx, gw = torch.autograd.grad(got, (x, lin.weight), g)
            w = lin.weight.detach().clone().requires_grad_(True)
            x2 = x.detach().clone().requires_grad_(True)
            want = x2 @ (w * lin.scale).T + lin.bias.detach() * 0.1
            if act:
                want = F.leaky_relu(want, 0.2) * math.sqrt(2)
            wx, ww = torch.autograd.grad(want, (x2, w), g)
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(gx, wx, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(gw, ww, atol=1e-6, rtol=1e-5)


def test_equal_conv_scales():
    conv = EqualConv2d(4, 6, 3, padding=1)
    conv.bias.data.normal_()
    x = torch.randn(2, 4, 5, 5)
    want = F.conv2d(x, conv.weight / math.sqrt(4 * 9), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), want)
    c3 = EqualConv3d(4, 2, 3, padding=1, stride=(1, 2, 2))
    v = torch.randn(1, 4, 4, 6, 6)
    torch.testing.assert_close(
        c3(v), F.conv3d(v, c3.weight / math.sqrt(4 * 27), c3.bias, padding=1, stride=(1, 2, 2))
    )
    assert set(conv.state_dict()) == {"weight", "bias"}
