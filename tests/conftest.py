"""Shared test fixtures: the parity fixture folder, tiny videos, seeded generators."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def fixtures_root() -> Path:
    """The parity fixture folder: $VIDGAN_FIXTURES or ../shared/fixtures/parity."""
    env = os.environ.get("VIDGAN_FIXTURES")
    return Path(env) if env else (ROOT.parent / "shared" / "fixtures" / "parity")


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    root = fixtures_root()
    if not root.is_dir():
        pytest.skip(f"parity fixtures not found at {root} (set VIDGAN_FIXTURES)")
    return root


@pytest.fixture(autouse=True)
def _torch_defaults():
    # one thread per test process: the suite runs as 2 xdist workers on 2 cores, and small
    # convolutions get much slower with threads competing for the same cores
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True, scope="session")
def _glibc_defaults_in_test_processes():
    """Keep glibc's heap policy in the test workers: `vidgan.heap.keep_freed_memory` is
    process-wide and permanent, so one Trainer would change what every later test in the
    worker measures (RSS probes). It is replaced by a no-op here (its callers look it up in
    `vidgan.heap`); its effect is tested in child processes (tests/train/test_train_heap.py),
    which this does not reach."""
    import vidgan.heap

    mp = pytest.MonkeyPatch()
    mp.setattr(vidgan.heap, "keep_freed_memory", lambda: False)
    yield
    mp.undo()
