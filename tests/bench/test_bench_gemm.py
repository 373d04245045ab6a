"""GEMM FLOP formula against torch's FLOP counter, and the peak measurement's bookkeeping."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidgan.bench.gemm import gemm_flops, measure_gemm_peak
from vidgan.bench.measure import build_generator, count_flops


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


def test_fused_and_in_place_products_are_counted():
    """DIGAN's inference path (fused oneDNN linears, in-place addmm) counts the FLOPs of the
    autograd path, which uses only ops torch's counter knows."""
    from vidgan.nn.inr import CoordGrid, linear_act

    x, w = torch.randn(7, 12), torch.randn(5, 12)
    assert count_flops(lambda: linear_act(x, w, None, lrelu=True)) == gemm_flops(7, 5, 12)
    y = torch.zeros(7, 5)
    assert count_flops(lambda: y.addmm_(x, w.t())) == gemm_flops(7, 5, 12)
    G = build_generator("digan-tiny").eval().requires_grad_(False)
    lat = G.sample_latents(1)
    t = G.frame_times(3)
    coords = CoordGrid(G.cfg.resolution)
    with torch.no_grad():
        content = G.prepare(G.mapping_for(lat.content), lat.motion)
        t2 = t[None]
        fast = count_flops(lambda: G.synthesis.render(content, t2, coords))
        slow = count_flops(lambda: G.synthesis.render(content, t2, coords, trace={}))
    # the autograd path also counts W.(x, y) as a K = 2 product; the inference path builds it
    # with two multiply-adds (elementwise, not counted)
    syn = G.synthesis
    sizes = syn.stage_sizes(coords.size)
    k2 = sum(
        gemm_flops(b.coord_fuser.emb_size, n * n, 2)
        for b, n in zip(syn.blocks(), sizes)
        if b.coord_fuser is not None
    )
    assert fast == slow - k2 > 0.9 * slow
