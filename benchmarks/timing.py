"""Timing shared by the ours-vs-official benchmark scripts (imported from benchmarks/)."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch


def amp_context(on: bool):
    """bf16 autocast on the CPU when `on`, else nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if on else contextlib.nullcontext()


def interleaved(fns: dict[str, Callable[[], None]], repeats: int, amp: bool) -> dict[str, float]:
    """Median seconds per call of each fn, calls alternating A B A B ... after one warm-up each.

    Alternating means load from other processes hits every side alike, so ratios are fair.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    with amp_context(amp):
        for fn in fns.values():
            fn()
        for _ in range(repeats):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def endless(batches: Iterable[Any]) -> Iterator[Any]:
    """Batches from `batches` forever, starting a new pass (new iterator) when one ends."""
    while True:
        yield from batches


def add_heap_flag(p: argparse.ArgumentParser, ours_runs_as: str) -> None:
    """`--heap keep|default|shipped`: the C heap policy of the sides (vidgan.heap)."""
    p.add_argument(
        "--heap",
        choices=["keep", "default", "shipped"],
        default="keep",
        help=f"keep / default: both sides in this process with freed memory kept in the C heap "
        f"(vidgan.heap, as {ours_runs_as} runs on CPUs) / on glibc's defaults; shipped: each "
        "side in a process of its own, ours keeping the heap, the other on glibc's defaults",
    )
