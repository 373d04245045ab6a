"""`python -m vidgan.bench.worker`: run one `Task` (JSON on stdin) in a fresh process.

The result is printed as one line `VIDGAN_BENCH <json>` on stdout; a failure becomes
`{"error": "..."}` so that the parent can report it next to the other measurements.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MARKER = "VIDGAN_BENCH "


def run_isolated_task(data: dict[str, Any]) -> dict[str, Any]:
    from vidgan.bench.measure import Task, run_task

    try:
        return run_task(Task.from_json(data))
    except Exception as e:  # reported, not raised: one failed measurement must not end a run
        first = (str(e).strip().splitlines() or [""])[0]
        return {"error": f"{type(e).__name__}: {first}"}


def main() -> int:
    result = run_isolated_task(json.loads(sys.stdin.read()))
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
