"""`vidgan.heap.raise_mmap_threshold`: blocks under glibc's largest dynamic mmap threshold come
from the heap (and are reused) instead of being mapped afresh every time.

glibc maps every block over its mmap threshold (128 KiB at start) and only raises the threshold
to the size of a mapped block that is freed later. Checked in child processes (the setting is
process-wide) with glibc's own accounting: `mallinfo2().hblkhd` = bytes in mapped blocks.
"""

import platform

import pytest

from child_runs import words_off_and_on

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

_MAPPED = """
import ctypes, sys
import torch
from vidgan.heap import raise_mmap_threshold
on = sys.argv[1] == "1" and raise_mmap_threshold()
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
info = ctypes.CDLL(None).mallinfo2
info.restype = MallInfo2
before = info().hblkhd
x = torch.ones(2**22)  # a 16 MB activation
print(on, info().hblkhd - before)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_activations_under_the_raised_threshold_come_from_the_heap():
    out = {flag: (on, int(n)) for flag, (on, n) in words_off_and_on(_MAPPED).items()}
    assert out["0"][0] == "False" and out["0"][1] >= 16 * 2**20  # mapped afresh
    assert out["1"] == ("True", 0)  # served by the heap, where freed blocks are reused
