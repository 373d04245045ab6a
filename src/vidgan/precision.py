"""Which precision is fast here: bf16 autocast pays only where the hardware has bf16 units.

On CPUs without native bf16 (e.g. AVX2-only x86) PyTorch falls back to reference kernels that
are 10-27x slower than fp32 (benchmarks/README.md), so "auto" means bf16 on CUDA devices that
support it and on CPUs whose flags advertise bf16 arithmetic (AMX / AVX512-BF16 on x86, the
`bf16` feature on Arm), and fp32 everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

#: /proc/cpuinfo flags that mean bf16 matrix/vector units (x86: AMX, AVX512-BF16; Arm: bf16).
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16", "bf16"})


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The feature flags of the first CPU in /proc/cpuinfo ('flags' on x86, 'Features' on Arm)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no flags known, so no native bf16 is assumed
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@cache
def _cpu_has_bf16() -> bool:
    return bool(cpu_flags() & BF16_CPU_FLAGS)


def native_bf16(device: torch.device | str) -> bool:
    """True when bf16 autocast is expected to be faster than fp32 on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_has_bf16()
    return False


def resolve_amp(amp: bool | None, device: torch.device | str) -> bool:
    """`train.amp`: an explicit true/false wins; None (the default) = `native_bf16(device)`."""
    return native_bf16(device) if amp is None else bool(amp)


# --- bf16/fp16 ops on CPUs without native kernels ----------------------------------------------

_LOWP = (torch.bfloat16, torch.float16)
_NATIVE: dict[torch.dtype, bool] = {}


def slow_lowp_dtype(x: Tensor) -> torch.dtype | None:
    """The bf16/fp16 dtype a CPU op on x would run in (x's own, or autocast's for fp32 x) when
    this CPU's oneDNN has no native kernels for it (they fall back to slow reference loops), else
    None."""
    dt = lowp_dtype(x)
    if dt is None:
        return None
    if dt not in _NATIVE:
        mk = torch.ops.mkldnn
        ok = (
            mk._is_mkldnn_bf16_supported()
            if dt == torch.bfloat16
            else mk._is_mkldnn_fp16_supported()
        )
        _NATIVE[dt] = bool(ok)
    return None if _NATIVE[dt] else dt


def lowp_dtype(x: Tensor) -> torch.dtype | None:
    """The bf16/fp16 dtype a CPU op on x runs in (x's own, or autocast's for fp32 x), else None."""
    if x.device.type != "cpu":
        return None
    if x.dtype in _LOWP:
        return x.dtype
    if x.dtype == torch.float32 and torch.is_autocast_enabled("cpu"):
        dt = torch.get_autocast_dtype("cpu")
        return dt if dt in _LOWP else None
    return None


def emulated_lowp(fn: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
    """fn(*args, **kwargs); in bf16/fp16 (judged from the first tensor argument) on a CPU without
    native kernels for it, the floating tensor arguments are rounded to that dtype, fn runs its
    fp32 kernel (fp32 accumulation, as native bf16 kernels do) and the result is rounded back,
    instead of the 10-100x slower reference loops (also in backward). For convolutions, GEMMs;
    3-D convolutions go through `conv3d` / `conv_transpose3d` instead."""
    first = next(a for a in args if isinstance(a, Tensor))
    dt = slow_lowp_dtype(first)
    if dt is None:
        return fn(*args, **kwargs)
    return _on_fp32_kernels(fn, dt, *args, **kwargs)


def _on_fp32_kernels(fn: Callable[..., Tensor], dt: torch.dtype, *args: Any, **kw: Any) -> Tensor:
    """fn on the fp32 kernels with its floating tensor arguments rounded to dt, output in dt."""
    args = tuple(
        a.to(dt).float() if isinstance(a, Tensor) and a.is_floating_point() else a for a in args
    )
    with torch.autocast("cpu", enabled=False):
        return fn(*args, **kw).to(dt)


# --- 3-D convolutions in bf16 on CPUs with native kernels --------------------------------------

_Ints = int | tuple[int, ...]


def _triple(v: _Ints) -> list[int]:
    return [v] * 3 if isinstance(v, int) else list(v)


def conv3d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _Ints = 1,
    padding: _Ints = 0,
    dilation: _Ints = 1,
    groups: int = 1,
) -> Tensor:
    """`F.conv3d` (numeric padding), with the low-precision CPU routes of `lowp_conv_route`."""
    route = lowp_conv_route(x, weight, bias)
    if route is None:
        return F.conv3d(x, weight, bias, stride, padding, dilation, groups)
    params = (_triple(stride), _triple(padding), _triple(dilation), False, [0, 0, 0], groups)
    return route(x, weight, bias, params)


def conv_transpose3d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _Ints = 1,
    padding: _Ints = 0,
    output_padding: _Ints = 0,
    groups: int = 1,
    dilation: _Ints = 1,
) -> Tensor:
    """`F.conv_transpose3d`, with the low-precision CPU routes of `lowp_conv_route`."""
    route = lowp_conv_route(x, weight, bias)
    if route is None:
        return F.conv_transpose3d(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )
    out_pad = _triple(output_padding)
    params = (_triple(stride), _triple(padding), _triple(dilation), True, out_pad, groups)
    return route(x, weight, bias, params)


_Route = Callable[[Tensor, Tensor, "Tensor | None", tuple], Tensor]


def lowp_conv_route(x: Tensor, weight: Tensor, bias: Tensor | None) -> _Route | None:
    """How a CPU 3-D convolution in bf16/fp16 (x's own dtype or autocast's) must run, as a
    function of (x, weight, bias, aten.convolution's other arguments); None = the plain op.

    - Without native kernels: `emulated_lowp`'s fp32 kernels on rounded operands.
    - With native kernels, when differentiated: the native forward and input gradient, and the
      weight gradient as native 2-D weight gradients per temporal tap (`_NativeLowpConv`).
      Why: PyTorch 2.13's native bf16 3-D weight gradients are unusable on an AMX Xeon. At
      one thread some are NaN (conv3d of [1, 128, 4, 32, 32] with 3x3x3 weights,
      conv_transpose3d of [8, 128, 1, 32, 32] with (1, 4, 4)); at two threads some never
      finish (conv3d 512 -> 512, 3x3x3, stride 2 on [1, 512, 6, 65, 65]: over 5 minutes; 0.07 s
      on [1, 512, 10, 49, 49]), which stalled the fmr-paper-256 bf16 training step.
    """
    if x.device.type != "cpu":
        return None
    slow = slow_lowp_dtype(x)
    if slow is not None:
        return lambda *a: _on_fp32_kernels(torch.ops.aten.convolution, slow, *a[:3], *a[3])
    dt = lowp_dtype(x)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if dt is None or not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors):
        return None
    return lambda *a: _NativeLowpConv.apply(*a, dt)


class _NativeLowpConv(torch.autograd.Function):
    """A low-precision 3-D convolution whose weight gradient comes from native 2-D kernels, one
    per temporal tap (`_weight_grad_by_taps`), and its bias gradient from an fp32 sum; see
    `lowp_conv_route`."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, params: tuple, dt: torch.dtype
    ) -> Tensor:
        with torch.autocast("cpu", enabled=False):
            xl, wl = x.to(dt), weight.to(dt)
            bl = None if bias is None else bias.to(dt)
            y = torch.ops.aten.convolution(xl, wl, bl, *params)
        ctx.save_for_backward(xl, wl)
        ctx.params, ctx.dtypes = params, (x.dtype, weight.dtype)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:
        xl, wl = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        with torch.autocast("cpu", enabled=False):
            gy = gy.to(xl.dtype)
            if need_x:
                gx = torch.ops.aten.convolution_backward(
                    gy, xl, wl, None, *ctx.params, [True, False, False]
                )[0].to(ctx.dtypes[0])
            if need_w:
                gw = _weight_grad_by_taps(gy, xl, wl, ctx.params).to(ctx.dtypes[1])
            if need_b:
                gb = gy.float().sum(dim=(0, 2, 3, 4)).to(ctx.bias_dtype)
        return gx, gw, gb, None, None


def _weight_grad_by_taps(gy: Tensor, x: Tensor, weight: Tensor, params: tuple) -> Tensor:
    """The weight gradient of a low-precision 3-D (transposed) convolution as one native 2-D
    weight gradient per temporal tap, the output frames folded into the batch.

    Why: native bf16 3-D weight gradients are NaN or never finish for some shapes (see
    `lowp_conv_route`), the 2-D ones of the same sums are not (conv3d 512 -> 512, 3x3x3,
    stride 2 on [1, 512, 6, 65, 65]: 0.06 s at 2 threads, finite at 1), and the fp32 kernels
    they replace run at ~1/8 of AMX's rate. Dilated or grouped convolutions take the fp32
    kernels. A transposed convolution's weight gradient is that of the convolution of its
    output gradient (as input) to its input (as output gradient).
    """
    stride, padding, dilation, transposed, _, groups = params
    if groups != 1 or any(d != 1 for d in dilation):
        return torch.ops.aten.convolution_backward(
            gy.float(), x.float(), weight.float(), None, *params, [False, True, False]
        )[1]
    inp, out = (gy, x) if transposed else (x, gy)  # inp * W -> out, as a convolution
    st, pd = stride[0], padding[0]
    depth, out_depth = inp.shape[2], out.shape[2]
    p2 = (stride[1:], padding[1:], dilation[1:], False, [0, 0], 1)
    taps = []
    frames: dict[tuple[int, int], Tensor] = {}  # output frames lo:hi, folded into the batch
    for a in range(weight.shape[2]):
        lo = max(0, -((a - pd) // st))  # first output frame whose tap a lands inside inp
        hi = min(out_depth, (depth - 1 - a + pd) // st + 1)
        if hi <= lo:
            taps.append(torch.zeros_like(weight[:, :, a], dtype=torch.float32))
            continue
        first = lo * st + a - pd
        xa = inp[:, :, first : first + st * (hi - lo - 1) + 1 : st]  # (N, C, hi - lo, H, W)
        xa = xa.transpose(1, 2).flatten(0, 1)  # frames into the batch
        if (lo, hi) not in frames:  # most taps see the same output frames: fold them once
            frames[lo, hi] = out[:, :, lo:hi].transpose(1, 2).flatten(0, 1)
        ga = frames[lo, hi]
        g = torch.ops.aten.convolution_backward(
            ga, xa, weight[:, :, a], None, *p2, [False, True, False]
        )[1]
        taps.append(g.float())
    return torch.stack(taps, 2)
