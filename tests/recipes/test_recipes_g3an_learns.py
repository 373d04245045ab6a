"""G3AN's toy preset trains through the shared loop and measurably learns (issue #6: toy training).

Same measure as the FMR and DIGAN tests (`learning_helpers`): the pixel W1 (brightness
distribution) of 48 generated videos against 48 real toy clips, both at G3AN's 64 px and 16
frames, compared with the same generator (same seed, same latents) at initialisation. So the test
fails if training does not learn, whatever the absolute numbers, and it runs on two training
seeds so one lucky run cannot pass it.

Why the measure is honest, and what it does not show: an untrained G3AN's tanh output is ~0
everywhere, a flat mid-grey frame (brightness 128 in every pixel), while the toy clips are ~95%
black with three small bright objects; W1 ~ 135 at initialisation. G only gets the brightness
statistics from the discriminators' signal (nothing else in the loss pulls it anywhere), so
halving W1 on two seeds is learning. It is a low bar: an all-black G would score ~8 (the real
mean brightness), so the test shows the background being learned, not objects or motion.
The speed W1 is printed but not asserted: after 70 steps it is 4.6 -> 2.9..4.1 on the two
seeds, and in longer runs it swings with the D/G balance (session 2: 1.65 at step 100, 10.3 at
300, 2.93 at 400) and is fooled by flicker (assets/README.md), so a threshold would test luck.

Settings: batch 4 instead of the preset's 8 and no EMA (the release has none; the helper's
0.25 kimg half-life would be 62 steps at batch 4 and average away most of so short a run).
Measured when written (70 steps): pixel W1 139.1 -> 47.1 (seed 0) and 132.8 -> 51.5 (seed 1);
before the G3AN speed-up's float changes 45.4 and 61.2 (ratio 0.46, the thinnest margin seen);
speed W1 4.58 -> 2.9..4.1. Both seeds: 91 s of CPU time (1 thread), 105 s wall at load 2-4.
"""

from __future__ import annotations

import pytest

from learning_helpers import train_toy_and_measure

STEPS = 70


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_g3an_toy_preset_learns(tmp_path, seed):
    (pix0, _), (pix1, _) = train_toy_and_measure(
        tmp_path,
        "g3an-toy-64",
        steps=STEPS,
        size=64,
        overrides=[f"train.seed={seed}", "train.batch=4", "train.ema_kimg=0"],
    )
    assert pix1 < 0.5 * pix0
