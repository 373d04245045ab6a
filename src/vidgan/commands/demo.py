"""`vidgan demo`: the README's first command, a tour of what vidgan does, written to one folder.

The demo is a list of sections (a registry, so each model adds its own); each section writes its
files and returns `DemoItem`s that `index.html` shows with one sentence each.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vidgan.commands import COMMANDS, Command
from vidgan.errors import VidganError

MARKER = ".vidgan-demo"

DESCRIPTION = """\
Run the demo: make the FMR toy dataset (three objects bouncing at three speeds), show real
clips, and - from the bundled toy checkpoint, or one trained now with --train-minutes - generated
videos, 4x time interpolation, 2x extrapolation, low-/high-frequency-band videos and the
per-object speed distribution of generated vs real videos. Everything lands in --out with an
index.html that shows it all.

Examples:
  vidgan demo                       # about a minute or two on 2 CPU cores
  vidgan demo --train-minutes 10    # train the toy model from scratch first
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--seed", type=int, default=0, help="seed of the toy data and the samples")
    p.add_argument(
        "--train-minutes",
        type=float,
        default=0.0,
        help="train the toy model from scratch for this long instead of using the bundled one",
    )
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")


def run(args: argparse.Namespace) -> int:
    import shutil

    import torch

    from vidgan.demo import DemoContext, DemoItem, load_sections, write_index

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        if not args.force and not (out / MARKER).exists():
            raise VidganError(
                f"{out} exists and was not made by vidgan demo; choose another --out or --force."
            )
        shutil.rmtree(out)  # an earlier demo's own output (or --force): replace it
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by vidgan demo; the next run replaces this folder\n")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ctx = DemoContext(out=out, seed=args.seed, train_minutes=args.train_minutes, device=args.device)
    start = time.time()
    done: list[tuple[str, list[DemoItem]]] = []
    for name, fn in load_sections():
        t0 = time.time()
        print(f"[demo] {name} ...", flush=True)
        done.append((name, fn(ctx)))
        print(f"[demo] {name} done in {time.time() - t0:.1f} s", flush=True)
    index = write_index(out, done, time.time() - start)
    print(f"[demo] wrote {sum(len(i) for _, i in done)} results to {out}/")
    print(f"[demo] open {index.resolve()} in a browser to see them")
    return 0


COMMANDS.add(
    "demo",
    Command(
        help="run the demo (toy data, samples, time and frequency edits)",
        description=DESCRIPTION,
        configure=configure,
        run=run,
    ),
)
