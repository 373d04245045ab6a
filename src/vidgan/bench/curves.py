"""Cost curves: generation time and peak memory against frames and against resolution.

Frames (16, 32, ..., 1024): one video from each model's largest toy preset. Continuous-time
models render in chunks of `CHUNK` frames, twice: through `vidgan.sample.sample(chunk_frames=)`
(the output kept, as the API returns it) and streamed (each chunk rendered and dropped, as a
writer to disk would), which separates the model's own working memory from the growing output.
Discrete-length models (G3AN) show the lengths they support.

Resolution (32..256): one 16-frame video at a config of each resolution. Models listed in
`RESOLUTION_CONFIGS` get their toy preset with the size fields changed and widths reduced as
stated there; other models show their native resolution only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vidgan.bench.machine import load_average, machine_info, machine_line
from vidgan.bench.measure import Task, build_generator
from vidgan.bench.suite import Progress, executor, presets_of, resolve_models

FRAMES: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)
QUICK_FRAMES: tuple[int, ...] = (16, 32, 64)
RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256)
QUICK_RESOLUTIONS: tuple[int, ...] = (32, 64)
CHUNK = 16
RES_FRAMES = 16


def _fmr_at(res: int) -> dict[str, Any]:
    """fmr-toy-64's widths (64 at 4-8 px, 32 at 16 px, 16 from 32 px on) at `res` px."""
    table = {4: 64, 8: 64, 16: 32, 32: 16, 64: 16, 128: 16, 256: 16}
    widths = {k: v for k, v in table.items() if k <= res}
    return {"image_size": res, "channels": widths, "d_channels": widths}


def _digan_at(res: int) -> dict[str, Any]:
    """digan-toy-64 at `res` px: width min(4096 / res, 64), Fourier features and the extra FMM
    layer on the last block, as the toy presets do."""
    return {
        "resolution": res,
        "channel_base": 4096,
        "channel_max": 64,
        "emb_high_from": res,
        "extra_convs_from": res,
    }


#: model -> (base preset, model fields at a resolution, how the widths were reduced)
RESOLUTION_CONFIGS: dict[str, tuple[str, Callable[[int], dict[str, Any]], str]] = {
    "fmr": ("fmr-toy-64", _fmr_at, "fmr-toy-64 widths: 64 at 4-8 px, 32 at 16 px, 16 above"),
    "digan": ("digan-toy-64", _digan_at, "digan-toy-64 widths: min(4096 / res, 64)"),
}


@dataclass(frozen=True)
class CurveOptions:
    models: tuple[str, ...] = ()
    quick: bool = False
    threads: int = 1
    device: str = "cpu"
    precision: str = "fp32"
    inprocess: bool = False
    repeats: int = 2
    progress: bool = True


def curve_preset(model: str) -> str:
    """The model's largest toy preset (the tiny one when it has no toy preset)."""
    found = presets_of(model, "toy") or presets_of(model, "tiny")
    if not found:
        from vidgan.errors import ConfigError

        raise ConfigError(f"model {model!r} has no toy or tiny preset to draw cost curves with.")
    return found[-1]


def plan_curves(options: CurveOptions) -> list[tuple[str, Task, dict[str, Any]]]:
    """(series, task, labels) for every point: series is "frames" or "resolution"."""
    frames = QUICK_FRAMES if options.quick else FRAMES
    sizes = QUICK_RESOLUTIONS if options.quick else RESOLUTIONS
    repeats = 1 if options.quick else options.repeats
    base = dict(
        videos=1, repeats=repeats, warmup=0, count_flops=False, precision=options.precision,
        device=options.device, threads=options.threads,
    )  # fmt: skip
    out: list[tuple[str, Task, dict[str, Any]]] = []
    for model in resolve_models(options.models):
        preset = curve_preset(model)
        G = build_generator(preset)
        lengths = G.supported_lengths
        if lengths is None:
            points, modes = list(frames), ("sample", "stream")
        else:
            points = sorted({n for n in lengths if n in frames} | {max(lengths)})
            modes = ("sample",)
        for mode in modes:
            for n in points:
                chunk = CHUNK if G.continuous_time else 0
                task = Task(kind=mode, preset=preset, frames=n, chunk=chunk, **base)
                out.append(("frames", task, {"model": model, "mode": mode}))
        if model in RESOLUTION_CONFIGS:
            res_preset, fields, note = RESOLUTION_CONFIGS[model]
            for res in sizes:
                task = Task(kind="sample", preset=res_preset, model=fields(res), frames=RES_FRAMES,
                            **base)  # fmt: skip
                out.append(("resolution", task, {"model": model, "mode": "sample", "widths": note}))
        else:
            n = RES_FRAMES if lengths is None or RES_FRAMES in lengths else min(lengths)
            task = Task(kind="sample", preset=preset, frames=n, **base)
            note = f"{preset} (native resolution only)"
            out.append(("resolution", task, {"model": model, "mode": "sample", "widths": note}))
    return out


def run_curves(options: CurveOptions, *, command: str = "vidgan bench --curves") -> dict[str, Any]:
    t0 = time.perf_counter()
    run = executor(options.inprocess)
    device = torch.device(options.device)
    points = plan_curves(options)
    machine = machine_info(threads=options.threads, device=device)
    rows: list[dict[str, Any]] = []
    bar = Progress(len(points), "cost curves", options.progress)
    for series, task, labels in points:
        bar.start(f"{labels['model']} {series} {task.frames}f {task.kind} {task.preset}")
        res = run(task)
        rows.append({"series": series, "preset": task.preset, "model_fields": task.model,
                     **labels, **res})  # fmt: skip
        bar.done(res)
    bar.close()
    machine["load_average_end"] = load_average()
    return {
        "command": command,
        "machine": machine,
        "machine_line": machine_line(machine),
        "options": {
            "quick": options.quick,
            "precision": options.precision,
            "inprocess": options.inprocess,
            "chunk": CHUNK,
        },
        "points": rows,
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }


# --- summaries, table, plot ------------------------------------------------------------------
def _series(report: dict[str, Any], series: str, model: str, mode: str) -> list[dict[str, Any]]:
    rows = [
        r
        for r in report["points"]
        if r["series"] == series and r["model"] == model and r["mode"] == mode and "error" not in r
    ]
    return sorted(rows, key=lambda r: (r.get("height", 0), r["frames"]))


def _models(report: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in report["points"]))


def summarize(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model: time per frame at the longest / shortest length, and memory growth."""
    out: dict[str, dict[str, Any]] = {}
    for m in _models(report):
        s = _series(report, "frames", m, "sample")
        if len(s) < 2:
            continue
        a, b = s[0], s[-1]
        d: dict[str, Any] = {
            "frames": (a["frames"], b["frames"]),
            "time_per_frame_ratio": b["s_per_frame"] / a["s_per_frame"],
            "sample_work_mb": (a["work_mem_mb"], b["work_mem_mb"]),
            "output_mb": (a["output_mb"], b["output_mb"]),
        }
        st = _series(report, "frames", m, "stream")
        if len(st) >= 2:
            d["stream_work_mb"] = (st[0]["work_mem_mb"], st[-1]["work_mem_mb"])
        out[m] = d
    return out


def format_curves(report: dict[str, Any]) -> str:
    lines = [
        f"{report['machine_line']} (end of run: load "
        f"{' '.join(f'{x:.1f}' for x in report['machine'].get('load_average_end') or [])})",
        "",
        f"Frames: 1 video, chunks of {report['options']['chunk']} frames for continuous-time "
        "models; `sample` = vidgan.sample.sample (output kept), `stream` = the same chunks "
        "rendered and dropped. Times are the best of the repeats; memory is the RSS high-water "
        "mark of the measurement's process, `+work` = above the level before generating.",
        "",
        "| model | preset | px | frames | sample s | ms/frame | sample peak MB (+work) "
        "| output MB | stream s | stream +work MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    errors = [r for r in report["points"] if "error" in r]
    for m in _models(report):
        stream = {r["frames"]: r for r in _series(report, "frames", m, "stream")}
        for r in _series(report, "frames", m, "sample"):
            st = stream.get(r["frames"])
            lines.append(
                f"| {m} | {r['preset']} | {r['height']} | {r['frames']} | {r['best_s']:.3f} | "
                f"{1000 * r['s_per_frame']:.2f} | {r['peak_mem_mb']:.0f} (+{r['work_mem_mb']:.0f})"
                f" | {r['output_mb']:.1f} | {'-' if st is None else format(st['best_s'], '.3f')} | "
                f"{'-' if st is None else format(st['work_mem_mb'], '.0f')} |"
            )
    lines += [
        "",
        f"Resolution: 1 video of {RES_FRAMES} frames (G3AN: its native 64 px only).",
        "",
        "| model | widths | px | s per video | ms/frame | peak MB (+work) | output MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in _models(report):
        for r in _series(report, "resolution", m, "sample"):
            lines.append(
                f"| {m} | {r['widths']} | {r['height']} | {r['best_s']:.3f} | "
                f"{1000 * r['s_per_frame']:.2f} | {r['peak_mem_mb']:.0f} (+{r['work_mem_mb']:.0f})"
                f" | {r['output_mb']:.1f} |"
            )
    summary = summarize(report)
    if summary:
        lines += ["", "Growth from the shortest to the longest video:", ""]
    for m, d in summary.items():
        f0, f1 = d["frames"]
        text = (
            f"- {m}: {f0} -> {f1} frames, time per frame x{d['time_per_frame_ratio']:.2f}; "
            f"sample() +work {d['sample_work_mb'][0]:.0f} -> {d['sample_work_mb'][1]:.0f} MB "
            f"(output {d['output_mb'][0]:.1f} -> {d['output_mb'][1]:.1f} MB)"
        )
        if "stream_work_mb" in d:
            text += (
                f"; streamed +work {d['stream_work_mb'][0]:.0f} -> {d['stream_work_mb'][1]:.0f} MB"
            )
        lines.append(text + ".")
    for r in errors:
        lines.append(f"- error at {r['model']} {r['series']} {r['frames']} frames: {r['error']}")
    lines += ["", f"`{report['command']}` ({report['elapsed_s']:.0f} s)"]
    return "\n".join(lines) + "\n"


def plot_curves(report: dict[str, Any], path: str | Path) -> Path:
    """2x2 PNG: time and memory against frames (left) and resolution (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, ax = plt.subplots(2, 2, figsize=(9, 6.5), dpi=80)
    colors = dict(zip(_models(report), ("C0", "C1", "C2", "C3", "C4", "C5"), strict=False))
    for m in _models(report):
        c = colors[m]
        s = _series(report, "frames", m, "sample")
        st = _series(report, "frames", m, "stream")
        if s:
            x = [r["frames"] for r in s]
            ax[0, 0].plot(x, [r["best_s"] for r in s], "o-", color=c, label=f"{m} sample()")
            ax[1, 0].plot(x, [r["work_mem_mb"] for r in s], "o-", color=c, label=f"{m} sample()")
        if st:
            x = [r["frames"] for r in st]
            ax[0, 0].plot(x, [r["best_s"] for r in st], "s--", color=c, alpha=0.6,
                          label=f"{m} streamed")  # fmt: skip
            ax[1, 0].plot(x, [r["work_mem_mb"] for r in st], "s--", color=c, alpha=0.6,
                          label=f"{m} streamed")  # fmt: skip
        rs = _series(report, "resolution", m, "sample")
        if rs:
            x = [r["height"] for r in rs]
            ax[0, 1].plot(x, [1000 * r["s_per_frame"] for r in rs], "o-", color=c, label=m)
            ax[1, 1].plot(x, [r["work_mem_mb"] for r in rs], "o-", color=c, label=m)
    titles = [
        ("generation time vs frames (1 video)", "frames", "seconds"),
        ("time per frame vs resolution", "pixels (side)", "ms / frame"),
        ("working memory vs frames", "frames", "MB above start"),
        ("working memory vs resolution (16 frames)", "pixels (side)", "MB above start"),
    ]
    ax[0, 0].set_yscale("log")
    ax[0, 1].set_yscale("log")
    for a, (title, xl, yl) in zip(ax.flat, titles, strict=True):
        a.set_title(title, fontsize=10)
        a.set_xlabel(xl)
        a.set_ylabel(yl)
        a.set_xscale("log", base=2)
        xs = sorted({int(x) for line in a.lines for x in line.get_xdata()})
        if xs:
            a.set_xticks(xs, [str(x) for x in xs])
        a.yaxis.set_major_formatter(ScalarFormatter())
        a.yaxis.set_minor_formatter(NullFormatter())
        a.grid(alpha=0.3)
        if a.lines:
            a.legend(fontsize=7)
    fig.suptitle(report["machine_line"], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_curves(report: dict[str, Any], out: str | Path) -> list[Path]:
    """cost_curves.json, cost_curves.md and cost_curves.png in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    j = out / "cost_curves.json"
    j.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    md = out / "cost_curves.md"
    md.write_text(format_curves(report))
    return [j, md, plot_curves(report, out / "cost_curves.png")]
