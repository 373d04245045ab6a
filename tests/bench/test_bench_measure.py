"""Single measurements on tiny presets: FLOPs, rates and memory are the numbers they claim."""

from __future__ import annotations

import sys

import pytest
import torch

from vidgan.bench.measure import (
    MemoryProbe,
    Task,
    build_generator,
    count_flops,
    fit_length,
    run_task,
)
from vidgan.bench.suite import PRESET_SHAPES, SHAPES, BenchOptions, plan, preset_kind
from vidgan.errors import ConfigError


def test_task_json_round_trip():
    t = Task(
        kind="train", preset="fmr-tiny", model={"image_size": 16}, overrides=("data.frames=2",)
    )
    assert Task.from_json(t.to_json()) == t


def test_forward_flops_and_rates_are_consistent():
    r = run_task(Task(kind="forward", preset="fmr-tiny", videos=2, frames=3, repeats=2))
    G = build_generator("fmr-tiny").eval().requires_grad_(False)
    lat = G.sample_latents(2, n_frames=3)
    with torch.no_grad():
        want = count_flops(lambda: G.generate(lat, G.frame_times(3)))
    assert r["flops"] == want > 0
    assert r["flops_per_frame"] == pytest.approx(want / 6)
    assert r["shape"] == [2, 3, 3, 16, 16]
    assert len(r["times_s"]) == 2
    assert r["frames_per_s"] == pytest.approx(6 / r["median_s"])
    assert r["frames_per_s_best"] >= r["frames_per_s"] > 0


def test_fit_length_picks_a_supported_length():
    G = build_generator("g3an-tiny")
    assert fit_length(G, 4) == 16
    assert fit_length(G, 33) == 36
    assert fit_length(G, 500) == 48
    assert fit_length(build_generator("fmr-tiny"), 7) == 7


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS high-water via /proc")
def test_memory_probe_sees_an_allocation_and_the_level_before():
    probe = MemoryProbe(torch.device("cpu"))
    probe.start()
    x = torch.ones(64 * 2**20 // 4)  # 64 MB, every page touched
    out = probe.stop()
    del x
    assert out["peak_mem_mb"] >= out["base_mem_mb"] + 60
    assert 60 <= out["work_mem_mb"] <= 200


def test_train_step_excludes_the_r1_step_and_counts_backward():
    r = run_task(Task(kind="train", preset="digan-tiny", batch=2, repeats=1, warmup=0))
    assert r["r1_interval"] == 16 and r["batch"] == 2 and r["frames"] == 4
    assert sorted(r["discriminators"]) == ["image", "video"]
    fwd = run_task(Task(kind="forward", preset="digan-tiny", videos=2, frames=2, repeats=1))
    # G renders 2-frame pairs for the G and D steps; backward adds at least as much again
    assert r["flops"] > 2 * fwd["flops"]
    assert r["best_s"] > 0


def test_plan_picks_the_smallest_preset_of_each_kind():
    items = plan(BenchOptions(models=("fmr",), configs=("toy", "paper", "digan-toy-64")))
    assert [(m, p) for m, p, _ in items] == [
        ("fmr", "fmr-toy-32"),
        ("fmr", "fmr-paper-256"),
        ("digan", "digan-toy-64"),
    ]
    assert items[0][2] == SHAPES["toy"]
    assert items[1][2] == PRESET_SHAPES["fmr-paper-256"]
    quick = plan(BenchOptions(models=("fmr",), configs=("tiny",), quick=True))
    assert (quick[0][2].repeats, quick[0][2].warmup) == (2, 0)
    assert plan(BenchOptions(models=("fmr",), configs=("tiny",), repeats=7))[0][2].repeats == 7
    assert preset_kind("g3an-paper-64") == "paper" and preset_kind("fmr-tiny") == "tiny"


def test_plan_rejects_an_unknown_config_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'toy'"):
        plan(BenchOptions(models=("fmr",), configs=("toi",)))
