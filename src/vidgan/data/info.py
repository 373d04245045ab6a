"""`vidgan data info`: what a dataset holds and what is wrong with it, without training on it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidgan.data.clips import ClipSpec
from vidgan.data.sources import open_source
from vidgan.errors import DataError


@dataclass
class DatasetInfo:
    path: Path
    kind: str
    videos: int
    frames: list[int]
    resolutions: Counter  # (width, height) -> number of videos
    classes: list[str] | None
    labelled: int
    too_short: list[tuple[str, int]] = field(default_factory=list)  # (video, frames)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (video, reason)
    min_frames: int = 16

    def lines(self) -> list[str]:
        f = np.asarray(self.frames or [0])
        res = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.resolutions.most_common(5))
        out = [
            f"path         {self.path} ({self.kind})",
            f"videos       {self.videos} readable, {len(self.unreadable)} unreadable",
            f"frames       total {int(f.sum())}, per video min {int(f.min())} / median "
            f"{int(np.median(f))} / max {int(f.max())}",
            f"resolutions  {res or '-'}" + (" (mixed)" if len(self.resolutions) > 1 else ""),
            f"labels       {self.labelled} labelled"
            + (f", {len(self.classes)} classes" if self.classes else ""),
            f"too short    {len(self.too_short)} videos with fewer than {self.min_frames} frames",
        ]
        out += [f"  short      {name}: {n} frames" for name, n in self.too_short[:10]]
        out += [f"  unreadable {name}: {why}" for name, why in self.unreadable[:10]]
        more = (
            len(self.too_short)
            + len(self.unreadable)
            - min(10, len(self.too_short))
            - min(10, len(self.unreadable))
        )
        if more > 0:
            out.append(f"  ... and {more} more")
        return out


def dataset_info(
    path: str | Path, spec: ClipSpec | None = None, *, full: bool = False
) -> DatasetInfo:
    """Scan a dataset: counts, resolutions, too-short and unreadable videos.

    Without `full`, each video's header (first frame / container) is checked; with `full`,
    every frame is decoded, which finds truncated files anywhere at the cost of a full pass.
    """
    spec = spec or ClipSpec()
    source = open_source(path)
    info = DatasetInfo(
        path=source.path,
        kind=source.kind,
        videos=0,
        frames=[],
        resolutions=Counter(),
        classes=source.class_names,
        labelled=0,
        min_frames=spec.min_frames,
    )
    info.unreadable = [(b.name, b.reason) for b in source.bad]
    for i, v in enumerate(source.videos):
        try:
            size = source.frame_size(i)
            if full:
                for start in range(0, v.num_frames, 64):
                    source.read(i, range(start, min(start + 64, v.num_frames)), None)
            else:
                source.read(i, [v.num_frames - 1], None)
        except DataError as e:
            info.unreadable.append((v.name, str(e)))
            continue
        info.videos += 1
        info.frames.append(v.num_frames)
        info.resolutions[size] += 1
        info.labelled += v.label >= 0
        if v.num_frames < spec.min_frames:
            info.too_short.append((v.name, v.num_frames))
    return info
