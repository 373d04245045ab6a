"""The clip sampler: which frames a clip reads, and how a frame becomes a training image.

Index arithmetic is pure (no I/O) so that property tests cover it. A clip of `frames` frames
with stride `s` starting at `offset` reads frames `offset + k*s`, k = 0..frames-1, so it spans
`(frames - 1) * s + 1` source frames. With a set of strides (G3AN's {2, 3}) each clip picks one
uniformly among the strides that fit its video; a video too short for the smallest stride is
"short" (skipped with a count, or an error, `ClipSpec.short`).

Randomness (stride, offset, flip) comes from `clip_rng(seed, epoch, index)`, so the clip of a
given item is the same in any DataLoader worker or DDP rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from vidgan.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class ClipSpec:
    """What one training clip looks like."""

    frames: int = 16  # clip length T (16 in DIGAN, FMR and G3AN)
    stride: int | tuple[int, ...] = 1  # frame step; a tuple = random choice per clip (G3AN (2, 3))
    offset: Literal["random", "start"] = "random"  # first frame: uniform over valid, or frame 0
    size: int | None = None  # resize shorter side to `size` + centre crop; None = keep as stored
    flip: bool = False  # x-flip the whole clip with p = 0.5
    dtype: Literal["float", "uint8"] = "float"  # float = [-1, 1] (x / 127.5 - 1)
    short: Literal["skip", "error"] = "skip"  # too-short videos: skip with a count, or raise

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"ClipSpec.frames must be >= 1, got {self.frames}.")
        if not self.strides or min(self.strides) < 1:
            raise ConfigError(f"ClipSpec.stride must be positive integers, got {self.stride!r}.")
        if self.offset not in ("random", "start"):
            raise ConfigError(f"ClipSpec.offset must be 'random' or 'start', got {self.offset!r}.")
        if self.size is not None and self.size < 1:
            raise ConfigError(f"ClipSpec.size must be >= 1 or None, got {self.size}.")
        if self.dtype not in ("float", "uint8"):
            raise ConfigError(f"ClipSpec.dtype must be 'float' or 'uint8', got {self.dtype!r}.")
        if self.short not in ("skip", "error"):
            raise ConfigError(f"ClipSpec.short must be 'skip' or 'error', got {self.short!r}.")

    @property
    def strides(self) -> tuple[int, ...]:
        """The candidate strides, sorted and unique."""
        s = (self.stride,) if isinstance(self.stride, int) else tuple(self.stride)
        return tuple(sorted(set(int(v) for v in s)))

    @property
    def min_frames(self) -> int:
        """Source frames a video needs to yield a clip (at the smallest stride)."""
        return clip_span(self.frames, self.strides[0])


def clip_span(frames: int, stride: int) -> int:
    """Number of source frames covered by a clip: (frames - 1) * stride + 1."""
    return (frames - 1) * stride + 1


def clip_indices(frames: int, stride: int, offset: int) -> np.ndarray:
    """Frame indices of a clip: offset + k * stride for k = 0..frames-1 (int64)."""
    return offset + stride * np.arange(frames, dtype=np.int64)


def fitting_strides(n_frames: int, spec: ClipSpec) -> tuple[int, ...]:
    """Strides of `spec` whose clip fits in a video of `n_frames` frames."""
    return tuple(s for s in spec.strides if clip_span(spec.frames, s) <= n_frames)


def clip_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one item in one epoch: same numbers in any worker or rank."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, index])))


@dataclass(frozen=True)
class ClipChoice:
    """The random decisions for one clip."""

    indices: np.ndarray  # [frames] source frame indices
    stride: int
    flip: bool


def sample_clip(n_frames: int, spec: ClipSpec, rng: np.random.Generator) -> ClipChoice:
    """Choose stride, offset and flip for a clip of a video with `n_frames` frames.

    Draw order is fixed (stride, offset, flip) so results only depend on the rng state.
    Raises ValueError when the video is too short (callers filter short videos first).
    """
    strides = fitting_strides(n_frames, spec)
    if not strides:
        raise ValueError(f"{n_frames} frames cannot hold a clip needing {spec.min_frames}.")
    stride = strides[int(rng.integers(len(strides)))] if len(strides) > 1 else strides[0]
    last_start = n_frames - clip_span(spec.frames, stride)
    offset = int(rng.integers(last_start + 1)) if spec.offset == "random" else 0
    flip = bool(rng.random() < 0.5) if spec.flip else False
    return ClipChoice(indices=clip_indices(spec.frames, stride, offset), stride=stride, flip=flip)


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The centred square (left, top, right, bottom) of side min(width, height)."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def resize_crop(img: Image.Image, size: int | None) -> Image.Image:
    """Centre-crop to a square and resize it to `size` (Lanczos); None keeps the image as is.

    Equivalent to "resize the shorter side to `size`, then centre crop", done in one resampling
    pass over the crop box so no pixels outside the final square are computed.
    """
    if size is None:
        return img
    w, h = img.size
    box = crop_box(w, h)
    if (w, h) == (size, size):
        return img
    return img.resize((size, size), Image.Resampling.LANCZOS, box=box)


def draft_open(img: Image.Image, size: int | None) -> Image.Image:
    """Let the JPEG decoder downscale by 2/4/8 while staying >= `size` on the shorter side.

    Decoding at reduced size is several times faster and the Lanczos pass that follows does
    the exact resampling.
    """
    if size is None or img.format != "JPEG":
        return img
    w, h = img.size
    side = min(w, h)
    if side >= 2 * size:
        scale = side // size  # draft picks the largest reduction keeping >= the requested size
        img.draft("RGB", (max(1, -(-w // scale)), max(1, -(-h // scale))))
    return img
