"""The Generator contract that sampling, metrics, training and the CLI rely on.

Every model's generator maps latents and timestamps to a video:

    video = G(z_content, z_motion, t)      # [B, 3, T, H, W], roughly in [-1, 1]

* `z_content` `[B, Dc]` fixes appearance; `z_motion` fixes motion (`[B, Dm]`, or model-specific
  extra axes such as G3AN's `[B, Dm, T0]`).
* `t` are real-valued timestamps, `[T]` (shared) or `[B, T]` (per video). Continuous-time models
  (`continuous_time = True`) accept any real values; discrete ones state `supported_lengths` and
  take `t = frame_times(T)`.
* `noise` is optional per-video model randomness (e.g. FMR's noise maps), drawn by
  `sample_latents` so a seeded `torch.Generator` fixes the whole video.

Sampling code only ever calls `sample_latents`, `frame_times` and `forward`; it never asks which
model it has.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vidgan.errors import VidganError


@dataclass
class Latents:
    """Everything random about a batch of videos: codes, optional labels and noise."""

    content: Tensor  # [B, Dc]
    motion: Tensor  # [B, Dm] (or [B, Dm, T0] for discrete-length models)
    labels: Tensor | None = None  # [B] int64 class ids for conditional models
    noise: list[Tensor] | None = None  # per-video model noise, model-specific shapes

    @property
    def batch_size(self) -> int:
        return self.content.shape[0]

    def to(self, device: torch.device | str) -> Latents:
        return replace(
            self,
            content=self.content.to(device),
            motion=self.motion.to(device),
            labels=None if self.labels is None else self.labels.to(device),
            noise=None if self.noise is None else [n.to(device) for n in self.noise],
        )

    def select(self, index: slice | Tensor | list[int]) -> Latents:
        """The latents of a subset of videos (rows)."""
        return Latents(
            content=self.content[index],
            motion=self.motion[index],
            labels=None if self.labels is None else self.labels[index],
            noise=None if self.noise is None else [n[index] for n in self.noise],
        )

    @staticmethod
    def cat(items: list[Latents]) -> Latents:
        first = items[0]
        return Latents(
            content=torch.cat([i.content for i in items]),
            motion=torch.cat([i.motion for i in items]),
            labels=None if first.labels is None else torch.cat([i.labels for i in items]),
            noise=None
            if first.noise is None
            else [torch.cat(ns) for ns in zip(*[i.noise for i in items])],
        )


class VideoGenerator(nn.Module):
    """Base class of every generator; subclasses implement the abstract methods below."""

    #: True when any real timestamp is valid (interpolation, extrapolation, single frames).
    continuous_time: ClassVar[bool] = True
    #: Frame counts the model can produce, or None for any.
    supported_lengths: ClassVar[tuple[int, ...] | None] = None
    #: Number of classes for conditional models, 0 for unconditional.
    num_classes: int = 0

    cfg: Any

    # --- abstract -----------------------------------------------------------------------
    def sample_latents(
        self,
        batch: int,
        *,
        n_frames: int = 16,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Latents:
        """Draw latents for `batch` videos of `n_frames` on this module's device."""
        raise NotImplementedError

    def frame_times(self, n_frames: int) -> Tensor:
        """Timestamps `[T]` of frames 0..T-1 at the training frame rate (the model's grid)."""
        raise NotImplementedError

    def forward(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
        noise: list[Tensor] | None = None,
    ) -> Tensor:
        """Render videos `[B, 3, T, H, W]` at timestamps `t` (`[T]` or `[B, T]`)."""
        raise NotImplementedError

    # --- shared helpers -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def generate(self, latents: Latents, t: Tensor) -> Tensor:
        """`forward` with everything taken from a `Latents`."""
        return self(latents.content, latents.motion, t, labels=latents.labels, noise=latents.noise)

    def check_length(self, n_frames: int) -> None:
        """Raise a clear error when a discrete-length model cannot make `n_frames` frames."""
        lengths = self.supported_lengths
        if lengths is not None and n_frames not in lengths:
            raise VidganError(
                f"{type(self).__name__} makes videos of {', '.join(map(str, lengths))} frames, "
                f"not {n_frames}."
            )


def expand_times(t: Tensor, batch: int) -> Tensor:
    """`[T]` or `[B, T]` timestamps -> `[B, T]` float tensor."""
    if t.ndim == 1:
        return t.unsqueeze(0).expand(batch, -1)
    if t.ndim == 2 and t.shape[0] in (1, batch):
        return t.expand(batch, -1)
    raise VidganError(f"timestamps must be [T] or [B, T] with B={batch}, got {tuple(t.shape)}.")


def check_shape(x: Tensor, shape: tuple[int | None, ...], name: str = "tensor") -> None:
    """Assert `x.shape` matches `shape` (None = any) with a readable message."""
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise VidganError(f"{name} should have shape {want}, got {list(x.shape)}.")
