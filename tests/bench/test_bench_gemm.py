"""GEMM FLOP formula against torch's FLOP counter, and the peak measurement's bookkeeping."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidgan.bench.gemm import gemm_flops, measure_gemm_peak
from vidgan.bench.measure import count_flops


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (3, 5, 7), (64, 32, 16), (128, 128, 128)])
def test_gemm_flops_matches_flop_counter(m, n, k):
    a, b = torch.randn(m, k), torch.randn(k, n)
    counter = FlopCounterMode(display=False)
    with counter:
        a @ b
    assert counter.get_total_flops() == gemm_flops(m, n, k) == 2 * m * n * k


def test_count_flops_of_a_linear_layer_forward_and_backward():
    lin = torch.nn.Linear(24, 10, bias=False)
    x = torch.randn(6, 24)
    assert count_flops(lambda: lin(x)) == gemm_flops(6, 10, 24)
    # backward of x @ W^T w.r.t. W only (x needs no grad): one more product of the same size
    assert count_flops(lambda: lin(x).sum().backward()) == 2 * gemm_flops(6, 10, 24)


def test_gemm_peak_is_the_best_size_and_consistent_with_its_timing():
    peak = measure_gemm_peak("fp32", repeats=2, budget_s=5.0, sizes=(64, 128))
    assert [s["size"] for s in peak.sizes] == [64, 128]
    for s in peak.sizes:
        assert s["gflops"] == pytest.approx(
            gemm_flops(s["size"], s["size"], s["size"]) / s["best_s"] / 1e9
        )
    assert peak.gflops == max(s["gflops"] for s in peak.sizes) > 0
    assert peak.size in (64, 128)


def test_gemm_peak_stops_when_the_next_size_would_exceed_the_budget():
    peak = measure_gemm_peak("fp32", repeats=1, budget_s=0.0, sizes=(64, 128, 256))
    assert [s["size"] for s in peak.sizes] == [64]  # the smallest size is always measured
    assert peak.to_json()["dtype"] == "fp32"
