"""`vidgan bench` through the CLI: flag errors, the JSON report, cost curves (tiny shapes)."""

from __future__ import annotations

import json

import pytest

from vidgan.bench.measure import Task
from vidgan.bench.suite import run_isolated
from vidgan.cli import main


def _error(capsys, *argv: str) -> str:
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_unknown_model_gets_did_you_mean(capsys):
    assert "did you mean 'fmr'" in _error(capsys, "--models", "fmt")


def test_unknown_config_gets_did_you_mean(capsys):
    assert "did you mean 'paper'" in _error(capsys, "--configs", "papr", "--models", "fmr")


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--threads", "0"], "--threads must be at least 1"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--precision", "fp16"], "--precision must be fp32 or bf16"),
        (["--json", "/nonexistent-dir/x.json"], "does not exist"),
        (["--curves"], "--curves needs --out"),
        (["--out", "x"], "--out is for --curves"),
        (["--device", "tpu9"], "--device"),
        (["--models", ","], "--models needs at least one name"),
    ],
)
def test_bad_flags_are_one_sentence(capsys, argv, words):
    assert words in _error(capsys, *argv)


def _check_part(part: dict, peak: float) -> None:
    assert "error" not in part, part
    assert part["best_s"] > 0 and part["median_s"] >= part["best_s"]
    assert part["flops"] > 0
    assert part["gflops"] == pytest.approx(part["flops"] / part["best_s"] / 1e9)
    assert part["frac_peak"] == pytest.approx(part["gflops"] / peak)
    assert 0 < part["frac_peak"] <= 1
    assert part["peak_mem_mb"] >= part["base_mem_mb"] > 0
    assert part["work_mem_mb"] >= 0


@pytest.mark.slow
def test_quick_end_to_end_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--configs", "tiny", "--models", "fmr,digan", "--threads", "1"]
    assert main([*argv, "--inprocess", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report) >= {"command", "machine", "machine_line", "options", "gemm", "results"}
    m = report["machine"]
    assert {"cpu", "cores", "threads", "torch", "device", "load_average"} <= set(m)
    assert m["threads"] == 1 and m["device"] == "cpu"
    assert report["command"].startswith("vidgan bench --models fmr,digan --configs tiny")
    for dtype in ("fp32", "bf16"):
        assert report["gemm"][dtype]["gflops"] > 0
    assert report["peak_gflops"] == report["gemm"]["fp32"]["gflops"]
    assert [(r["model"], r["preset"]) for r in report["results"]] == [
        ("fmr", "fmr-tiny"),
        ("digan", "digan-tiny"),
    ]
    for r in report["results"]:
        fwd, tr = r["forward"], r["train"]
        _check_part(fwd, report["peak_gflops"])
        _check_part(tr, report["peak_gflops"])
        assert fwd["frames_per_s"] == pytest.approx(fwd["videos"] * fwd["frames"] / fwd["median_s"])
        assert len(fwd["times_s"]) == 2  # --quick repeats
        assert tr["batch"] == 2
    assert "| fmr | fmr-tiny | 2x4 |" in printed


@pytest.mark.slow
def test_isolated_measurement_runs_in_a_worker_process():
    task = Task(kind="forward", preset="fmr-tiny", videos=2, frames=2, repeats=1, warmup=0)
    fwd = run_isolated(task)
    assert "error" not in fwd, fwd
    assert fwd["frames"] == 2 and fwd["flops"] > 0 and fwd["frames_per_s"] > 0
    # a fresh process: its baseline is an interpreter with torch and the model loaded
    assert fwd["peak_mem_mb"] >= fwd["base_mem_mb"] > 50
    bad = run_isolated(Task(kind="forward", preset="no-such-preset"))
    assert bad["error"].startswith("ConfigError: unknown preset 'no-such-preset'")


@pytest.mark.slow
def test_quick_cost_curves_write_table_plot_and_json(tmp_path, capsys):
    out = tmp_path / "curves"
    argv = ["bench", "--curves", "--quick", "--models", "fmr", "--inprocess", "--threads", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    report = json.loads((out / "cost_curves.json").read_text())
    frames = [p for p in report["points"] if p["series"] == "frames"]
    assert sorted((p["mode"], p["frames"]) for p in frames) == [
        (mode, n) for mode in ("sample", "stream") for n in (16, 32, 64)
    ]
    for p in frames:
        assert "error" not in p and p["best_s"] > 0 and p["chunk"] == 16
        if p["mode"] == "sample":  # [1, 3, T, 64, 64] float32
            assert p["output_mb"] == pytest.approx(3 * p["frames"] * 64 * 64 * 4 / 2**20, abs=0.01)
    res = sorted(p["height"] for p in report["points"] if p["series"] == "resolution")
    assert res == [32, 64]
    png = (out / "cost_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "cost_curves.md").read_text()
    assert "| fmr | fmr-toy-64 | 64 | 64 |" in md
    assert "time per frame" in md
