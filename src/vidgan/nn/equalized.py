"""Equalized-learning-rate layers in rosinality's StyleGAN2 parameterisation.

Karras et al. 2018 (ProGAN, arXiv:1710.10196, sec. 4.1): weights are stored as N(0, 1) / lr_mul
and scaled at run time by lr_mul / sqrt(fan_in), so every layer learns at the same speed. The
stored parameter names (`weight`, `bias`) match rosinality's, so official state dicts load as
they are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.precision import conv3d, emulated_lowp

SQRT2 = math.sqrt(2.0)


def fused_leaky_relu(
    x: Tensor,
    bias: Tensor | None = None,
    negative_slope: float = 0.2,
    scale: float = SQRT2,
) -> Tensor:
    """leaky_relu(x + bias) * scale, bias broadcast over dim 1 (StyleGAN2's gain-sqrt(2) lrelu)."""
    if bias is not None:
        rest = [1] * (x.ndim - 2)
        x = x + bias.view(1, bias.shape[0], *rest).to(x.dtype)
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias + leaky relu with gain sqrt(2) (rosinality `FusedLeakyReLU`)."""

    def __init__(
        self, channels: int, *, bias: bool = True, negative_slope: float = 0.2, scale: float = SQRT2
    ) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class EqualLinear(nn.Module):
    """y = x W^T lr_mul / sqrt(in_dim) + b lr_mul, optionally then the sqrt(2)-gain lrelu."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str | None = None,
    ) -> None:
        """activation: None (linear) or "lrelu" (fused leaky relu on x W + b, gain sqrt(2))."""
        super().__init__()
        if activation not in (None, "lrelu", "fused_lrelu"):
            raise ValueError(f"activation must be None or 'lrelu', got {activation!r}")
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        """x: [..., in_dim] -> [..., out_dim].

        The scale multiplies the product (GEMM alpha), not the weight: style affines have up to
        10k x 512 weights against a few rows. (Scaling whichever operand is smaller would make
        the rounding depend on the number of rows, e.g. on how many frames render together.)
        """
        bias = None if self.bias is None else self.bias * self.lr_mul
        rows = x.reshape(-1, x.shape[-1])
        if bias is not None and not self.activation:
            out = torch.addmm(bias.to(rows.dtype), rows, self.weight.t(), alpha=self.scale)
        else:
            out = torch.mm(rows, self.weight.t().to(rows.dtype)) * self.scale
        if self.activation:
            if bias is not None:
                out = out + bias.to(out.dtype)  # bias on the feature (last) axis
            out = F.leaky_relu(out, 0.2) * SQRT2
        return out.reshape(*x.shape[:-1], out.shape[-1])

    def extra_repr(self) -> str:
        return (
            f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, "
            f"activation={self.activation}"
        )


class EqualConv2d(nn.Module):
    """2-D conv with weight scaled by 1 / sqrt(in_channels * k^2) at run time."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.scale
        return emulated_lowp(F.conv2d, x, w, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


class EqualConv3d(nn.Module):
    """3-D conv with weight scaled by 1 / sqrt(in_channels * prod(kernel)) at run time."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        *,
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        k = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *k))
        self.scale = 1 / math.sqrt(in_channels * math.prod(k))
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.scale
        return conv3d(x, w, self.bias, self.stride, self.padding)
