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

from learning_helpers import train_toy_and_measure

STEPS = 120


@pytest.mark.slow
def test_fmr_toy_preset_learns(tmp_path):
    (pix0, speed0), (pix1, speed1) = train_toy_and_measure(tmp_path, "fmr-toy-32", steps=STEPS)
    assert pix1 < 0.5 * pix0
    assert speed1 < 0.75 * speed0
