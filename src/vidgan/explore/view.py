"""What the explorer page can ask of one checkpoint: a checked `View` and its rendering.

A `View` is everything that fixes a video: content and motion seeds, the time span and its
sampling density, DIGAN's space up-sampling or zoom-out, FMR's band edit, and whether to show
the difference video. `Explorer` turns views into frames through the public APIs only
(`vidgan.sample`, `G.edit`/`G.with_edit`, `G.upsampled`/`G.zoomed_out`), in chunks of frames so
a job can report progress and stop when a newer request supersedes it.

Seeds: content seed c and motion seed m draw `G.sample_latents(1, generator=seed(c))` and keep
its content (and labels, noise), and the motion code of the same draw with seed m
(`combine_latents`). With c == m the video is exactly `sample(G, 1, generator=seed(c))`, i.e.
`vidgan generate --n 1 --seed c`.
"""

from __future__ import annotations

import io
import math
import tempfile
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidgan.checkpoint import LoadedModel, load_checkpoint
from vidgan.errors import VidganError
from vidgan.io import as_thwc_uint8, make_grid, write_video
from vidgan.models.base import Latents, VideoGenerator
from vidgan.sample import combine_latents, difference_video, frame_time, sample

MAX_SEEDS = 16  # per list; content x motion videos are rendered as one grid
MAX_VIDEOS = 16
MAX_SEED = 2**31 - 1
MAX_FRAMES = 256  # training frames a view may span
MAX_DENSITY = 8  # rendered frames per training frame (interpolation factor)
MAX_RENDERED = 512  # frames per video after densifying
MAX_START = 10_000.0  # |first frame index|: far past the training range, still finite
MAX_SCALE = 4  # DIGAN space up-sampling factor
MAX_ZOOM = 4.0  # DIGAN zoom-out factor
MAX_PIXELS = 2**25  # videos x frames x height x width of one render (about 400 MB of floats)
MAX_EDGES = 8
FPS_RANGE = (1.0, 60.0)


class RequestError(VidganError):
    """A request the page sent that cannot be rendered (bad value, wrong model)."""


def parse_seeds(text: Any, what: str) -> tuple[int, ...]:
    """`"3"`, `"0,2,5"`, `"0-3"` or a list of ints -> seeds (each 0..2^31-1, at most 16)."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if isinstance(text, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in text):
        text = ",".join(map(str, text))
    if not isinstance(text, str):
        raise RequestError(f"{what} must be seeds like 0, 0,2,5 or 0-3, got {text!r}.")
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise RequestError(f"{what} {text!r} is not a seed list: use e.g. 0, 0,2,5 or 0-3.")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a or max(a, b) > MAX_SEED or (b - a) >= MAX_SEEDS:
            raise RequestError(
                f"{what} {part!r} must be seeds 0..{MAX_SEED}, ranges low-high, at most "
                f"{MAX_SEEDS} in all."
            )
        seeds.extend(range(a, b + 1))
    if not seeds or len(seeds) > MAX_SEEDS:
        raise RequestError(f"{what} must name 1..{MAX_SEEDS} seeds, got {len(seeds)}.")
    return tuple(seeds)


@dataclass(frozen=True)
class View:
    """One video request, already checked against the model."""

    content_seeds: tuple[int, ...] = (0,)
    motion_seeds: tuple[int, ...] = (0,)
    frames: int = 16  # training frames the video spans (a supported length for G3AN)
    start: float = 0.0  # first frame index on the training grid (negative / past: extrapolate)
    density: int = 1  # rendered frames per training frame (interpolation)
    scale: int = 1  # DIGAN: render on a scale-x denser coordinate grid
    zoom: float = 1.0  # DIGAN: a zoom-x wider field of view
    difference: bool = False  # show (x_t - x_start) / 2 instead of the frames
    edges: tuple[float, ...] = ()  # FMR: band edges in |w| (or fractions with ratio)
    ratio: bool = False
    remove: tuple[int, ...] = ()  # FMR: bands whose sinusoids are zeroed
    alter: tuple[tuple[int, int], ...] = ()  # FMR: (band, motion seed) driving that band

    @property
    def n_videos(self) -> int:
        return len(self.content_seeds) * len(self.motion_seeds)

    def frame_indices(self) -> Tensor:
        """Frame indices (training-grid units) of the rendered frames."""
        k = torch.arange(self.frames * self.density, dtype=torch.float64) / self.density
        return (k + self.start).float()


@dataclass
class Rendered:
    """A finished render: uint8 frames of the (grid) video and what they show."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    indices: list[float]  # frame index of each frame on the training grid
    names: list[str]
    view: View


def _number(data: dict, key: str, default: Any, kind: type, lo: float, hi: float) -> Any:
    value = data.get(key, default)
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        number = float(value)
    except ValueError:
        raise RequestError(f"{key} must be a number, got {value!r}.") from None
    if not (math.isfinite(number) and lo <= number <= hi):
        raise RequestError(f"{key} must be between {lo:g} and {hi:g}, got {value!r}.")
    if kind is int and number != int(number):
        raise RequestError(f"{key} must be a whole number, got {value!r}.")
    return kind(number)


def _flag(data: dict, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise RequestError(f"{key} must be true or false, got {value!r}.")
    return value


def _int_list(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in value
    ):
        raise RequestError(f"{key} must be a list of band indices, got {value!r}.")
    return tuple(value)


def _training_frames(G: VideoGenerator) -> int:
    """Frames of a training clip: the span the model saw (time past it is extrapolation).

    The contract does not state it, so it is read from the config field each model records it
    in (FMR `video_length`, DIGAN `n_frames`); discrete models use their shortest length.
    """
    if not G.continuous_time:
        return min(G.supported_lengths or (16,))
    for name in ("video_length", "n_frames"):
        value = getattr(G.cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 16


class Explorer:
    """One loaded checkpoint behind the page: checks requests and renders them.

    Args:
        loaded: the checkpoint from `vidgan.checkpoint.load_checkpoint`.
        chunk_frames: frames rendered per call (progress and cancellation happen between calls).
        batch: videos rendered per call.
    """

    def __init__(self, loaded: LoadedModel, *, chunk_frames: int = 8, batch: int = 4) -> None:
        self.loaded = loaded
        self.G = loaded.generator.eval()
        self.chunk_frames = chunk_frames
        self.batch = batch
        self._lock = threading.Lock()  # one forward at a time; jobs interleave between chunks
        self.clip_frames = _training_frames(self.G)
        first = self.render(self.parse({"frames": self.clip_frames}), frames=1)
        self.size = tuple(first.frames.shape[1:3])

    @classmethod
    def load(
        cls, path: str | Path, *, source: str | None = None, device: str = "cpu", **kw: Any
    ) -> Explorer:
        return cls(load_checkpoint(path, source=source, device=device), **kw)

    # --- what the page shows -------------------------------------------------------------
    @property
    def has_bands(self) -> bool:
        return hasattr(self.G, "frequency_spectrum") and hasattr(self.G, "with_edit")

    def info(self) -> dict[str, Any]:
        G = self.G
        return {
            "model": self.loaded.spec.name,
            "generator": type(G).__name__,
            "source": self.loaded.source,
            "provenance": self.loaded.provenance,
            "continuous": G.continuous_time,
            "lengths": list(G.supported_lengths) if G.supported_lengths else None,
            "clip_frames": self.clip_frames,
            "size": list(self.size),
            "conditional": G.num_classes > 0,
            "abilities": {
                "bands": self.has_bands,
                "upsample": hasattr(G, "upsampled"),
                "zoom": hasattr(G, "zoomed_out"),
            },
            "limits": {
                "seeds": MAX_SEEDS,
                "videos": MAX_VIDEOS,
                "frames": MAX_FRAMES,
                "density": MAX_DENSITY,
                "start": MAX_START,
                "scale": MAX_SCALE,
                "zoom": MAX_ZOOM,
                "fps": list(FPS_RANGE),
                "edges": MAX_EDGES,
            },
        }

    # --- requests ------------------------------------------------------------------------
    def parse(self, data: Any) -> View:
        """Check a request's JSON against the limits and this model's abilities."""
        if not isinstance(data, dict):
            raise RequestError("the request body must be a JSON object.")
        known = {f.name for f in fields(View)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RequestError(f"unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}.")
        G = self.G
        view = View(
            content_seeds=parse_seeds(data.get("content_seeds", "0"), "content seeds"),
            motion_seeds=parse_seeds(data.get("motion_seeds", "0"), "motion seeds"),
            frames=_number(data, "frames", self.clip_frames, int, 1, MAX_FRAMES),
            start=_number(data, "start", 0.0, float, -MAX_START, MAX_START),
            density=_number(data, "density", 1, int, 1, MAX_DENSITY),
            scale=_number(data, "scale", 1, int, 1, MAX_SCALE),
            zoom=_number(data, "zoom", 1.0, float, 1.0, MAX_ZOOM),
            difference=_flag(data, "difference"),
            edges=tuple(
                _number({"edge": e}, "edge", 0, float, 1e-6, 1e6) for e in self._list(data, "edges")
            ),
            ratio=_flag(data, "ratio"),
            remove=_int_list(data.get("remove", []), "remove"),
            alter=self._alter(data.get("alter", {})),
        )
        if view.n_videos > MAX_VIDEOS:
            raise RequestError(
                f"{len(view.content_seeds)} content x {len(view.motion_seeds)} motion seeds make "
                f"{view.n_videos} videos; the page renders at most {MAX_VIDEOS}."
            )
        if view.frames * view.density > MAX_RENDERED:
            raise RequestError(
                f"frames x density = {view.frames * view.density} frames per video; "
                f"at most {MAX_RENDERED}."
            )
        if not G.continuous_time:
            G.check_length(view.frames)  # names the supported lengths
            if view.start != 0 or view.density != 1:
                raise RequestError(
                    f"{type(G).__name__} renders frames 0..T-1 only: start must be 0 and "
                    "density 1 (it is not a continuous-time model)."
                )
        if view.scale != 1 and not hasattr(G, "upsampled"):
            raise RequestError(f"{type(G).__name__} has no space up-sampling; scale must be 1.")
        if view.zoom != 1 and not hasattr(G, "zoomed_out"):
            raise RequestError(f"{type(G).__name__} has no zoom-out; zoom must be 1.")
        if view.scale != 1 and view.zoom != 1:
            raise RequestError("choose either scale (up-sampling) or zoom (zoom-out), not both.")
        self._check_bands(view)
        h, w = getattr(self, "size", (0, 0))
        side = max(view.scale, view.zoom)
        pixels = view.n_videos * view.frames * view.density * h * w * side * side
        if pixels > MAX_PIXELS:
            raise RequestError(
                f"this render would hold {pixels / 1e6:.0f} M pixels; at most "
                f"{MAX_PIXELS / 1e6:.0f} M (fewer seeds, frames, density or scale)."
            )
        return view

    @staticmethod
    def _list(data: dict, key: str) -> list:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [x for x in value.replace(" ", "").split(",") if x]
        if not isinstance(value, list) or len(value) > MAX_EDGES:
            raise RequestError(f"{key} must be a list of at most {MAX_EDGES} numbers.")
        return value

    @staticmethod
    def _alter(value: Any) -> tuple[tuple[int, int], ...]:
        if not isinstance(value, dict):
            raise RequestError(f"alter must map band -> motion seed, got {value!r}.")
        out = []
        for band, seed in value.items():
            if not str(band).lstrip("-").isdigit():
                raise RequestError(f"alter band {band!r} must be a band index.")
            (s,) = parse_seeds(seed, f"alter seed of band {band}")
            out.append((int(band), s))
        return tuple(sorted(out))

    def _check_bands(self, view: View) -> None:
        if not (view.edges or view.remove or view.alter):
            return
        if not self.has_bands:
            raise RequestError(f"{type(self.G).__name__} has no frequency bands to edit.")
        if not view.edges:
            raise RequestError("removing or altering bands needs band edges (e.g. 3 or 2,5).")
        n = len(view.edges) + 1
        for band in [*view.remove, *(b for b, _ in view.alter)]:
            if not 0 <= band < n:
                raise RequestError(f"band {band} does not exist: edges {view.edges} give {n}.")
        self._edited(view)  # the edit API checks the edges

    # --- rendering -----------------------------------------------------------------------
    def _edited(self, view: View) -> VideoGenerator:
        """G seen through the view's band edit (FMR), or G itself."""
        if not (view.edges or view.remove or view.alter):
            return self.G
        G: Any = self.G
        motions = {
            band: G.sample_latents(1, generator=torch.Generator().manual_seed(seed)).motion[0]
            for band, seed in view.alter
        }
        edit = G.edit(edges=view.edges, ratio=view.ratio, remove=view.remove, band_motions=motions)
        return G.with_edit(edit)

    def latents(self, view: View) -> tuple[Latents, list[str]]:
        """Every content seed with every motion seed (row-major by content)."""

        def draw(seeds: tuple[int, ...]) -> Latents:
            return Latents.cat(
                [
                    self.G.sample_latents(
                        1, n_frames=view.frames, generator=torch.Generator().manual_seed(s)
                    )
                    for s in seeds
                ]
            )

        lat = combine_latents(draw(view.content_seeds), draw(view.motion_seeds))
        names = [f"c{c} m{m}" for c in view.content_seeds for m in view.motion_seeds]
        return lat, names

    @torch.no_grad()
    def _draw(self, G: VideoGenerator, view: View, lat: Latents, t: Tensor) -> Tensor:
        """Videos `[B, 3, T, H, W]` of latents `lat` at times `t` (one chunk)."""
        if view.scale == 1 and view.zoom == 1:
            return sample(G, lat.batch_size, timestamps=t, latents=lat).videos
        base: Any = self.G
        lat, t = lat.to(base.device), t.to(base.device)
        if view.scale != 1:
            out = base.upsampled(lat.content, lat.motion, t, view.scale, labels=lat.labels)
        else:
            out = base.zoomed_out(lat.content, lat.motion, t, view.zoom, labels=lat.labels)
        return out.float().cpu()

    def render_videos(
        self, view: View, indices: Tensor | None = None, job: Any = None
    ) -> tuple[Tensor, Tensor, list[str]]:
        """Float videos `[N, 3, T, H, W]` at frame indices (default: the view's frames)."""
        G = self._edited(view)
        lat, names = self.latents(view)
        if self.G.continuous_time:
            k = view.frame_indices() if indices is None else indices
            t, chunk = frame_time(self.G, k), self.chunk_frames
        else:  # discrete: the whole video in one call
            k = torch.arange(view.frames, dtype=torch.float32)
            t, chunk = self.G.frame_times(view.frames), view.frames
        n, n_t = lat.batch_size, t.shape[-1]
        steps = [(b, s) for b in range(0, n, self.batch) for s in range(0, n_t, chunk)]
        rows: list[list[Tensor]] = [[] for _ in range(0, n, self.batch)]
        for i, (b, s) in enumerate(steps):
            if job is not None:
                job.step(i / len(steps), f"rendering {i}/{len(steps)} chunks")
            sub = lat.select(slice(b, b + self.batch))
            with self._lock:
                rows[b // self.batch].append(self._draw(G, view, sub, t[s : s + chunk]))
        videos = torch.cat([torch.cat(r, dim=2) for r in rows], dim=0)  # (N, 3, T, H, W)
        return videos, k, names

    def _to_frames(self, videos: Tensor, view: View, names: list[str]) -> np.ndarray:
        if view.difference:
            videos = difference_video(videos)
        if videos.shape[0] == 1:
            return as_thwc_uint8(videos[0])
        grid = make_grid(videos.clamp(-1, 1), nrow=len(view.motion_seeds), labels=names)
        return as_thwc_uint8(grid)

    def render(self, view: View, job: Any = None, *, frames: int | None = None) -> Rendered:
        """The view's video as uint8 frames (the first `frames` only, if given)."""
        k = view.frame_indices()[:frames] if frames else None
        videos, k, names = self.render_videos(view, k, job)
        if not self.G.continuous_time and frames:
            videos, k = videos[:, :, :frames], k[:frames]
        return Rendered(self._to_frames(videos, view, names), k.tolist(), names, view)

    def render_frame(self, view: View, index: float, job: Any = None) -> np.ndarray:
        """One frame `[H, W, 3]` uint8 at frame index `index` (any real for continuous models)."""
        if not self.G.continuous_time:
            if index != int(index) or not 0 <= index < view.frames:
                raise RequestError(
                    f"{type(self.G).__name__} renders frames 0..{view.frames - 1} only, "
                    f"not {index:g}."
                )
            return self.render(view, job).frames[int(index)]
        k = torch.tensor([view.start, index] if view.difference else [index], dtype=torch.float32)
        videos, _, names = self.render_videos(view, k, job)
        return self._to_frames(videos, view, names)[-1]

    # --- FMR spectrum --------------------------------------------------------------------
    def spectrum(self, edges: tuple[float, ...] = (), ratio: bool = False) -> dict[str, Any]:
        """Learned |w| per band generator, the band counts for `edges`, and the frame spacing."""
        if not self.has_bands:
            raise RequestError(f"{type(self.G).__name__} has no learned motion frequencies.")
        G: Any = self.G
        if edges:
            G.edit(edges=edges, ratio=ratio)  # checks the edges
        dt = float(frame_time(G, 1.0) - frame_time(G, 0.0))
        gens = []
        masks = G.band_masks(edges, ratio=ratio) if edges else None
        for i, w in enumerate(G.frequency_spectrum()):
            w = w.float().cpu()
            counts = [int(m.sum()) for m in masks[i]] if masks is not None else [len(w)]
            gens.append({"frequencies": sorted(w.tolist()), "band_counts": counts})
        return {"generators": gens, "edges": list(edges), "ratio": ratio, "frame_dt": dt}


def encode_png(frame: np.ndarray) -> bytes:
    """PNG bytes of one uint8 `[H, W, 3]` frame."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def encode_video(rendered: Rendered, fmt: str, fps: float) -> bytes:
    """The render as mp4 or gif bytes, written by `vidgan.io.write_video`."""
    if fmt not in ("mp4", "gif"):
        raise RequestError(f"format must be mp4 or gif, got {fmt!r}.")
    lo, hi = FPS_RANGE
    if not (math.isfinite(fps) and lo <= fps <= hi):
        raise RequestError(f"fps must be between {lo:g} and {hi:g}, got {fps:g}.")
    with tempfile.TemporaryDirectory(prefix="vidgan-explore-") as tmp:
        path = write_video(Path(tmp) / f"video.{fmt}", rendered.frames, fps=fps)
        return path.read_bytes()
