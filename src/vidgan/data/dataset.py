"""`open_dataset`: one Dataset of clips over frame folders, zips and video files.

    ds = open_dataset("data/toy.zip", ClipSpec(frames=16, size=64), seed=0)
    ds.set_epoch(epoch)                   # before iterating (each DDP rank calls it too)
    item = ds[3]                          # {"video": [T, 3, H, W], "label": int, "index": 3}

Every random decision of item i in epoch e comes from (seed, e, i), so DataLoader workers and
DDP ranks see the same clip for the same item regardless of scheduling. The epoch lives in a
shared-memory tensor, so `set_epoch` also reaches persistent DataLoader workers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vidgan.data.clips import ClipSpec, clip_rng, sample_clip
from vidgan.data.sources import BadEntry, Source, open_source
from vidgan.errors import DataError

log = logging.getLogger("vidgan.data")


class VideoDataset(Dataset):
    """Clips of the videos of a `Source`; build it with `open_dataset`."""

    def __init__(
        self, *, source: Source, spec: ClipSpec, seed: int, skip_bad: bool, keep: list[int]
    ) -> None:
        self.source = source
        self.spec = spec
        self.seed = int(seed)
        self.skip_bad = skip_bad
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._keep = keep  # dataset index -> source video index
        self.skipped: list[BadEntry] = []  # too short or unreadable at open time
        self.failed: dict[int, str] = {}  # read errors seen in this process (skip_bad=True)

    # -- metadata -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._keep)

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def video_names(self) -> list[str]:
        return [self.source.videos[k].name for k in self._keep]

    @property
    def labels(self) -> list[int]:
        return [self.source.videos[k].label for k in self._keep]

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when unlabelled)."""
        if self.source.class_names:
            return len(self.source.class_names)
        labels = [lab for lab in self.labels if lab >= 0]
        return max(labels) + 1 if labels else 0

    @property
    def class_names(self) -> list[str] | None:
        return self.source.class_names

    def num_frames(self, i: int) -> int:
        return self.source.videos[self._keep[i]].num_frames

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random clips `__getitem__` returns (before creating iterators)."""
        self._epoch.fill_(int(epoch))

    def summary(self) -> str:
        """One line: how many videos are used and how many were skipped and why."""
        line = f"{self.path}: {len(self)} videos ({self.source.kind})"
        if self.skipped:
            line += f", {len(self.skipped)} skipped (first: {self.skipped[0].reason})"
        return line

    # -- reading ------------------------------------------------------------------------------
    def read_frames(self, i: int, indices: Any) -> torch.Tensor:
        """Frames `indices` of video i as uint8 [K, 3, H, W], resized/cropped, never flipped."""
        idx = [int(k) for k in np.asarray(indices).reshape(-1)]
        n = self.num_frames(i)
        if any(k < 0 or k >= n for k in idx):
            raise DataError(
                f"frame indices {idx} are out of range for video {self.video_names[i]} "
                f"({n} frames)."
            )
        arr = self.source.read(self._keep[i], idx, self.spec.size)
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # (K, 3, H, W)

    def _clip(self, i: int) -> dict[str, Any]:
        rng = clip_rng(self.seed, self.epoch, i)
        choice = sample_clip(self.num_frames(i), self.spec, rng)
        arr = self.source.read(self._keep[i], choice.indices.tolist(), self.spec.size)
        video = torch.from_numpy(arr).permute(0, 3, 1, 2)  # (T, 3, H, W), channels-last memory
        if choice.flip:
            video = video.flip(-1)
        video = video.contiguous()  # uint8 copy is cheap; float ops and collation then stream
        if self.spec.dtype == "float":
            video = video.float().div_(127.5).sub_(1.0)
        return {"video": video, "label": self.source.videos[self._keep[i]].label, "index": i}

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} videos")
        if not self.skip_bad:
            return self._clip(i)
        # --skip-bad: a broken video is reported once and replaced by the next good one.
        for step in range(len(self)):
            j = (i + step) % len(self)
            if j in self.failed:
                continue
            try:
                return self._clip(j)
            except DataError as e:
                self.failed[j] = str(e)
                log.warning("skipping unreadable video (--skip-bad): %s", e)
        raise DataError(
            f"every video of {self.path} failed to read; first error: "
            f"{next(iter(self.failed.values()))}"
        )


def open_dataset(
    path: str | Path, spec: ClipSpec | None = None, *, skip_bad: bool = False, seed: int = 0
) -> VideoDataset:
    """Open frame folders, a zip of them, or video files as a Dataset of clips.

    Args:
        path: root/<video>/<frame>.{jpg,png} folder, a zip of that layout, a tree of video
            files (labels from first-level subfolders), or one video file.
        spec: clip length, stride, offset, size, flip, dtype and the too-short policy.
        skip_bad: skip (and report) unreadable videos and frames instead of raising.
        seed: base of the per-item randomness; see `set_epoch`.
    Raises:
        DataError: one sentence naming the path and what is wrong with it.
    """
    spec = spec or ClipSpec()
    source = open_source(path)
    path = source.path
    if source.bad and not skip_bad:
        first = source.bad[0].reason.rstrip(".")
        raise DataError(f"{first} (pass --skip-bad to skip broken videos).")
    skipped = list(source.bad)
    keep = []
    for k, v in enumerate(source.videos):
        if v.num_frames < spec.min_frames:
            msg = (
                f"video {v.name} in {path} has {v.num_frames} frames, fewer than the "
                f"{spec.min_frames} a clip of {spec.frames} frames at stride "
                f"{spec.strides[0]} needs"
            )
            if spec.short == "error":
                raise DataError(msg + ".")
            skipped.append(BadEntry(v.name, msg))
        else:
            keep.append(k)
    if not keep:
        raise DataError(
            f"{path} has no usable video: {len(skipped)} skipped"
            + (f" (first: {skipped[0].reason})." if skipped else ".")
        )
    ds = VideoDataset(source=source, spec=spec, seed=seed, skip_bad=skip_bad, keep=keep)
    ds.skipped = skipped
    if skipped:
        n_short = sum("fewer than" in s.reason for s in skipped)
        log.warning(
            "%s: skipped %d of %d videos (%d too short, %d unreadable)",
            path,
            len(skipped),
            len(skipped) + len(keep),
            n_short,
            len(skipped) - n_short,
        )
    if spec.size is None:
        _check_one_resolution(ds, skip_bad)
    return ds


def _check_one_resolution(ds: VideoDataset, skip_bad: bool) -> None:
    """Without a target size, clips only batch if every video has the same frame size."""
    seen: dict[tuple[int, int], str] = {}
    for k in list(ds._keep):
        try:
            size = ds.source.frame_size(k)
        except DataError as e:
            if not skip_bad:
                raise
            ds._keep.remove(k)
            ds.skipped.append(BadEntry(ds.source.videos[k].name, str(e)))
            continue
        seen.setdefault(size, ds.source.videos[k].name)
        if len(seen) > 1:
            (s1, v1), (s2, v2) = list(seen.items())[:2]
            raise DataError(
                f"{ds.path} mixes resolutions ({v1}: {s1[0]}x{s1[1]}, {v2}: {s2[0]}x{s2[1]}); "
                f"set a clip size (--size / ClipSpec.size) to resize every video."
            )
    if not ds._keep:
        raise DataError(f"{ds.path} has no readable video.")
