"""Data-loading throughput: clips per second at 64x64x16 from a zip, a folder and mp4 files.

    .venv/bin/python benchmarks/bench_data.py                  # the table in benchmarks/README.md
    .venv/bin/python benchmarks/bench_data.py --videos 64 --clips 256 --src-size 128

Builds toy-set videos (FMR toy rules, 64 frames each) in a temp folder as (a) a zip of JPEG
frames, (b) a folder of JPEG frames, (c) H.264 mp4 files, then times a DataLoader
(batch 16, shuffled) over `ClipSpec(frames=16, size=64, flip=True)` with 0 and 2 workers.
`--src-size 128` stores 128 px frames so the 64 px clips go through the JPEG draft + Lanczos
downscale path. Timing starts after the first batch (worker start-up excluded).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidgan.data import ClipSpec, open_dataset
from vidgan.data.toy import make_toy_video
from vidgan.io import write_video


def build(root: Path, *, videos: int, frames: int, src_size: int) -> dict[str, Path]:
    folder, mp4 = root / "frames", root / "mp4"
    mp4.mkdir(parents=True)
    for i in range(videos):
        rng = np.random.default_rng(i)
        video, _ = make_toy_video(rng, size=64, frames=frames)
        # Add texture so JPEG/H.264 sizes are closer to real footage than flat toy frames.
        noise = rng.integers(0, 40, size=video.shape, dtype=np.uint8)
        video = np.clip(video.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        if src_size != 64:
            video = np.stack(
                [np.asarray(Image.fromarray(f).resize((src_size, src_size))) for f in video]
            )
        d = folder / f"{i:05d}"
        d.mkdir(parents=True)
        for k, f in enumerate(video):
            Image.fromarray(f).save(d / f"{k:06d}.jpg", quality=95)
        write_video(mp4 / f"{i:05d}.mp4", video, fps=25)
    import zipfile

    zpath = root / "frames.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(folder.rglob("*.jpg")):
            zf.write(f, f.relative_to(folder).as_posix())
    return {"zip (JPEG)": zpath, "folder (JPEG)": folder, "mp4 (H.264)": mp4}


def measure(
    path: Path, *, workers: int, clips: int, dtype: str, batch: int = 16
) -> tuple[float, float]:
    """(wall-clock clips/s, CPU ms per clip summed over the main process and its workers)."""
    ds = open_dataset(path, ClipSpec(frames=16, size=64, flip=True, dtype=dtype), seed=0)
    sampler = torch.utils.data.RandomSampler(
        ds, replacement=True, num_samples=clips + batch, generator=torch.Generator().manual_seed(0)
    )
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True
    )
    it = iter(loader)
    first = next(it)  # start-up (worker fork, file handles) excluded from the wall clock
    assert first["video"].shape[1:] == (16, 3, 64, 64)
    cpu0 = _cpu_seconds()
    n, t0 = 0, time.perf_counter()
    for b in it:
        n += b["video"].shape[0]
    wall = time.perf_counter() - t0
    del it  # workers exit, so their CPU time is added to RUSAGE_CHILDREN
    time.sleep(0.2)
    return n / wall, (_cpu_seconds() - cpu0) / n * 1e3


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--videos", type=int, default=64)
    p.add_argument("--frames", type=int, default=64, help="frames per stored video")
    p.add_argument("--clips", type=int, default=512, help="clips timed per configuration")
    p.add_argument("--src-size", type=int, default=64, help="stored frame size (64 or 128)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--dtype", choices=("float", "uint8"), default="float")
    args = p.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load average {load:.1f} at start, output {args.dtype}, "
        f"{args.src_size}px stored -> 64px clips"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sources = build(Path(tmp), videos=args.videos, frames=args.frames, src_size=args.src_size)
        head = " | ".join(f"{w} workers: clips/s (CPU ms/clip)" for w in args.workers)
        print(f"| source | {head} |")
        print("|---|" + "---:|" * len(args.workers))
        for name, path in sources.items():
            cells = []
            for w in args.workers:
                rate, cpu = measure(path, workers=w, clips=args.clips, dtype=args.dtype)
                cells.append(f"{rate:.0f} ({cpu:.1f})")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
