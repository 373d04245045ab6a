"""Upsample, FIR-filter, downsample (upfirdn2d) in pure PyTorch, plus the blur helpers built on it.

The maths is that of StyleGAN2's reference `upfirdn2d` (Karras et al. 2020, arXiv:1912.04958,
appendix B): insert `up - 1` zeros after every sample, pad (negative padding crops), convolve
with the kernel (a true convolution, i.e. correlation with the flipped kernel), keep every
`down`-th sample. It is written with a depthwise `conv2d`, so it runs on any device and dtype and
needs nothing compiled.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Pad = int | tuple[int, int] | tuple[int, int, int, int] | Sequence[int]


def make_kernel(k: Sequence[float] | Tensor) -> Tensor:
    """A normalised 2-D FIR kernel (sum 1); a 1-D list becomes its separable outer product."""
    kernel = torch.as_tensor(k, dtype=torch.float32)
    if kernel.ndim == 1:
        kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def _pad4(pad: Pad) -> tuple[int, int, int, int]:
    """(p,) / (p0, p1) / (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if isinstance(pad, int):
        return (pad, pad, pad, pad)
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return (pad[0], pad[1], pad[0], pad[1])
    if len(pad) == 4:
        return pad  # type: ignore[return-value]
    raise ValueError(f"pad must have 1, 2 or 4 entries, got {pad}")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


_NATIVE_BF16: bool | None = None


def _slow_low_precision(x: Tensor) -> bool:
    """True for a bf16/fp16 CPU tensor on a CPU whose oneDNN has no native bf16 kernels."""
    global _NATIVE_BF16
    if x.device.type != "cpu" or x.dtype not in (torch.bfloat16, torch.float16):
        return False
    if _NATIVE_BF16 is None:
        _NATIVE_BF16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return not _NATIVE_BF16


def upfirdn2d(
    x: Tensor,
    kernel: Tensor,
    up: int | tuple[int, int] = 1,
    down: int | tuple[int, int] = 1,
    pad: Pad = (0, 0),
) -> Tensor:
    """Zero-insert upsample, pad/crop, convolve with `kernel`, downsample; `x` is [B, C, H, W].

    `up`/`down` are an int or (x, y); `pad` is (p0, p1) for both axes or (x0, x1, y0, y1).
    Output size per axis: (in * up + p0 + p1 - k + 1) // down (rounded up).
    """
    if _slow_low_precision(x):
        # bf16/fp16 depthwise convolution has no vectorised CPU kernel without native bf16 (it
        # loops over channels): filter in fp32, outside autocast, and round the result once
        with torch.autocast("cpu", enabled=False):
            return upfirdn2d(x.float(), kernel, up, down, pad).to(x.dtype)
    up_x, up_y = _pair(up)
    down_x, down_y = _pair(down)
    px0, px1, py0, py1 = _pad4(pad)
    b, c, h, w = x.shape
    kh, kw = kernel.shape

    if up_x > 1 or up_y > 1:
        # zero insertion: each sample followed by (up - 1) zeros along each axis
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up_x - 1, 0, 0, 0, up_y - 1])
        x = x.reshape(b, c, h * up_y, w * up_x)  # (B, C, H*up, W*up)

    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype, device=x.device)
    weight = weight[None, None].expand(c, 1, kh, kw)  # (C, 1, kh, kw) depthwise
    if px0 == px1 >= 0 and py0 == py1 >= 0:
        # symmetric zero padding: let the convolution pad (no padded copy of x)
        stride = (down_y, down_x)
        return F.conv2d(x, weight, stride=stride, padding=(py0, px0), groups=c)

    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[
        :,
        :,
        max(-py0, 0) : x.shape[2] - max(-py1, 0),
        max(-px0, 0) : x.shape[3] - max(-px1, 0),
    ]
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down_y, ::down_x]


def upfirdn2d_reference(
    x: Tensor,
    kernel: Tensor,
    up: int = 1,
    down: int = 1,
    pad: Pad = (0, 0),
) -> Tensor:
    """Slow explicit-loop upfirdn2d used only to test `upfirdn2d` (same arguments)."""
    px0, px1, py0, py1 = _pad4(pad)
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    hu, wu = h * up, w * up
    big = torch.zeros(b, c, hu, wu, dtype=x.dtype)
    big[:, :, ::up, ::up] = x
    out_h, out_w = hu + py0 + py1, wu + px0 + px1
    padded = torch.zeros(b, c, out_h, out_w, dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            si, sj = i - py0, j - px0
            if 0 <= si < hu and 0 <= sj < wu:
                padded[:, :, i, j] = big[:, :, si, sj]
    conv_h, conv_w = out_h - kh + 1, out_w - kw + 1
    out = torch.zeros(b, c, conv_h, conv_w, dtype=x.dtype)
    for i in range(conv_h):
        for j in range(conv_w):
            acc = torch.zeros(b, c, dtype=x.dtype)
            for u in range(kh):
                for v in range(kw):
                    # true convolution: output (i, j) sees padded (i + u, j + v) * k[kh-1-u, kw-1-v]
                    acc = acc + padded[:, :, i + u, j + v] * kernel[kh - 1 - u, kw - 1 - v]
            out[:, :, i, j] = acc
    return out[:, :, ::down, ::down]


def upsample2d(x: Tensor, kernel: Tensor, factor: int = 2) -> Tensor:
    """FIR upsampling by `factor` (StyleGAN2 `Upsample`); the kernel gets gain factor^2."""
    p = kernel.shape[0] - factor
    pad0, pad1 = (p + 1) // 2 + factor - 1, p // 2
    return upfirdn2d(x, kernel * factor**2, up=factor, pad=(pad0, pad1))


def downsample2d(x: Tensor, kernel: Tensor, factor: int = 2) -> Tensor:
    """FIR downsampling by `factor` (StyleGAN2 `Downsample`)."""
    p = kernel.shape[0] - factor
    pad0, pad1 = (p + 1) // 2, p // 2
    return upfirdn2d(x, kernel, down=factor, pad=(pad0, pad1))


class Blur(nn.Module):
    """FIR low-pass filter with fixed padding (StyleGAN2 `Blur`); the kernel is a saved buffer."""

    def __init__(
        self,
        kernel: Sequence[float] = (1, 3, 3, 1),
        pad: Pad = (0, 0),
        *,
        upsample_factor: int = 1,
    ) -> None:
        """kernel: 1-D taps; pad: (p0, p1); upsample_factor: gain factor^2 after zero insertion."""
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor**2
        self.register_buffer("kernel", k)
        self.pad = _pad4(pad)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """Upsample by `factor` with a FIR kernel (StyleGAN2 `Upsample`, used by ToRGB skips)."""

    def __init__(self, kernel: Sequence[float] = (1, 3, 3, 1), *, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Downsample(nn.Module):
    """Downsample by `factor` with a FIR kernel (StyleGAN2 `Downsample`)."""

    def __init__(self, kernel: Sequence[float] = (1, 3, 3, 1), *, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad)
