"""The FMR toy dataset: three objects bouncing vertically at three speeds.

Rules (FMR `toy_dataset/toy_dataset.py` as used by its `data.Dataset_toy`, REFERENCES.md):
64x64 black frames; exactly 3 objects at fixed columns x = size*(i+1)/4 (16, 32, 48); each
object gets a shape (circle r=4, filled 7x7 square, triangle (x-4,y+4),(x,y-4),(x+4,y+4)), a
colour (each channel uniform int in [100, 254]), a speed from {2, 4, 8} px/frame, an initial
row y0 uniform in [4, size-5] and a direction +-1, all independent and uniform. Frame k is drawn
before step k. A step moves y by speed*direction; if that passes the lower wall (size-4) the
object is placed at (size-4) - speed and turns, past the upper wall (4) at 4 + speed and turns
(the reference's rule: placed, not mirrored). The shapes are rasterised exactly as OpenCV's
non-antialiased filled circle / rectangle / fillPoly draw them at these sizes (the stencils
below), which `toy_samples.safetensors` checks pixel by pixel.

Unlike the release (which wrote every video into the same folder), every video is kept, and
`labels.json` records each object's parameters and per-frame row: the ground truth for the
motion metrics.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vidgan.errors import DataError

SHAPES = ("circle", "square", "triangle")
SPEEDS = (2, 4, 8)  # base speeds [1, 2, 4] x speed_multiplier 2, as data.Dataset_toy uses
RADIUS = 4  # `ball_size`: circle radius, square half-size + 1, triangle half-width; wall margin
COLOUR_RANGE = (100, 255)  # randint(100, 255): 100..254 per channel
LABELS_FORMAT = "vidgan-toy-v1"


@cache
def stencil(
    shape: str, r: int = RADIUS, *, base_clipped: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) offsets of the pixels a shape covers around its centre (OpenCV rasterisation).

    circle: filled disc dx^2 + dy^2 <= r^2 (49 px at r=4); square: |dx|, |dy| <= r-1 (7x7);
    triangle: apex at dy=-r, base at dy=+r; row k = dy + r spans dx in [-ceil(k/2), floor(k/2)]
    (45 px at r=4; OpenCV's fillPoly fills the left edge one pixel wider). When the base row
    lies below the frame (`base_clipped`), OpenCV clips the polygon first and its right edge
    becomes symmetric, [-ceil(k/2), ceil(k/2)] (seen in toy_samples at y = 60).
    """
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    if shape == "circle":
        mask = dx**2 + dy**2 <= r * r
    elif shape == "square":
        mask = (np.abs(dx) <= r - 1) & (np.abs(dy) <= r - 1)
    elif shape == "triangle":
        k = dy + r
        right = (k + 1) // 2 if base_clipped else k // 2
        mask = (dx >= -((k + 1) // 2)) & (dx <= right)
    else:
        raise ValueError(f"unknown toy shape {shape!r}; valid: {SHAPES}")
    return dy[mask], dx[mask]


def draw(frame: np.ndarray, shape: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """Paint one object into a uint8 [H, W, 3] frame in place, clipped at the borders."""
    h, w = frame.shape[:2]
    dy, dx = stencil(shape, base_clipped=shape == "triangle" and y + RADIUS >= h)
    yy, xx = y + dy, x + dx
    ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    frame[yy[ok], xx[ok]] = colour


def step(y: int, direction: int, speed: int, size: int) -> tuple[int, int]:
    """One frame of motion with the reference's wall rule; returns (y, direction)."""
    lo, hi = RADIUS, size - RADIUS
    y_new = y + speed * direction
    if y_new > hi:
        return hi - speed, -direction
    if y_new < lo:
        return lo + speed, -direction
    return y_new, direction


@dataclass(frozen=True)
class ToyObject:
    shape: str
    colour: tuple[int, int, int]
    speed: int
    x: int
    y0: int
    direction: int

    def trajectory(self, frames: int, size: int) -> list[int]:
        ys, y, d = [], self.y0, self.direction
        for _ in range(frames):
            ys.append(y)
            y, d = step(y, d, self.speed, size)
        return ys


def sample_objects(rng: np.random.Generator, size: int = 64) -> list[ToyObject]:
    """Draw the 3 objects of one video (all choices independent and uniform)."""
    objects = []
    for i in range(3):
        objects.append(
            ToyObject(
                shape=SHAPES[int(rng.integers(len(SHAPES)))],
                colour=tuple(int(c) for c in rng.integers(*COLOUR_RANGE, size=3)),
                speed=SPEEDS[int(rng.integers(len(SPEEDS)))],
                x=int(size * (i + 1) / 4),
                y0=int(rng.integers(RADIUS, size - RADIUS)),
                direction=int(rng.integers(2)) * 2 - 1,
            )
        )
    return objects


def render(
    objects: list[ToyObject], *, frames: int, size: int
) -> tuple[np.ndarray, list[list[int]]]:
    """uint8 [T, H, W, 3] video of the objects and each object's row per frame."""
    video = np.zeros((frames, size, size, 3), dtype=np.uint8)
    tracks = [o.trajectory(frames, size) for o in objects]
    for k in range(frames):
        for o, ys in zip(objects, tracks):
            draw(video[k], o.shape, o.x, ys[k], o.colour)
    return video, tracks


def make_toy_video(
    rng: np.random.Generator, *, size: int = 64, frames: int = 32
) -> tuple[np.ndarray, dict[str, Any]]:
    """One toy video, uint8 [T, H, W, 3] (RGB), and its labels {"objects": [...]}."""
    if size < 4 * RADIUS + 1:
        raise DataError(f"toy videos need size >= {4 * RADIUS + 1}, got {size}.")
    objects = sample_objects(rng, size)
    video, tracks = render(objects, frames=frames, size=size)
    labels = {
        "objects": [
            {
                "shape": o.shape,
                "colour": list(o.colour),
                "speed": o.speed,
                "x": o.x,
                "y0": o.y0,
                "direction": o.direction,
                "y": ys,
            }
            for o, ys in zip(objects, tracks)
        ]
    }
    return video, labels


def video_name(i: int) -> str:
    return f"{i:06d}"


def write_toy_dataset(
    dst: str | Path,
    *,
    n_videos: int,
    frames: int = 32,
    size: int = 64,
    seed: int = 0,
    fmt: str = "png",
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write `n_videos` toy videos as dst/<video>/<frame>.{png,jpg} (or a zip if dst ends .zip).

    Video i depends only on (seed, i), so a larger `n_videos` extends a smaller set. Refuses
    to touch an existing non-empty `dst` unless `force` (then it is replaced).
    """
    dst = Path(dst)
    if fmt not in ("png", "jpg"):
        raise DataError(f"toy frame format must be 'png' or 'jpg', got {fmt!r}.")
    if n_videos < 1 or frames < 1:
        raise DataError(
            f"toy dataset needs n_videos >= 1 and frames >= 1, got {n_videos}, {frames}."
        )
    if dst.exists() and (dst.is_file() or any(dst.iterdir())):
        if not force:
            raise DataError(f"output {dst} already exists; pass --force to replace it.")
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    params = {
        "n_videos": n_videos,
        "frames": frames,
        "size": size,
        "seed": seed,
        "fmt": fmt,
        "radius": RADIUS,
        "speeds": list(SPEEDS),
        "shapes": list(SHAPES),
    }
    meta: dict[str, Any] = {"format": LABELS_FORMAT, "params": params, "videos": {}}
    as_zip = dst.suffix.lower() == ".zip"
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    zf = zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) if as_zip else None
    save_kw = {"quality": 95} if fmt == "jpg" else {"compress_level": 1}
    iterator = range(n_videos)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="toy videos", unit="video")
    try:
        for i in iterator:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, i])))
            video, labels = make_toy_video(rng, size=size, frames=frames)
            name = video_name(i)
            meta["videos"][name] = labels
            for k, frame in enumerate(video):
                buf = BytesIO()
                Image.fromarray(frame).save(
                    buf, format="JPEG" if fmt == "jpg" else "PNG", **save_kw
                )
                if zf is not None:
                    zf.writestr(f"{name}/{k:06d}.{fmt}", buf.getvalue())
                else:
                    out = tmp / name
                    out.mkdir(parents=True, exist_ok=True)
                    (out / f"{k:06d}.{fmt}").write_bytes(buf.getvalue())
        text = json.dumps(meta)
        if zf is not None:
            zf.writestr("labels.json", text)
            zf.close()
        else:
            tmp.mkdir(parents=True, exist_ok=True)
            (tmp / "labels.json").write_text(text)
    except BaseException:
        if zf is not None:
            zf.close()
        raise
    if dst.exists():  # an empty directory
        dst.rmdir()
    tmp.rename(dst)
    return dst


def read_toy_labels(path: str | Path) -> dict[str, Any]:
    """labels.json of a toy dataset folder or zip."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as zf:
                meta = json.loads(zf.read("labels.json"))
        else:
            meta = json.loads((path / "labels.json").read_text())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} has no readable toy labels.json ({e}).") from None
    if meta.get("format") != LABELS_FORMAT:
        raise DataError(f"{path}/labels.json is not in the {LABELS_FORMAT} format.")
    return meta
