"""FMR's toy preset trains through the shared loop and measurably learns (issue: toy training).

Two measures, both computed on 48 generated and 48 real toy clips (16 frames, 32 px):
* pixel W1: Wasserstein-1 between the distributions of per-pixel brightness (max over RGB, 0..255).
  The toy videos are ~95% black with a few bright objects; an untrained generator paints
  mid-grey blobs everywhere (W1 ~ 200). It is the first thing a GAN gets right.
* speed W1: Wasserstein-1 between per-object speed distributions from tracking the three object
  columns (vidgan.metrics.motion.toy_speeds). An untrained generator is static (W1 ~ 4.6 px/frame
  against the real 2/4/8 mix). This is what FMR is about; a short run moves it only part way.
Both are compared with the same generator at initialisation (same seed), so the test fails if
training does not learn, whatever the absolute numbers. The EMA half-life is shortened to 2 kimg
/ 8 = 31 steps (the preset's 125 steps would mostly average the untrained start of so short a
run). Measured when written (120 steps): pixel W1 214 -> 60, speed W1 4.56 -> 2.36 (with the
preset's EMA: 214 -> 134 and 4.56 -> 3.81). About 2 minutes on 2 idle cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidgan.data import ClipSpec, open_dataset
from vidgan.data.toy import write_toy_dataset
from vidgan.io import to_uint8
from vidgan.metrics.motion import speed_distance, toy_speeds
from vidgan.sample import sample
from vidgan.train.config import resolve_run_config
from vidgan.train.loop import Trainer

STEPS = 120
N_EVAL = 48


def pixel_w1(fake: torch.Tensor, real: torch.Tensor) -> float:
    a = np.sort(to_uint8(fake.clamp(-1, 1)).amax(1).flatten().numpy().astype(np.float64))
    b = np.sort(to_uint8(real.clamp(-1, 1)).amax(1).flatten().numpy().astype(np.float64))
    q = np.linspace(0, 1, 4001)
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


def measure(G, real: torch.Tensor, real_speeds: np.ndarray) -> tuple[float, float]:
    g = torch.Generator().manual_seed(1)
    fake = sample(G, N_EVAL, n_frames=16, generator=g, batch_size=16).videos
    speeds = toy_speeds(to_uint8(fake.clamp(-1, 1)))
    return pixel_w1(fake, real), speed_distance(real_speeds, speeds)["wasserstein1"]


@pytest.mark.slow
def test_fmr_toy_preset_learns(tmp_path):
    data = write_toy_dataset(tmp_path / "toy", n_videos=96, frames=32, size=64, seed=5)
    run = resolve_run_config(
        None,
        preset="fmr-toy-32",
        overrides=[
            f"train.steps={STEPS}",
            "train.device=cpu",
            "train.workers=0",
            "train.sample_every=0",
            "train.tensorboard=false",
            f"train.checkpoint_every={STEPS}",
            "train.ema_kimg=0.25",
            "train.metrics=",
            "train.best_metric=",
        ],
    )
    trainer = Trainer(run, outdir=tmp_path / "run", data_path=str(data), progress=False)
    ds = open_dataset(data, ClipSpec(frames=16, size=32, offset="start"))
    real = torch.stack([ds[i]["video"] for i in range(N_EVAL)]).transpose(1, 2)
    real_speeds = toy_speeds(to_uint8(real))
    pix0, speed0 = measure(trainer.G_ema, real, real_speeds)
    assert trainer.fit() == 0
    pix1, speed1 = measure(trainer.G_ema, real, real_speeds)
    print(f"pixel W1 {pix0:.1f} -> {pix1:.1f}; speed W1 {speed0:.2f} -> {speed1:.2f}")
    assert pix1 < 0.5 * pix0
    assert speed1 < 0.75 * speed0
