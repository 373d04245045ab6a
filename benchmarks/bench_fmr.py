"""FMR generator speed: frames/s of G forward and seconds per training step, fp32 and bf16.

    .venv/bin/python benchmarks/bench_fmr.py                 # toy preset + 256 px (run.sh widths)
    .venv/bin/python benchmarks/bench_fmr.py --skip-256       # toy only (fast)

G forward renders `--videos` videos of 16 frames at once in eval mode under no_grad; the
training step is one full `Trainer.train_step` (G step, both D steps, lazy R1 when due) at the
preset's batch on synthetic clips. The official implementation is the baseline the issue asks
for; it is not measured here (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from vidgan.config import from_dict, load_preset
from vidgan.models.registry import get_model


def time_forward(G, videos: int, amp: bool, repeats: int) -> float:
    t = G.frame_times(16)
    lat = G.sample_latents(videos, generator=torch.Generator().manual_seed(0))
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    with torch.no_grad(), ctx:
        G.generate(lat, t)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            G.generate(lat, t)
    return videos * 16 * repeats / (time.perf_counter() - start)


def time_train_step(preset: str, amp: bool, steps: int) -> float:
    from vidgan.train.config import resolve_run_config
    from vidgan.train.loop import Trainer

    run = resolve_run_config(
        None,
        preset=preset,
        overrides=[
            f"train.amp={str(amp).lower()}",
            "train.metrics=",
            "train.best_metric=",
            "train.device=cpu",
            "train.workers=0",
        ],
    )
    size, frames = run.model.image_size, run.data.frames
    n = run.train.batch * 2
    data = [
        {"video": torch.rand(frames, 3, size, size) * 2 - 1, "label": -1, "index": i}
        for i in range(n)
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        tr = Trainer(run, outdir=out, dataset=data, profile=1, progress=False)
        batches = iter(tr.batches)
        tr.train_step(next(batches))  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            tr.train_step(next(batches))
        return (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-256", action="store_true")
    p.add_argument("--bf16-256", action="store_true", help="also time bf16 at 256 px (slow)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spec = get_model("fmr")
    rows = []
    configs = [("fmr-toy-32", 8, 3)] + ([] if args.skip_256 else [("fmr-paper-256", 1, 1)])
    for preset, videos, repeats in configs:
        cfg = from_dict(spec.config_cls, load_preset(preset)["model"])
        G = spec.build_generator(cfg).eval()
        # bf16 at 256 px takes many minutes on CPUs without native bf16 kernels: opt in
        for amp in (False, True) if (videos > 1 or args.bf16_256) else (False,):
            fps = time_forward(G, videos, amp, repeats)
            rows.append((preset, "bf16" if amp else "fp32", f"{fps:.1f}"))
    print(f"{args.threads} threads, torch {torch.__version__}")
    print("| preset | precision | G forward frames/s |\n|---|---|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    for amp in (False, True):
        s = time_train_step("fmr-toy-32", amp, steps=5)
        print(f"fmr-toy-32 training step ({'bf16' if amp else 'fp32'}): {s:.2f} s")


if __name__ == "__main__":
    main()
