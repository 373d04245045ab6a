"""One measurement: G forward, a training step, or long-video generation, with time, FLOPs
and peak memory.

A measurement is a `Task` (plain data, JSON-able) so that it can run in a fresh process
(`python -m vidgan.bench.worker`): then the RSS high-water mark belongs to that measurement
alone. Models are reached only through their public API (presets, `ModelSpec.build_generator`,
`vidgan.sample.sample`, the shared training loop's `Trainer.train_step`), so every speed-up in
the model files shows up here without changes.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`; on the
CPU the process's RSS high-water mark (`VmHWM`), reset to the current RSS through
`/proc/self/clear_refs` right before the measured calls where Linux allows it (then a fresh
process is not even needed for a clean figure), else `resource.getrusage(...).ru_maxrss`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidgan.config import from_dict, load_preset
from vidgan.errors import ConfigError
from vidgan.models.base import VideoGenerator
from vidgan.models.registry import get_model

MB = 2**20
KINDS: tuple[str, ...] = ("forward", "train", "sample", "stream")


@dataclass(frozen=True)
class Task:
    """What to measure, as plain data (it crosses a process boundary as JSON)."""

    kind: str  # forward | train | sample | stream (see KINDS)
    preset: str  # preset name or YAML path
    model: dict[str, Any] = field(default_factory=dict)  # model fields set over the preset
    overrides: tuple[str, ...] = ()  # extra `section.key=value` run overrides (train only)
    videos: int = 1  # forward / sample / stream: videos generated at once
    frames: int = 16  # forward / sample / stream: frames per video
    batch: int = 8  # train: global batch of the step
    chunk: int = 0  # sample / stream: frames per chunk (0 = all at once)
    repeats: int = 3  # timed calls
    warmup: int = 1  # untimed calls after the FLOP-counting call
    count_flops: bool = True  # count FLOPs in the first (untimed) call
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    device: str = "cpu"
    threads: int = 1
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["overrides"] = list(self.overrides)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        data = dict(data)
        data["overrides"] = tuple(data.get("overrides", ()))
        return cls(**data)


# --- memory ------------------------------------------------------------------------------------
def _proc_status_kb(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{key}:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else None


def _reset_rss_peak() -> bool:
    """Set the RSS high-water mark to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _ru_maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


class MemoryProbe:
    """Peak memory of the calls between `start()` and `stop()`, and the level before them."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base_mb = 0.0
        self.method = ""

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base_mb = torch.cuda.memory_allocated(self.device) / MB
            self.method = "cuda max_memory_allocated"
            return
        reset = _reset_rss_peak()
        rss = _proc_status_kb("VmRSS")
        self.base_mb = rss / 1024 if rss is not None else _ru_maxrss_mb()
        self.method = "RSS high-water (reset)" if reset else "ru_maxrss (process peak)"

    def stop(self) -> dict[str, float | str]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / MB
        else:
            hwm = _proc_status_kb("VmHWM")
            peak = hwm / 1024 if hwm is not None else _ru_maxrss_mb()
        return {
            "peak_mem_mb": round(peak, 1),
            "base_mem_mb": round(self.base_mb, 1),
            "work_mem_mb": round(max(peak - self.base_mb, 0.0), 1),
            "mem_method": self.method,
        }


# --- timing and FLOPs ---------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], Any], *, repeats: int, warmup: int, device: torch.device
) -> list[float]:
    """Wall seconds of `repeats` calls of `fn` after `warmup` untimed ones (device-synced)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _fused_linear_flops(x_shape: Any, w_shape: Any, *args: Any, **kwargs: Any) -> int:
    """oneDNN's fused linear (`vidgan.nn.inr.linear_act`): rows x in x out multiply-adds."""
    return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]


def _addmm_inplace_flops(self_shape: Any, a_shape: Any, b_shape: Any, *args: Any, **kw: Any) -> int:
    """`Tensor.addmm_` (not in torch's registry): the product's multiply-adds."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


#: ops vidgan runs that torch.utils.flop_counter does not know
EXTRA_FLOP_FORMULAS = {
    torch.ops.mkldnn._linear_pointwise: _fused_linear_flops,
    torch.ops.aten.addmm_: _addmm_inplace_flops,
}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of `fn` as torch.utils.flop_counter counts them (matmuls, convolutions,
    attention; forward and backward; elementwise work is not counted), plus the fused and
    in-place matmuls in `EXTRA_FLOP_FORMULAS`."""
    counter = FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS)
    with counter:
        fn()
    return int(counter.get_total_flops())


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast for "bf16", nothing for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ConfigError(f"--precision must be fp32 or bf16, got {precision!r}.")
    return contextlib.nullcontext()


def _timing(times: list[float]) -> dict[str, Any]:
    return {
        "times_s": [round(t, 6) for t in times],
        "median_s": statistics.median(times),
        "best_s": min(times),
    }


# --- building models through the public API ---------------------------------------------------
def build_generator(preset: str, model: dict[str, Any] | None = None) -> VideoGenerator:
    """The generator of `preset` with `model` fields replaced (fresh weights, train mode)."""
    raw = load_preset(preset)
    spec = get_model(str(raw["model_name"]))
    fields = {**(raw.get("model") or {}), **(model or {})}
    return spec.build_generator(from_dict(spec.config_cls, fields, where=f"preset {preset}"))


def fit_length(G: VideoGenerator, frames: int) -> int:
    """`frames`, or for a discrete-length model the nearest length it supports (>= if any)."""
    lengths = G.supported_lengths
    if lengths is None or frames in lengths:
        return frames
    longer = [n for n in lengths if n >= frames]
    return min(longer) if longer else max(lengths)


def _generator_setup(task: Task) -> tuple[VideoGenerator, torch.device, torch.Generator]:
    device = torch.device(task.device)
    torch.manual_seed(task.seed)
    G = build_generator(task.preset, task.model).to(device).eval().requires_grad_(False)
    gen = torch.Generator(device=device).manual_seed(task.seed)
    return G, device, gen


def _common(G: VideoGenerator) -> dict[str, Any]:
    return {
        "generator": type(G).__name__,
        "params": sum(p.numel() for p in G.parameters()),
        "continuous_time": bool(G.continuous_time),
    }


# --- the measurements ----------------------------------------------------------------------------
def measure_forward(task: Task) -> dict[str, Any]:
    """G forward (eval, no_grad) on `videos` x `frames`; frames/s over the timed calls."""
    G, device, gen = _generator_setup(task)
    frames = fit_length(G, task.frames)
    latents = G.sample_latents(task.videos, n_frames=frames, generator=gen)
    t = G.frame_times(frames).to(device)
    out_shape: list[int] = []

    def call() -> None:
        with torch.no_grad(), autocast(task.precision, device):
            video = G.generate(latents, t)
        out_shape[:] = list(video.shape)

    flops = count_flops(call) if task.count_flops else None
    probe = MemoryProbe(device)
    probe.start()
    times = time_calls(call, repeats=task.repeats, warmup=task.warmup, device=device)
    res = {**_common(G), "videos": task.videos, "frames": frames, "shape": out_shape}
    res.update(_timing(times), **probe.stop())
    n = task.videos * frames
    res["frames_per_s"] = n / res["median_s"]
    res["frames_per_s_best"] = n / res["best_s"]
    res["flops"] = flops
    res["flops_per_frame"] = None if flops is None else flops / n
    return res


def _fake_dataset(run: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` random clips shaped as the recipe's clip spec asks (what the data loader would give)."""
    g = torch.Generator().manual_seed(seed)
    size = run.data.size or 64
    classes = int(getattr(run.model, "num_classes", 0) or 0)
    return [
        {
            "video": torch.rand(run.data.frames, 3, size, size, generator=g) * 2 - 1,
            "label": i % classes if classes else -1,
            "index": i,
        }
        for i in range(n)
    ]


def measure_train(task: Task) -> dict[str, Any]:
    """One step of the shared training loop (G step, D step, EMA) at `batch`; seconds per step.

    The lazy R1 phase (one step in `r1_interval`) is left out: the measured steps start at step
    1 and skip multiples of the interval.
    """
    from vidgan.train.config import resolve_run_config
    from vidgan.train.loop import Trainer

    device = torch.device(task.device)
    run = resolve_run_config(
        None,
        preset=task.preset,
        overrides=[
            f"train.batch={task.batch}",
            "train.accumulate=1",
            "train.workers=0",
            f"train.device={task.device}",
            f"train.amp={str(task.precision == 'bf16').lower()}",
            "train.metrics=",
            "train.best_metric=",
            "train.tensorboard=false",
            "train.sample_every=0",
            f"train.seed={task.seed}",
            *[f"model.{k}={v}" for k, v in task.model.items()],
            *task.overrides,
        ],
    )
    with tempfile.TemporaryDirectory(prefix="vidgan-bench-") as tmp:
        data = _fake_dataset(run, 2 * task.batch, task.seed)
        tr = Trainer(run, outdir=tmp, dataset=data, profile=1, progress=False)
        k = tr.hp.r1_interval
        r1_on = k > 0 and any(tr.hp.r1_gamma.values())
        tr.step = 1

        def call() -> None:
            if r1_on and tr.step % k == 0:
                tr.step += 1
            tr.train_step(batch)

        batch = next(tr.batches)
        flops = count_flops(call) if task.count_flops else None
        probe = MemoryProbe(device)
        probe.start()
        times = []
        for i in range(task.warmup + task.repeats):
            batch = next(tr.batches)  # data is not part of the step's time
            t = time_calls(call, repeats=1, warmup=0, device=device)
            if i >= task.warmup:
                times.extend(t)
        res = {**_common(tr.G), "batch": task.batch, "frames": int(run.data.frames)}
        res["size"] = int(run.data.size or 0)
        res["discriminators"] = list(tr.Ds.keys())
        res["r1_interval"] = k if r1_on else 0
        res.update(_timing(times), **probe.stop())
        res["flops"] = flops
        return res


def _chunks(n: int, chunk: int) -> Iterator[slice]:
    step = chunk or n
    for s in range(0, n, step):
        yield slice(s, s + step)


def measure_sample(task: Task) -> dict[str, Any]:
    """`vidgan.sample.sample(G, videos, n_frames=frames, chunk_frames=chunk)`, output kept."""
    from vidgan.sample import sample

    G, device, gen = _generator_setup(task)
    G.check_length(task.frames)
    chunk = task.chunk if G.continuous_time else 0
    out_mb: list[float] = [0.0]
    shape: list[int] = []

    def call() -> None:
        with autocast(task.precision, device):
            out = sample(
                G, task.videos, n_frames=task.frames, generator=gen,
                batch_size=task.videos, chunk_frames=chunk or None,
            )  # fmt: skip
        out_mb[0] = out.videos.numel() * out.videos.element_size() / MB
        shape[:] = list(out.videos.shape)

    return _measure_generation(task, G, device, call, chunk, out_mb, shape)


def measure_stream(task: Task) -> dict[str, Any]:
    """The same frames as `measure_sample`, rendered chunk by chunk and dropped (as a writer that
    streams to disk would): the model's own working memory, without the growing output."""
    G, device, gen = _generator_setup(task)
    G.check_length(task.frames)
    chunk = task.chunk if G.continuous_time else 0
    latents = G.sample_latents(task.videos, n_frames=task.frames, generator=gen)
    t = G.frame_times(task.frames).to(device)
    shape: list[int] = []

    def call() -> None:
        with torch.no_grad(), autocast(task.precision, device):
            for sl in _chunks(task.frames, chunk):
                piece = G.generate(latents, t[sl]).float().cpu()
                shape[:] = list(piece.shape)
                del piece

    return _measure_generation(task, G, device, call, chunk, [0.0], shape)


def _measure_generation(
    task: Task,
    G: VideoGenerator,
    device: torch.device,
    call: Callable[[], None],
    chunk: int,
    out_mb: list[float],
    shape: list[int],
) -> dict[str, Any]:
    frames = task.frames
    # warm-up on one chunk's worth of frames (kernels, allocator), outside the memory window
    warm = fit_length(G, min(frames, chunk or 16))
    with torch.no_grad(), autocast(task.precision, device):
        lat = G.sample_latents(task.videos, n_frames=warm)
        G.generate(lat, G.frame_times(warm).to(device))
    probe = MemoryProbe(device)
    probe.start()
    times = time_calls(call, repeats=task.repeats, warmup=task.warmup, device=device)
    res = {**_common(G), "videos": task.videos, "frames": frames, "chunk": chunk}
    res.update(_timing(times), **probe.stop())
    res["output_mb"] = round(out_mb[0], 2)
    res["height"] = shape[-2] if shape else 0
    res["s_per_frame"] = res["best_s"] / (task.videos * frames)
    return res


MEASUREMENTS: dict[str, Callable[[Task], dict[str, Any]]] = {
    "forward": measure_forward,
    "train": measure_train,
    "sample": measure_sample,
    "stream": measure_stream,
}


def run_task(task: Task) -> dict[str, Any]:
    """Run one measurement in this process (threads set for its duration)."""
    if task.kind not in MEASUREMENTS:
        raise ConfigError(f"unknown measurement {task.kind!r}; valid: {', '.join(KINDS)}.")
    old = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    try:
        return MEASUREMENTS[task.kind](task)
    finally:
        torch.set_num_threads(old)
