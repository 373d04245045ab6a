"""`vidgan.heap.keep_freed_memory` and the Trainer's `train.keep_heap`.

A training step remakes the same large tensors every step; kept in glibc's heap, a freed block
is reused without faulting its pages in again. The process-wide effect is measured in a child
process (minor page faults over steady steps that make, write and free the same blocks).
"""

import platform

import pytest
from train_tiny import make_trainer

from child_runs import words_off_and_on

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

_REFAULTS = """
import resource, sys
import torch
from vidgan.heap import keep_freed_memory
on = sys.argv[1] == "1" and keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # a training step's pattern: activations made, written, all freed at the end
    xs = [torch.ones(n * 2**18) for n in (64, 32, 128, 16, 64)]  # MB
    return sum(float(x[-1]) for x in xs)
for _ in range(4):
    step()
f0 = faults()
for _ in range(4):
    step()
print(on, faults() - f0)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_keep_freed_memory_reuses_freed_pages():
    """Steady steps fault every page in again by default (all blocks are mapped afresh); with
    the heap kept, most blocks are served from pages already resident."""
    out = {flag: (on, int(faults)) for flag, (on, faults) in words_off_and_on(_REFAULTS).items()}
    pages = 4 * (64 + 32 + 128 + 16 + 64) * 2**20 // 4096
    assert out["0"] == ("False", pytest.approx(pages, rel=0.1))
    assert out["1"][0] == "True"
    assert out["1"][1] < pages // 4  # measured: 32768 of 311296


@pytest.mark.parametrize("keep", [True, False])
def test_trainer_keeps_the_heap_on_cpu_unless_told_not_to(tmp_path, monkeypatch, keep):
    import vidgan.heap

    calls: list[bool] = []
    monkeypatch.setattr(vidgan.heap, "keep_freed_memory", lambda: calls.append(True) or True)
    make_trainer(tmp_path, "train.device=cpu", f"train.keep_heap={str(keep).lower()}")
    assert calls == ([True] if keep else [])
