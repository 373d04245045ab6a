"""Shared measures of the "toy preset learns" tests: pixel and toy-speed distances to real clips.

* pixel W1: Wasserstein-1 between the distributions of per-pixel brightness (max over RGB,
  0..255). The toy videos are ~95% black with a few bright objects; an untrained generator
  paints mid-grey or coloured textures everywhere. It is the first thing a GAN gets right.
* speed W1: Wasserstein-1 between per-object speed distributions from tracking the three object
  columns (vidgan.metrics.motion.toy_speeds). An untrained generator is (nearly) static.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vidgan.data import ClipSpec, open_dataset
from vidgan.io import to_uint8
from vidgan.metrics.motion import speed_distance, toy_speeds
from vidgan.sample import sample


def pixel_w1(fake: torch.Tensor, real: torch.Tensor) -> float:
    """W1 between brightness (max over RGB, uint8) distributions of two video sets."""
    a = np.sort(to_uint8(fake.clamp(-1, 1)).amax(1).flatten().numpy().astype(np.float64))
    b = np.sort(to_uint8(real.clamp(-1, 1)).amax(1).flatten().numpy().astype(np.float64))
    q = np.linspace(0, 1, 4001)
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


def real_toy_clips(data, n: int, *, frames: int = 16, size: int = 32) -> torch.Tensor:
    """The first `n` toy videos' opening clips `[n, 3, frames, size, size]`."""
    ds = open_dataset(data, ClipSpec(frames=frames, size=size, offset="start"))
    return torch.stack([ds[i]["video"] for i in range(n)]).transpose(1, 2)


def measure(
    G, real: torch.Tensor, real_speeds: np.ndarray, *, n_eval: int = 48, seed: int = 1
) -> tuple[float, float]:
    """(pixel W1, speed W1) of `n_eval` videos of `G` (fixed latents) against real clips."""
    g = torch.Generator().manual_seed(seed)
    fake = sample(G, n_eval, n_frames=real.shape[2], generator=g, batch_size=16).videos
    speeds = toy_speeds(to_uint8(fake.clamp(-1, 1)))
    return pixel_w1(fake, real), speed_distance(real_speeds, speeds)["wasserstein1"]


def train_toy_and_measure(
    tmp_path,
    preset: str,
    *,
    steps: int,
    n_eval: int = 48,
    size: int = 32,
    overrides: Sequence[str] = (),
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Train `preset` for `steps` on a small toy set; ((pixel, speed) W1 before, after).

    The EMA half-life is shortened to 0.25 kimg so a short run is not averaged with its
    untrained start; "before" is the same G_ema (same seed) at initialisation. Real clips are
    read at `size` px (the preset's resolution); `overrides` (e.g. "train.seed=1") come last.
    """
    from vidgan.data.toy import write_toy_dataset
    from vidgan.train.config import resolve_run_config
    from vidgan.train.loop import Trainer

    data = write_toy_dataset(tmp_path / "toy", n_videos=96, frames=32, size=64, seed=5)
    overrides = [
        f"train.steps={steps}",
        "train.device=cpu",
        "train.workers=0",
        "train.sample_every=0",
        "train.tensorboard=false",
        f"train.checkpoint_every={steps}",
        "train.ema_kimg=0.25",
        "train.metrics=",
        "train.best_metric=",
        *overrides,
    ]
    run = resolve_run_config(None, preset=preset, overrides=overrides)
    trainer = Trainer(run, outdir=tmp_path / "run", data_path=str(data), progress=False)
    real = real_toy_clips(data, n_eval, size=size)
    real_speeds = toy_speeds(to_uint8(real))
    before = measure(trainer.G_ema, real, real_speeds, n_eval=n_eval)
    assert trainer.fit() == 0
    after = measure(trainer.G_ema, real, real_speeds, n_eval=n_eval)
    print(f"{preset}: pixel W1 {before[0]:.1f} -> {after[0]:.1f}; ", end="")
    print(f"speed W1 {before[1]:.2f} -> {after[1]:.2f}")
    return before, after
