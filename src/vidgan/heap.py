"""The C heap's policy for freed memory: give it back (long generation) or keep it (training).

glibc maps large blocks and unmaps them when freed, so every large tensor made afresh touches
new pages. `steady_allocator` leans on that to keep the peak memory of a long chunked video
equal to a short one's; `keep_freed_memory` turns it off where the same shapes come back every
step. Everything here is a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4


@functools.cache
def steady_allocator(threshold: int = 128 * 1024) -> bool:
    """Fix glibc's mmap threshold so that memory freed between chunks goes back to the OS.

    Why: glibc raises its mmap threshold to the size of the largest mapped block freed so far
    (up to 32 MB). After the first chunk of a long video, the next chunks' activations come
    from the heap instead, and freed heap pages stay resident, so the peak RSS of a 1024-frame
    video rose above a 16-frame one (DIGAN paper config: +7%, benchmarks/README.md). With a
    fixed threshold every block over `threshold` bytes is mapped and unmapped, and each chunk
    starts from the same state. The setting is process-wide and stays (glibc cannot turn the
    dynamic threshold back on), so only the chunked-generation paths call it. Returns False
    (and does nothing) where the C library is not glibc.
    """
    mallopt = _glibc("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, int(threshold)))


@functools.cache
def _glibc(name: str) -> Any:
    """glibc's function `name` (ctypes), or None where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def trim_heap() -> None:
    """Give free heap pages back to the OS (glibc `malloc_trim`; elsewhere nothing).

    Why: blocks under the mmap threshold come from the heap, and a few long-lived small objects
    made during one chunk keep the freed pages around them resident, so without this the peak
    crept up by ~2 MB over the first 250 frames (DIGAN paper config). Called between chunks;
    it takes well under a millisecond next to a chunk's seconds.
    """
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


@functools.cache
def keep_freed_memory() -> bool:
    """Serve every block from glibc's heap and never hand freed heap pages back to the OS.

    Why: a training step frees and remakes the same activation-sized tensors every step. Mapped
    afresh, each of their pages is faulted in again; on a VM that returns freed pages to its
    host (Firecracker with free page reporting, as our development machines) a fault costs
    ~17 us, and the G3AN paper-config fp32 step spent ~2.4 of its 11.1 s in them (1 thread,
    same process before and after: 11.1 -> 8.7 s; benchmarks/README.md). Kept in the heap, the
    pages stay resident and are reused. The price is a higher resident peak (G3AN: 4.2 ->
    5.2 GB), and it is process-wide and permanent (memory freed later in the process stays
    too, which undoes `steady_allocator`'s flat memory), so only batch jobs call it: the
    Trainer on CPUs (`train.keep_heap=false` turns it off) and `vidgan evaluate` on CPUs (I3D:
    ~15-20% faster). Forked DataLoader workers inherit it. Returns False where the C library
    is not glibc.
    """
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


#: glibc's largest dynamic mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD_MAX = 32 * 2**20


@functools.cache
def raise_mmap_threshold() -> bool:
    """Free one block of glibc's largest dynamic mmap threshold, once per process, so that
    blocks below it come from the heap and are reused instead of mapped afresh each time.

    Why: glibc raises its mmap threshold to the size of the largest mapped block freed so far,
    and a request as large as that threshold is still mapped. An inference pass that makes
    same-sized activations over and over (DIGAN's pixel-major render: ~8 MB per layer and
    frame group) therefore page-faults every one of them until some larger block happens to
    be freed, and its speed depended on that accident (16 frames of digan-paper-128 in bf16:
    0.25 or 0.39 s, benchmarks/README.md). This is glibc's own rule, triggered on purpose;
    after `steady_allocator` (a fixed threshold) it changes nothing. Returns False where the
    C library is not glibc.
    """
    if _glibc("malloc") is None:
        return False
    import torch  # here, so that the module stays importable without torch

    # a little under the cap: glibc only adopts the size of a freed chunk that is at most it
    block = torch.empty(MMAP_THRESHOLD_MAX - 2**16, dtype=torch.uint8)
    block[:: 1 << 12] = 0  # make sure the mapping is real before it is freed
    del block
    return True
