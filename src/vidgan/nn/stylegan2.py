"""StyleGAN2 parts in rosinality's parameterisation (stored names and scales match its state dicts).

Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", arXiv:1912.04958:
weight modulation/demodulation (sec. 2.2, Eq. 1-3), noise inputs, skip ToRGB generator and the
residual discriminator with minibatch standard deviation (appendix B). Modulation is applied to
the activations rather than by building one weight per sample (same maths, see
`ModulatedConv2d.forward`), which lets one ordinary convolution serve the whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.nn.equalized import (
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
)
from vidgan.nn.polyphase import conv_transpose2d_stride2_polyphase
from vidgan.nn.upfirdn import Blur, Upsample
from vidgan.precision import emulated_lowp, lowp_dtype, slow_lowp_dtype

BLUR = (1, 3, 3, 1)


def channel_table(
    channel_multiplier: int = 2, override: dict[int | str, int] | None = None
) -> dict[int, int]:
    """Feature maps per resolution: min(512, 16384 * cm // res) (rosinality), then `override`."""
    table = {2**i: min(512, 16384 * channel_multiplier // 2**i) for i in range(2, 13)}
    for res, ch in (override or {}).items():
        table[int(res)] = int(ch)
    return table


# Inference fast path: with no autograd graph, synthesis layers update their own fresh outputs in
# place (demodulation, noise, bias, lrelu, ToRGB sums). Off = the plain out-of-place maths.
INPLACE_INFERENCE = True

# Inference only: up-sampling convs on input maps of at least this many pixels use the polyphase
# form (fp32: faster only for 128x128 inputs on 2-core CPUs; smaller maps keep the plain op).
# With native bf16 kernels (AMX) it pays from 16x16 on: 1.35-1.8x at 16 to 128 px inputs,
# 0.3-0.8x at 4 and 8 px (benchmarks/README.md, session 8).
POLYPHASE_MIN_PIXELS = 128 * 128
POLYPHASE_MIN_PIXELS_BF16 = 16 * 16


def _polyphase(x: Tensor, weight: Tensor, bias: None = None) -> Tensor:
    """`conv_transpose2d_stride2_polyphase` with the conv signature `emulated_lowp` calls."""
    return conv_transpose2d_stride2_polyphase(x, weight)


def _inplace_ok(x: Tensor) -> bool:
    """True when no autograd graph is recorded for x, so a fresh x may be updated in place."""
    return INPLACE_INFERENCE and not (torch.is_grad_enabled() and x.requires_grad)


class PixelNorm(nn.Module):
    """x / sqrt(mean(x^2) + 1e-8) over the feature axis (dim 1)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def mapping_network(dim: int, n_layers: int, *, lr_mul: float = 0.01) -> nn.Sequential:
    """PixelNorm + n EqualLinear-lrelu layers (StyleGAN mapping f: z -> w); keys 1..n."""
    layers: list[nn.Module] = [PixelNorm()]
    layers += [EqualLinear(dim, dim, lr_mul=lr_mul, activation="lrelu") for _ in range(n_layers)]
    return nn.Sequential(*layers)


class ModulatedConv2d(nn.Module):
    """Eq. 1-3: w'_ijk = s_i w_ijk, optionally divided by sqrt(sum_ik w'^2 + 1e-8)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        *,
        demodulate: bool = True,
        upsample: bool = False,
        downsample: bool = False,
        blur_kernel: Sequence[float] = BLUR,
    ) -> None:
        """upsample/downsample: x2 via a stride-2 (transposed) conv and a FIR blur."""
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.downsample = downsample
        self.demodulate = demodulate
        factor = 2
        if upsample:
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(
                blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor
            )
        if downsample:
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)

    def forward(self, x: Tensor, style: Tensor, *, consume: bool = False) -> Tensor:
        """x: [N, Cin, H, W], style: [N, style_dim] -> [N, Cout, H', W']."""
        return self.modulated(x, self.modulation(style), consume=consume)

    def modulated(self, x: Tensor, s: Tensor, *, consume: bool = False) -> Tensor:
        """The conv given the per-input-channel scales s `[N, Cin]` (the output of `modulation`).

        conv(x, w * s) = conv(x * s, w) and demodulation is a per-(sample, output channel) factor,
        so the batch shares one weight (StyleGAN2-ADA's non-fused path). consume: the caller no
        longer needs x, so at inference x is scaled in place (a fresh activation-sized tensor
        costs more in page faults than the multiply itself).
        """
        x, demod = self.undemodulated(x, s, consume=consume)
        if demod is None:
            return x
        # x is this call's own conv output: scale it in place when no graph is recorded
        return x.mul_(demod) if _inplace_ok(x) else x * demod

    def _weights(self, dtype: torch.dtype, acc: torch.dtype) -> tuple[Tensor, Tensor]:
        """The scaled conv weight in `dtype` (`[Cin, Cout, k, k]` for the transposed up-conv,
        else `[Cout, Cin, k, k]`) and sum_k w^2 `[Cout, Cin]` in `acc`.

        Without autograd both are kept until the parameter changes (its version counter, storage
        or device): at 4x4 to 32x32 a layer's weight-sized work (scale, cast, squares; 2.4M
        elements at 512 channels) took longer than its convolution, every call.
        """
        w = self.weight
        if torch.is_grad_enabled() and w.requires_grad:
            return self._weights_of(w, dtype, acc)
        state = (w._version, w.data_ptr(), w.device)
        cache = self.__dict__.setdefault("_weights_cache", {})  # (dtype, acc) -> (state, value)
        hit = cache.get((dtype, acc))
        if hit is None or hit[0] != state:
            hit = cache[dtype, acc] = (state, self._weights_of(w.detach(), dtype, acc))
        return hit[1]

    def _weights_of(self, w: Tensor, dtype: torch.dtype, acc: torch.dtype) -> tuple[Tensor, Tensor]:
        weight = w[0] * self.scale  # (Cout, Cin, k, k)
        wsq = weight.to(acc).pow(2).sum(dim=(2, 3))  # (Cout, Cin)
        if self.upsample:
            weight = weight.transpose(0, 1)
        return weight.to(dtype).contiguous(), wsq  # strided, oneDNN copies it on every call

    def undemodulated(
        self, x: Tensor, s: Tensor, *, consume: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """`modulated` before its demodulation, and the factor `[N, Cout, 1, 1]` (None when the
        layer does not demodulate), for callers that fold it into their own next pass."""
        acc = torch.promote_types(s.dtype, torch.float32)  # never below fp32
        weight, wsq = self._weights(x.dtype, acc)
        sx = s.to(x.dtype)[:, :, None, None]
        x = x.mul_(sx) if consume and _inplace_ok(x) else x * sx
        if self.upsample:
            wt = weight  # (Cin, Cout, k, k)
            native_lowp = lowp_dtype(x) is not None and slow_lowp_dtype(x) is None
            min_pixels = POLYPHASE_MIN_PIXELS_BF16 if native_lowp else POLYPHASE_MIN_PIXELS
            fast = (
                self.kernel_size == 3
                and x.shape[-2] * x.shape[-1] >= min_pixels
                and not torch.is_grad_enabled()
            )
            x = (
                emulated_lowp(_polyphase, x, wt)
                if fast
                else emulated_lowp(F.conv_transpose2d, x, wt, stride=2)
            )
        elif self.downsample:
            x = emulated_lowp(F.conv2d, self.blur(x), weight, stride=2)
        else:
            x = emulated_lowp(F.conv2d, x, weight, padding=self.padding)
        if self.upsample:
            x = self.blur(x)  # commutes with the per-(sample, channel) demodulation below
        if self.demodulate:
            # sum_ik (w_ijk s_i)^2 = (s^2) @ sum_k w_ijk^2  -> (N, Cout), wsq = sum_k w_ijk^2
            demod = torch.rsqrt(s.to(acc).pow(2) @ wsq.t() + 1e-8).to(x.dtype)[:, :, None, None]
            return x, demod
        return x, None


class NoiseInjection(nn.Module):
    """x + strength * noise, noise ~ N(0, 1) per pixel (one map per sample, shared by channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            n, _, h, w = x.shape
            noise = x.new_empty(n, 1, h, w).normal_()
        # in x's dtype: the fp32 strength times bf16 noise would promote the sum (and every later
        # elementwise op of the layer) to fp32 under autocast
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class ConstantInput(nn.Module):
    """The learned 4x4 constant the synthesis network starts from."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated 3x3 conv -> noise -> bias + lrelu (one StyleGAN2 synthesis layer)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        *,
        upsample: bool = False,
        demodulate: bool = True,
        blur_kernel: Sequence[float] = BLUR,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels,
            out_channels,
            kernel_size,
            style_dim,
            demodulate=demodulate,
            upsample=upsample,
            blur_kernel=blur_kernel,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(
        self, x: Tensor, style: Tensor, noise: Tensor | None = None, *, consume: bool = False
    ) -> Tensor:
        """consume: x is not needed after this call (see `ModulatedConv2d.modulated`)."""
        conv = self.conv
        if self._folds_style(x):
            return self._folded(x, conv.modulation(style), noise)
        x, demod = conv.undemodulated(x, conv.modulation(style), consume=consume)
        if not _inplace_ok(x):
            x = x if demod is None else x * demod
            return self.activate(self.noise(x, noise))
        # inference: demodulation, noise, bias, lrelu and gain in three passes over the fresh
        # conv output instead of five. The gain c > 0 rides on the small factors, since
        # lrelu(z) c = lrelu(c z): x <- c b + x (c d), x += (c strength) noise, lrelu in place.
        c, dt = self.activate.scale, x.dtype
        bias = (self.activate.bias * c).to(dt)[:, None, None]
        if demod is None:
            x.mul_(c).add_(bias)
        else:
            torch.addcmul(bias, x, demod * c, out=x)
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, *x.shape[2:]).normal_()
        # the (small) noise map is scaled first: a two-operand broadcast add is ~2x faster here
        x.add_(noise.to(dt) * (self.noise.weight * c).to(dt))
        return F.leaky_relu_(x, self.activate.negative_slope)

    def _folds_style(self, x: Tensor) -> bool:
        """Inference on one large map: fold style, demodulation and gain into the weight."""
        conv = self.conv
        return (
            INPLACE_INFERENCE
            and not torch.is_grad_enabled()
            and x.shape[0] == 1
            and conv.demodulate
            and not (conv.upsample or conv.downsample)
            and x.shape[-2] * x.shape[-1] >= 4 * conv.in_channels * conv.kernel_size**2
            and slow_lowp_dtype(x) is None
        )

    def _folded(self, x: Tensor, s: Tensor, noise: Tensor | None) -> Tensor:
        """One sample with its own weight (StyleGAN2's fused modulated conv): w' = w s d c with
        d the demodulation and c the lrelu gain, and the bias c b inside oneDNN's conv. Two
        passes over the output (noise, lrelu) instead of four, and no pass over the input; worth
        it where the map is much larger than the weight (FMR's 256 px layers)."""
        conv, c, dt = self.conv, self.activate.scale, x.dtype
        acc = torch.promote_types(s.dtype, torch.float32)
        weight, _ = conv._weights(acc, acc)  # (Cout, Cin, k, k), scaled, cached
        w = weight * s.to(acc)[0][None, :, None, None]
        d = torch.rsqrt(w.pow(2).sum(dim=(1, 2, 3)) + 1e-8)  # (Cout,)
        w = (w * (d * c)[:, None, None, None]).to(dt)
        bias = (self.activate.bias * c).to(dt)
        x = F.conv2d(x, w, bias, padding=conv.padding)  # bf16 under autocast
        if noise is None:
            noise = x.new_empty(1, 1, *x.shape[2:]).normal_()
        x.add_(noise.to(x.dtype) * (self.noise.weight * c).to(x.dtype))
        return F.leaky_relu_(x, self.activate.negative_slope)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation) + bias, added to the upsampled skip image."""

    def __init__(
        self,
        in_channels: int,
        style_dim: int,
        *,
        upsample: bool = True,
        blur_kernel: Sequence[float] = BLUR,
    ) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        if _inplace_ok(x) and slow_lowp_dtype(x) is None:
            out = self._rgb_bmm(x, style)
        else:
            out = self.conv(x, style)
        out = out.add_(self.bias.to(x.dtype)) if _inplace_ok(out) else out + self.bias.to(x.dtype)
        if skip is not None:
            up = self.upsample(skip)
            out = out.add_(up) if _inplace_ok(out) else out + up
        return out

    def _rgb_bmm(self, x: Tensor, style: Tensor) -> Tensor:
        """Inference: the 1x1 modulated conv as one batched matmul with per-sample weights
        (W diag(s_n)) x_n, which reads x once and writes no modulated copy of it."""
        s = self.conv.modulation(style)  # (N, Cin)
        w = self.conv.weight[0, :, :, 0, 0] * self.conv.scale  # (3, Cin)
        ws = (s[:, None, :] * w[None]).to(x.dtype)  # (N, 3, Cin)
        n, c, h, wd = x.shape
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            pix = x.permute(0, 2, 3, 1).reshape(n, h * wd, c)  # view (N, HW, Cin)
            return torch.bmm(pix, ws.transpose(1, 2)).view(n, h, wd, 3).permute(0, 3, 1, 2)
        return torch.bmm(ws, x.reshape(n, c, h * wd)).view(n, 3, h, wd)


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [bias + lrelu]; stride 2 after the blur when downsampling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        downsample: bool = False,
        blur_kernel: Sequence[float] = BLUR,
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channels, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual D block: (3x3 in->in, blur-down 3x3 in->out) + blur-down 1x1 skip, / sqrt2."""

    def __init__(
        self, in_channels: int, out_channels: int, *, blur_kernel: Sequence[float] = BLUR
    ) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(
            in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel
        )
        self.skip = ConvLayer(
            in_channels,
            out_channels,
            1,
            downsample=True,
            activate=False,
            bias=False,
            blur_kernel=blur_kernel,
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def stddev_group_size(batch: int, group_size: int = 4) -> int:
    """min(batch, group_size), lowered to the largest divisor of `batch` so any batch works."""
    group = min(batch, group_size)
    while batch % group:
        group -= 1
    return group


def minibatch_stddev(x: Tensor, group_size: int = 4, n_features: int = 1) -> Tensor:
    """Append the minibatch standard deviation as extra channel(s) (Karras et al. 2018, sec. 3).

    x: [B, C, *spatial]. Samples b and b' share a statistic when b = b' mod (B / group), as in
    rosinality's `view(group, -1, ...)`; a batch not divisible by `group_size` uses the largest
    divisor instead of failing.
    """
    b, c = x.shape[:2]
    spatial = x.shape[2:]
    group = stddev_group_size(b, group_size)
    y = x.reshape(group, b // group, n_features, c // n_features, *spatial)
    y = y.to(torch.promote_types(x.dtype, torch.float32))
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)  # (B/G, F, C/F, *spatial)
    y = y.mean(dim=tuple(range(2, y.ndim)))  # (B/G, F)
    y = y.to(x.dtype).reshape(b // group, n_features, *([1] * len(spatial)))
    y = y.repeat(group, 1, *spatial)  # (B, F, *spatial)
    return torch.cat([x, y], dim=1)
