"""A two-step tiny FMR run through the real CLI, for tests of what comes after training."""

from __future__ import annotations

from pathlib import Path

from vidgan.cli import main
from vidgan.data.toy import write_toy_dataset


def train_tiny_fmr(root: Path, *overrides: str, frames: int = 8) -> tuple[Path, Path]:
    """Write a small toy set under `root`, train fmr-tiny for 2 steps; return (data, run)."""
    data = write_toy_dataset(root / "toy", n_videos=8, frames=frames, size=32, seed=3)
    run = root / "run"
    base = ["train.steps=2", "train.batch=4", "train.workers=0", "train.sample_every=0"]
    base += ["train.tensorboard=false", "train.device=cpu"]
    args = ["train", "--preset", "fmr-tiny", "--data", str(data), "--outdir", str(run)]
    assert main([*args, *base, *overrides]) == 0
    return data, run
