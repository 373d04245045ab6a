"""Real batches for training: a seeded global order, cut into global batches, rows per rank.

Epoch e visits the clips in `permutation(seed, e)`; global batch i is its rows
[i*batch, (i+1)*batch) (the last incomplete batch is dropped) and rank r reads the rows
[r*batch/N, (r+1)*batch/N) of it. So N ranks together see exactly the clips of one process with
the whole batch, and the position (epoch, batch index) is all resume needs. The dataset's own
randomness (clip offsets, flips) is fixed by `set_epoch(e)` and the item index.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vidgan.errors import DataError


def open_training_data(path: str, clip: Any, *, skip_bad: bool, seed: int) -> Dataset:
    """Open `--data PATH` with vidgan.data (imported here so training code does not need it)."""
    from vidgan.data import open_dataset

    return open_dataset(path, clip, skip_bad=skip_bad, seed=seed)


def _ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the trainer, which finishes the step and saves."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def epoch_order(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch `epoch` visits `n` clips (same on every rank)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x5EED, epoch])))
    return rng.permutation(n)


class RealBatches:
    """Endless iterator of this rank's collated batches, resumable at (epoch, index)."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        workers: int = 0,
        epoch: int = 0,
        index: int = 0,
        name: str = "the dataset",
    ) -> None:
        self.dataset = dataset
        self.n = len(dataset)  # type: ignore[arg-type]
        if self.n < global_batch:
            raise DataError(
                f"{name} has {self.n} clips, fewer than one batch of {global_batch}; lower "
                "train.batch or use more data."
            )
        self.global_batch = global_batch
        self.local = global_batch // world_size
        self.rank = rank
        self.seed = seed
        self.workers = workers
        self.epoch = epoch  # position of the *next* batch
        self.index = index
        self.per_epoch = self.n // global_batch
        self._it: Iterator[Any] | None = None

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index, "global_batch": self.global_batch}

    def _epoch_iter(self) -> Iterator[Any]:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        order = epoch_order(self.n, seed=self.seed, epoch=self.epoch)
        lo = self.rank * self.local
        batches = [
            order[i * self.global_batch + lo : i * self.global_batch + lo + self.local].tolist()
            for i in range(self.index, self.per_epoch)
        ]
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=self.workers,
            worker_init_fn=_ignore_sigint if self.workers > 0 else None,
            pin_memory=torch.cuda.is_available(),
        )
        return iter(loader)

    def __iter__(self) -> RealBatches:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._it = self._epoch_iter()
        try:
            batch = next(self._it)
        except StopIteration:
            self.epoch, self.index = self.epoch + 1, 0
            self._it = self._epoch_iter()
            batch = next(self._it)
        self.index += 1
        if self.index >= self.per_epoch:  # the next batch starts a new epoch
            self.epoch, self.index = self.epoch + 1, 0
            self._it = None
        return batch
