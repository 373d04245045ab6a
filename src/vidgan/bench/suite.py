"""`vidgan bench`: the GEMM peak, then every model at each configuration, in one run.

For each (model, preset): G forward frames/s (eval, no_grad, warm-up excluded), seconds per
training step through the shared loop, FLOPs per G forward and per step (FlopCounterMode), the
fraction of the measured GEMM peak those FLOPs reach, and peak memory. Each measurement runs in
its own process unless `inprocess=True`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from vidgan.bench.gemm import SIZES, measure_gemm_peak
from vidgan.bench.machine import load_average, machine_info, machine_line
from vidgan.bench.measure import Task, run_task
from vidgan.bench.worker import MARKER
from vidgan.config import load_preset, preset_names
from vidgan.errors import ConfigError
from vidgan.models.registry import get_model, load_models
from vidgan.registry import nearest

CONFIG_KINDS: tuple[str, ...] = ("tiny", "toy", "paper")


@dataclass(frozen=True)
class Shape:
    """How big one configuration's measurements are."""

    videos: int  # G forward: videos at once
    frames: int  # G forward: frames per video (discrete models: nearest supported length)
    batch: int  # training step: global batch
    repeats: int  # timed calls
    warmup: int = 1  # untimed calls after the FLOP-counting one
    train_overrides: tuple[str, ...] = ()  # run overrides of the training step


SHAPES: dict[str, Shape] = {
    "tiny": Shape(videos=2, frames=4, batch=2, repeats=3),
    "toy": Shape(videos=8, frames=16, batch=8, repeats=5),
    # a paper-size G forward costs 15-90 GFLOP per frame: one video, a few frames, one repeat
    "paper": Shape(videos=1, frames=4, batch=2, repeats=1, warmup=0),
}
# Presets whose kind's shape does not fit a CPU run. fmr-paper-256: one step at batch 2 with
# 16-frame clips is ~12 TFLOP; the release's trainer renders 2-frame fakes (delta_t=True), so
# the step here uses 2-frame clips at batch 1 (~1 TFLOP); its G forward renders one 16-frame
# clip (~1.5 TFLOP).
# digan-paper-128: the G forward renders the paper's 16-frame clip (its per-video work, styles
# and Fourier features, is shared by the clip's frames as in any real use), three timed calls.
PRESET_SHAPES: dict[str, Shape] = {
    "digan-paper-128": Shape(videos=1, frames=16, batch=2, repeats=3, warmup=1),
    "fmr-paper-256": Shape(
        videos=1, frames=16, batch=1, repeats=1, warmup=0, train_overrides=("data.frames=2",)
    ),
}
QUICK_REPEATS = 2


@dataclass(frozen=True)
class BenchOptions:
    """Everything `vidgan bench` was asked to do."""

    models: tuple[str, ...] = ()  # empty: every registered model
    configs: tuple[str, ...] = ("toy", "paper")  # kinds (tiny, toy, paper) or preset names
    quick: bool = False  # small GEMMs, QUICK_REPEATS repeats
    threads: int = 1
    device: str = "cpu"  # already resolved (see pick_device)
    precision: str = "fp32"  # fp32 | bf16 (model runs; both GEMM peaks are always measured)
    repeats: int | None = None  # override every shape's repeats
    inprocess: bool = False  # run measurements in this process instead of one process each
    train: bool = True  # also measure the training step
    progress: bool = True


def parse_list(text: str | None, flag: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in (text or "").split(",") if s.strip())
    if text is not None and not items:
        raise ConfigError(f"{flag} needs at least one name, got {text!r}.")
    return items


def preset_kind(name: str) -> str | None:
    """`fmr-toy-32` -> "toy"; None when the name follows no kind."""
    for kind in CONFIG_KINDS:
        if re.fullmatch(rf"[a-z0-9_]+-{kind}(-.*)?", name):
            return kind
    return None


def _size_key(name: str) -> tuple[int, str]:
    m = re.search(r"-(\d+)$", name)
    return (int(m.group(1)) if m else 0, name)


def presets_of(model: str, kind: str) -> list[str]:
    """Presets `<model>-<kind>` and `<model>-<kind>-*`, smallest size first."""
    names = [
        n for n in preset_names() if n == f"{model}-{kind}" or n.startswith(f"{model}-{kind}-")
    ]
    return sorted(names, key=_size_key)


def resolve_models(models: Sequence[str]) -> list[str]:
    """Registered model names (unknown ones get a did-you-mean error)."""
    names = load_models()
    if not models:
        return names
    for m in models:
        get_model(m)
    return list(dict.fromkeys(models))


def plan(options: BenchOptions) -> list[tuple[str, str, Shape]]:
    """(model, preset, shape) for every requested model and configuration."""
    models = resolve_models(options.models)
    presets = preset_names()
    out: list[tuple[str, str, Shape]] = []
    for entry in options.configs:
        if entry in CONFIG_KINDS:
            for m in models:
                found = presets_of(m, entry)
                if found:
                    out.append((m, found[0], PRESET_SHAPES.get(found[0], SHAPES[entry])))
            continue
        if entry not in presets:
            hint = nearest(entry, [*CONFIG_KINDS, *presets]) or "."
            raise ConfigError(
                f"--configs: unknown configuration {entry!r}{hint} "
                f"Valid: {', '.join(CONFIG_KINDS)} or a preset name."
            )
        model = str(load_preset(entry)["model_name"])
        shape = PRESET_SHAPES.get(entry) or SHAPES[preset_kind(entry) or "toy"]
        out.append((model, entry, shape))
    if not out:
        raise ConfigError(
            f"--configs {','.join(options.configs)}: no preset matches the models "
            f"{', '.join(models)}."
        )
    if options.quick:  # the untimed FLOP-counting call is the only warm-up
        out = [(m, p, replace(s, repeats=QUICK_REPEATS, warmup=0)) for m, p, s in out]
    if options.repeats is not None:
        out = [(m, p, replace(s, repeats=options.repeats)) for m, p, s in out]
    return out


# --- running measurements -------------------------------------------------------------------
def run_isolated(task: Task) -> dict[str, Any]:
    """Run `task` in a fresh Python process (its RSS peak is this measurement's alone)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(task.threads), "MKL_NUM_THREADS": str(task.threads)}
    proc = subprocess.run(
        [sys.executable, "-m", "vidgan.bench.worker"],
        input=json.dumps(task.to_json()),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"worker exited with code {proc.returncode}: {tail}"}


def run_inprocess(task: Task) -> dict[str, Any]:
    try:
        return run_task(task)
    except Exception as e:  # same contract as the worker: the error is part of the result
        first = (str(e).strip().splitlines() or [""])[0]
        return {"error": f"{type(e).__name__}: {first}"}


def executor(inprocess: bool) -> Callable[[Task], dict[str, Any]]:
    return run_inprocess if inprocess else run_isolated


# --- the run ----------------------------------------------------------------------------------
class Progress:
    """tqdm on a terminal; elsewhere (logs of long runs) one stderr line per finished item."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = tqdm(total=total, desc=desc, disable=None if enabled else True)
        self.log = enabled and bool(self.bar.disable)
        self.desc, self.total, self.n, self.item = desc, total, 0, ""
        self.t0 = time.perf_counter()

    def start(self, item: str) -> None:
        self.item = item
        self.bar.set_postfix_str(item)

    def done(self, result: dict[str, Any] | None = None) -> None:
        self.n += 1
        self.bar.update()
        if self.log:
            note = f" {result['error']}" if result and "error" in result else ""
            elapsed = time.perf_counter() - self.t0
            print(
                f"{self.desc} [{self.n}/{self.total}] {self.item}{note} ({elapsed:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        self.bar.close()


def _frac(gflops: float | None, peak: float) -> float | None:
    return None if gflops is None or peak <= 0 else gflops / peak


def _add_rates(res: dict[str, Any], peak: float) -> None:
    """Achieved GFLOP/s (best call) and its fraction of the GEMM peak."""
    if "error" in res or not res.get("flops"):
        return
    res["gflops"] = res["flops"] / res["best_s"] / 1e9
    res["frac_peak"] = _frac(res["gflops"], peak)


def run_bench(options: BenchOptions, *, command: str = "vidgan bench") -> dict[str, Any]:
    """The whole benchmark; returns the report that `--json` writes."""
    t_start = time.perf_counter()
    device = torch.device(options.device)
    items = plan(options)
    run = executor(options.inprocess)
    machine = machine_info(threads=options.threads, device=device)
    steps = 2 + len(items) * (2 if options.train else 1)
    bar = Progress(steps, "vidgan bench", options.progress)
    gemm: dict[str, Any] = {}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        for dtype in ("fp32", "bf16"):
            bar.start(f"GEMM {dtype}")
            peak = measure_gemm_peak(
                dtype,
                device=device,
                repeats=2 if options.quick else 3,
                budget_s=1.5 if options.quick else 4.0,
                sizes=(512, 1024) if options.quick else SIZES,
            )
            gemm[dtype] = peak.to_json()
            bar.done()
    finally:
        torch.set_num_threads(old_threads)
    peak = gemm[options.precision]["gflops"]
    results: list[dict[str, Any]] = []
    for model, preset, shape in items:
        base = dict(
            preset=preset, repeats=shape.repeats, warmup=shape.warmup, precision=options.precision,
            device=options.device, threads=options.threads,
        )  # fmt: skip
        row: dict[str, Any] = {"model": model, "preset": preset, "kind": preset_kind(preset)}
        bar.start(f"{preset} G forward")
        fwd = run(Task(kind="forward", videos=shape.videos, frames=shape.frames, **base))
        _add_rates(fwd, peak)
        row["forward"] = fwd
        bar.done(fwd)
        if options.train:
            bar.start(f"{preset} training step")
            tr = run(Task(kind="train", batch=shape.batch, overrides=shape.train_overrides, **base))
            _add_rates(tr, peak)
            tr["overrides"] = list(shape.train_overrides)
            row["train"] = tr
            bar.done(tr)
        results.append(row)
    bar.close()
    machine["load_average_end"] = load_average()
    return {
        "command": command,
        "machine": machine,
        "machine_line": machine_line(machine),
        "options": {
            "models": list(dict.fromkeys(m for m, _, _ in items)),
            "configs": list(options.configs),
            "quick": options.quick,
            "precision": options.precision,
            "inprocess": options.inprocess,
        },
        "gemm": gemm,
        "peak_gflops": peak,
        "results": results,
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }


# --- output -------------------------------------------------------------------------------------
def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_table(report: dict[str, Any]) -> str:
    """The markdown table printed at the end of a run (and pasted into benchmarks/README.md)."""
    g = report["gemm"]
    lines = [
        f"{report['machine_line']}",
        f"GEMM peak: fp32 {g['fp32']['gflops']:.1f} GFLOP/s (n={g['fp32']['size']}), "
        f"bf16 {g['bf16']['gflops']:.1f} GFLOP/s (n={g['bf16']['size']}); models run in "
        f"{report['options']['precision']}, fractions are of its peak.",
        "",
        "| model | preset | G fwd shape | frames/s | GFLOP/frame | % peak | fwd peak MB (+work) "
        "| step batch x frames | s/step | GFLOP/step | % peak | step peak MB (+work) |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        fw, tr = r["forward"], r.get("train") or {}
        cells = [r["model"], r["preset"]]
        if "error" in fw:
            cells += [f"error: {fw['error']}", "", "", "", ""]
        else:
            pf = fw.get("frac_peak")
            cells += [
                f"{fw['videos']}x{fw['frames']}",
                _f(fw["frames_per_s_best"], ".1f"),
                _f(None if fw["flops_per_frame"] is None else fw["flops_per_frame"] / 1e9, ".3f"),
                _f(None if pf is None else 100 * pf, ".1f"),
                f"{fw['peak_mem_mb']:.0f} (+{fw['work_mem_mb']:.0f})",
            ]
        if not tr:
            cells += ["-", "-", "-", "-", "-"]
        elif "error" in tr:
            cells += [f"error: {tr['error']}", "", "", "", ""]
        else:
            pf = tr.get("frac_peak")
            cells += [
                f"{tr['batch']}x{tr['frames']}",
                _f(tr["best_s"], ".3f"),
                _f(None if tr["flops"] is None else tr["flops"] / 1e9, ".2f"),
                _f(None if pf is None else 100 * pf, ".1f"),
                f"{tr['peak_mem_mb']:.0f} (+{tr['work_mem_mb']:.0f})",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def has_errors(report: dict[str, Any]) -> bool:
    rows = report.get("results") or report.get("points") or []
    for r in rows:
        for part in (r, r.get("forward") or {}, r.get("train") or {}):
            if isinstance(part, dict) and "error" in part:
                return True
    return False
