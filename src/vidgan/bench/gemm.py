"""The machine's own peak: square matrix products in fp32 and bf16, best of k.

Model throughput is reported as a fraction of this measured peak (the issue's yardstick), so
the figure says how close a model gets to what this machine can do, not to a datasheet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}
SIZES: tuple[int, ...] = (256, 512, 1024, 2048, 4096)


def gemm_flops(m: int, n: int, k: int) -> int:
    """FLOPs of an [m, k] @ [k, n] product: m*n dot products of length k, a multiply and an add
    each (the convention torch.utils.flop_counter uses)."""
    return 2 * m * n * k


@dataclass
class GemmPeak:
    """Best GFLOP/s over the sizes tried (each size: best of `repeats` calls)."""

    dtype: str
    gflops: float = 0.0  # the peak: best over sizes
    size: int = 0  # the size that reached it
    sizes: list[dict[str, Any]] = field(default_factory=list)  # per size: size, best_s, gflops

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "gflops": self.gflops, "size": self.size, "sizes": self.sizes}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_gemm_peak(
    dtype: str = "fp32",
    *,
    device: torch.device | str = "cpu",
    repeats: int = 3,
    budget_s: float = 3.0,
    max_size: int = 4096,
    sizes: tuple[int, ...] = SIZES,
) -> GemmPeak:
    """GFLOP/s of `a @ b` for growing square sizes while the next size fits in `budget_s`.

    Sizes double from 256; a size is tried only when its estimated cost (8x the previous
    size's best call, times `repeats` + 1 warm-up) fits in what is left of the budget, so slow
    dtypes (bf16 without native support is ~50x slower on AVX2 CPUs) stop early instead of
    running for minutes. At least the smallest size is always measured.
    """
    device = torch.device(device)
    peak = GemmPeak(dtype=dtype)
    spent, last = 0.0, 0.0
    g = torch.Generator(device=device).manual_seed(0)
    for n in sizes:
        if n > max_size:
            break
        if peak.sizes and spent + 8 * last * (repeats + 1) > budget_s:
            break
        t_start = time.perf_counter()
        a = torch.randn(n, n, generator=g, device=device).to(DTYPES[dtype])
        b = torch.randn(n, n, generator=g, device=device).to(DTYPES[dtype])
        a @ b  # warm-up
        best = float("inf")
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            a @ b
            _sync(device)
            best = min(best, time.perf_counter() - t0)
        gflops = gemm_flops(n, n, n) / best / 1e9
        peak.sizes.append({"size": n, "best_s": best, "gflops": gflops})
        if gflops > peak.gflops:
            peak.gflops, peak.size = gflops, n
        spent += time.perf_counter() - t_start
        last = best
    return peak
