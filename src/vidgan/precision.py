"""Which precision is fast here: bf16 autocast pays only where the hardware has bf16 units.

On CPUs without native bf16 (e.g. AVX2-only x86) PyTorch falls back to reference kernels that
are 10-27x slower than fp32 (benchmarks/README.md), so "auto" means bf16 on CUDA devices that
support it and on CPUs whose flags advertise bf16 arithmetic (AMX / AVX512-BF16 on x86, the
`bf16` feature on Arm), and fp32 everywhere else.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

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
