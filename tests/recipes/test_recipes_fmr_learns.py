"""FMR's toy preset trains through the shared loop and measurably learns (issue: toy training).

Two measures (`learning_helpers`), both on 48 generated and 48 real toy clips (16 frames, 32 px):
pixel W1 (an untrained FMR paints mid-grey blobs everywhere, W1 ~ 200) and speed W1 (an untrained
generator is static, W1 ~ 4.6 px/frame against the real 2/4/8 mix; this is what FMR is about and
a short run moves it only part way).
Both are compared with the same generator at initialisation (same seed), so the test fails if
training does not learn, whatever the absolute numbers. The EMA half-life is shortened to 2 kimg
/ 8 = 31 steps (the preset's 125 steps would mostly average the untrained start of so short a
run). Measured when written (120 steps): pixel W1 214 -> 60, speed W1 4.56 -> 2.36 (with the
preset's EMA: 214 -> 134 and 4.56 -> 3.81). About 2 minutes on 2 idle cores.
"""

from __future__ import annotations

import pytest

from learning_helpers import measure, real_toy_clips
from vidgan.data.toy import write_toy_dataset
from vidgan.io import to_uint8
from vidgan.metrics.motion import toy_speeds
from vidgan.train.config import resolve_run_config
from vidgan.train.loop import Trainer

STEPS = 120
N_EVAL = 48


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
    real = real_toy_clips(data, N_EVAL)
    real_speeds = toy_speeds(to_uint8(real))
    pix0, speed0 = measure(trainer.G_ema, real, real_speeds)
    assert trainer.fit() == 0
    pix1, speed1 = measure(trainer.G_ema, real, real_speeds)
    print(f"pixel W1 {pix0:.1f} -> {pix1:.1f}; speed W1 {speed0:.2f} -> {speed1:.2f}")
    assert pix1 < 0.5 * pix0
    assert speed1 < 0.75 * speed0
