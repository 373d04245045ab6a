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


def unreliable_native_backward(args: tuple[Any, ...]) -> torch.dtype | None:
    """The low-precision dtype of a CPU 3-D convolution (first tensor 5-D) that will be
    differentiated while torch runs one thread, else None.

    Why: PyTorch 2.13's native oneDNN bf16 kernels return NaN weight gradients for 3-D
    convolutions at one thread on an AMX / AVX512-BF16 Xeon (e.g. conv3d of [1, 128, 4, 32, 32]
    with a 3x3x3 kernel, conv_transpose3d of [8, 128, 1, 32, 32] with (1, 4, 4); finite at 2, 3,
    4 and 8 threads; benchmarks/README.md), which ended G3AN and FMR bf16 training at step 0.
    One thread is also what torchrun gives each process by default. Such convolutions take the
    fp32-kernel path of `emulated_lowp`: the same bf16-rounded numbers, finite gradients.
    """
    tensors = [a for a in args if isinstance(a, Tensor)]
    if not tensors or tensors[0].dim() != 5 or not torch.is_grad_enabled():
        return None
    if torch.get_num_threads() != 1:
        return None
    if not any(t.requires_grad for t in tensors):
        return None
    return lowp_dtype(tensors[0])


def emulated_lowp(fn: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
    """fn(*args, **kwargs); in bf16/fp16 (judged from the first tensor argument) on a CPU without
    native kernels for it, the floating tensor arguments are rounded to that dtype, fn runs its
    fp32 kernel (fp32 accumulation, as native bf16 kernels do) and the result is rounded back,
    instead of the 10-100x slower reference loops (also in backward). For convolutions, GEMMs.
    Differentiated 3-D convolutions at one thread take this path on every CPU, native kernels or
    not (`unreliable_native_backward`)."""
    first = next(a for a in args if isinstance(a, Tensor))
    dt = slow_lowp_dtype(first) or unreliable_native_backward(args)
    if dt is None:
        return fn(*args, **kwargs)
    args = tuple(
        a.to(dt).float() if isinstance(a, Tensor) and a.is_floating_point() else a for a in args
    )
    with torch.autocast("cpu", enabled=False):
        return fn(*args, **kwargs).to(dt)
