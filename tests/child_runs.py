"""Run a script in fresh Python processes: for process-wide settings (the C heap policy) that a
test must not leave behind in its worker."""

from __future__ import annotations

import subprocess
import sys


def words_off_and_on(script: str) -> dict[str, list[str]]:
    """stdout words of `python -c script 0` and `python -c script 1` (the setting off / on)."""
    out = {}
    for flag in ("0", "1"):
        res = subprocess.run(
            [sys.executable, "-c", script, flag], capture_output=True, text=True, check=True
        )
        out[flag] = res.stdout.split()
    return out
