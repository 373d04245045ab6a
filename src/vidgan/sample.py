"""The generation API: every sampling mode as a `@torch.no_grad` function over the contract.

These functions never ask which model they hold; they use `G.sample_latents`, `G.frame_times`,
`G.generate` and the declared abilities (`continuous_time`, `supported_lengths`). Model-specific
edits (FMR's frequency bands, DIGAN's coordinate grids) are methods of those generators.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> out = sample(G, 4, n_frames=16, generator=g)        # 4 videos
    >>> dense = interpolate(G, out.latents, n_frames=16, factor=4)  # 64 frames, same span
    >>> longer = extrapolate(G, out.latents, n_frames=16, factor=2)  # 32 frames, twice the span
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from vidgan.errors import VidganError
from vidgan.heap import steady_allocator, trim_heap
from vidgan.models.base import Latents, VideoGenerator


@dataclass
class VideoOutput:
    """Generated videos with everything needed to make them again."""

    videos: Tensor  # [B, 3, T, H, W] float, roughly in [-1, 1]
    timestamps: Tensor  # [T] (shared) or [B, T]
    latents: Latents
    names: list[str] | None = None  # optional per-video captions (e.g. "app 0 x mot 2")


def _require_continuous(G: VideoGenerator, what: str) -> None:
    if not G.continuous_time:
        raise VidganError(
            f"{type(G).__name__} is not a continuous-time model, so it cannot do {what}; "
            f"it makes videos of {G.supported_lengths} frames."
        )


def difference_video(videos: Tensor) -> Tensor:
    """(x_t - x_0) / 2 per video `[B, 3, T, H, W]`: what moved since the first frame, in [-1, 1]."""
    return (videos - videos[:, :, :1]) / 2


def frame_time(G: VideoGenerator, k: Tensor | float) -> Tensor:
    """Timestamp of (possibly fractional or negative) frame index `k` on G's training grid."""
    t01 = G.frame_times(2)
    k = torch.as_tensor(k, dtype=t01.dtype, device=t01.device)
    return t01[0] + k * (t01[1] - t01[0])


def _render(
    G: VideoGenerator,
    latents: Latents,
    t: Tensor,
    *,
    batch_size: int,
    chunk_frames: int | None,
    progress: bool,
) -> Tensor:
    """Render in batches of videos and (for continuous models) chunks of frames."""
    device = G.device
    latents = latents.to(device)
    t = t.to(device)
    n, n_t = latents.batch_size, t.shape[-1]
    chunk = n_t if not chunk_frames or not G.continuous_time else chunk_frames
    if chunk < n_t:
        steady_allocator()
    steps = [(b, s) for b in range(0, n, batch_size) for s in range(0, n_t, chunk)]
    out: Tensor | None = None  # (B, 3, T, H, W), filled piece by piece: memory = output + 1 chunk
    for b, s in tqdm(steps, desc="generating", disable=not progress, leave=False):
        sub = latents.select(slice(b, b + batch_size))
        tt = t[..., s : s + chunk] if t.ndim == 1 else t[b : b + batch_size, s : s + chunk]
        piece = G.generate(sub, tt)
        if out is None:
            out = torch.empty((n, piece.shape[1], n_t, *piece.shape[3:]), dtype=torch.float32)
        out[b : b + piece.shape[0], :, s : s + piece.shape[2]] = piece
    if out is None:
        raise VidganError("nothing to render: no videos or no timestamps were asked for.")
    return out


def iter_video_chunks(
    G: VideoGenerator,
    latents: Latents,
    t: Tensor,
    *,
    chunk_frames: int,
    batch_size: int = 8,
    progress: bool = False,
) -> Iterator[Tensor]:
    """All videos `chunk_frames` frames at a time: pieces `[n, 3, <=chunk, H, W]` on the CPU.

    For long videos from continuous-time models: concatenated along T the pieces equal
    `sample(G, ..., latents=latents, timestamps=t)`, while only one piece is ever in memory, so
    a writer can stream them to disk (`vidgan.io.video.VideoWriter`). Peak memory does not
    grow with the number of chunks (see `steady_allocator`).
    """
    _require_continuous(G, "chunked generation")
    if chunk_frames < 1:
        raise VidganError(f"chunk_frames must be at least 1, got {chunk_frames}.")
    steady_allocator()
    device = G.device
    latents, t = latents.to(device), t.to(device)
    n, n_t = latents.batch_size, t.shape[-1]
    starts = range(0, n_t, chunk_frames)
    with torch.no_grad():
        for s in tqdm(starts, desc="generating", disable=not progress, leave=False):
            pieces = []
            for b in range(0, n, batch_size):
                sub = latents.select(slice(b, b + batch_size))
                tt = (
                    t[s : s + chunk_frames]
                    if t.ndim == 1
                    else t[b : b + batch_size, s : s + chunk_frames]
                )
                pieces.append(G.generate(sub, tt).float().cpu())
            yield pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=0)
            del pieces
            trim_heap()  # the consumer is done with this chunk


@torch.no_grad()
def sample(
    G: VideoGenerator,
    n: int,
    *,
    n_frames: int = 16,
    timestamps: Tensor | None = None,
    latents: Latents | None = None,
    generator: torch.Generator | None = None,
    labels: Tensor | None = None,
    batch_size: int = 8,
    chunk_frames: int | None = None,
    progress: bool = False,
) -> VideoOutput:
    """Random videos from G.

    Args:
        G: any registered generator (eval mode is the caller's choice; EMA weights are usual).
        n: number of videos.
        n_frames: frames per video on G's training grid (ignored when `timestamps` is given).
        timestamps: explicit times `[T]` or `[n, T]` (continuous models only for off-grid values).
        latents: reuse these latents instead of drawing new ones.
        generator: seeded `torch.Generator` that fixes every random draw.
        labels: class ids `[n]` for conditional models.
        batch_size: videos rendered at once.
        chunk_frames: render long videos this many frames at a time (continuous models);
            the frames are identical to one-shot rendering, memory stays flat.
        progress: show a progress bar.

    Returns:
        VideoOutput with videos `[n, 3, T, H, W]`, the timestamps and the latents.
    """
    if n < 1:
        raise VidganError(f"number of videos must be at least 1, got {n}.")
    if timestamps is None:
        G.check_length(n_frames)
        timestamps = G.frame_times(n_frames)
    elif not G.continuous_time:
        G.check_length(timestamps.shape[-1])
    if latents is None:
        latents = G.sample_latents(
            n, n_frames=timestamps.shape[-1], generator=generator, labels=labels
        )
    videos = _render(
        G, latents, timestamps, batch_size=batch_size, chunk_frames=chunk_frames, progress=progress
    )
    return VideoOutput(videos=videos, timestamps=timestamps.cpu(), latents=latents)


@torch.no_grad()
def interpolate(
    G: VideoGenerator, latents: Latents, *, n_frames: int = 16, factor: int = 4, **kw
) -> VideoOutput:
    """`factor` times the frame rate over the span of `n_frames` training frames.

    Frame `factor * k` of the result is frame `k` of the plain video (same time, same latents).
    """
    t = interpolation_times(G, n_frames=n_frames, factor=factor)
    return sample(G, latents.batch_size, timestamps=t, latents=latents, **kw)


def interpolation_times(G: VideoGenerator, *, n_frames: int = 16, factor: int = 4) -> Tensor:
    """`[n_frames * factor]` times at `factor`x the frame rate over `n_frames` training frames."""
    _require_continuous(G, "time interpolation")
    if factor < 1:
        raise VidganError(f"interpolation factor must be at least 1, got {factor}.")
    return frame_time(G, torch.arange(n_frames * factor, dtype=torch.float32) / factor)


@torch.no_grad()
def extrapolate(
    G: VideoGenerator, latents: Latents, *, n_frames: int = 16, factor: int = 2, **kw
) -> VideoOutput:
    """Continue the video past its training span: `factor * n_frames` frames at the same rate."""
    t = extrapolation_times(G, n_frames=n_frames, factor=factor)
    return sample(G, latents.batch_size, timestamps=t, latents=latents, **kw)


def extrapolation_times(G: VideoGenerator, *, n_frames: int = 16, factor: int = 2) -> Tensor:
    """`[n_frames * factor]` times at the training frame rate, continuing past the clip."""
    _require_continuous(G, "time extrapolation")
    return frame_time(G, torch.arange(n_frames * factor, dtype=torch.float32))


def combine_latents(appearance: Latents, motion: Latents) -> Latents:
    """Every appearance with every motion: row `i * M + j` = appearance i, motion j.

    Content, labels and per-video noise come from the appearance side; motion codes from the
    motion side.
    """
    n_app, n_mot = appearance.batch_size, motion.batch_size
    ia = torch.arange(n_app).repeat_interleave(n_mot)
    im = torch.arange(n_mot).repeat(n_app)
    app = appearance.select(ia)
    return Latents(
        content=app.content, motion=motion.motion[im], labels=app.labels, noise=app.noise
    )


@torch.no_grad()
def appearance_motion_grid(
    G: VideoGenerator,
    n_appearances: int,
    n_motions: int,
    *,
    n_frames: int = 16,
    generator: torch.Generator | None = None,
    **kw,
) -> VideoOutput:
    """N appearances x M motions, labelled correctly for any N and M (row-major by appearance)."""
    G.check_length(n_frames)
    app = G.sample_latents(n_appearances, n_frames=n_frames, generator=generator)
    mot = G.sample_latents(n_motions, n_frames=n_frames, generator=generator)
    out = sample(
        G, n_appearances * n_motions, n_frames=n_frames, latents=combine_latents(app, mot), **kw
    )
    out.names = [f"app {i} x mot {j}" for i in range(n_appearances) for j in range(n_motions)]
    return out
