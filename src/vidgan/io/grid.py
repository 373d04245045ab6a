"""Tile many videos into one grid video, optionally with a text label above each tile."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from vidgan.errors import DataError

LABEL_HEIGHT = 12  # pixels of the text strip above each tile (Pillow's default font is ~10 px)


def _label_mask(text: str, width: int, height: int) -> np.ndarray:
    """A [height, width] float mask in {0, 1} with `text` drawn in Pillow's default font."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((1, 0), text, fill=255, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def make_grid(
    videos: torch.Tensor,
    *,
    nrow: int = 8,
    labels: Sequence[str] | None = None,
    pad: int = 2,
    pad_value: float | None = None,
) -> torch.Tensor:
    """Tile `[N, 3, T, H, W]` videos into one `[3, T, H', W']` video, `nrow` tiles per row.

    Works for float videos in [-1, 1] (padding -1 = black, text 1 = white) and uint8 videos
    (0 / 255). `labels` (one string per video) are drawn in a strip above each tile; the strip
    is the same in every frame.
    """
    if videos.ndim != 5:
        raise DataError(f"make_grid needs videos [N, 3, T, H, W], got shape {tuple(videos.shape)}.")
    n, c, t, h, w = videos.shape
    if labels is not None and len(labels) != n:
        raise DataError(f"make_grid got {len(labels)} labels for {n} videos.")
    is_u8 = videos.dtype == torch.uint8
    lo, hi = (0.0, 255.0) if is_u8 else (-1.0, 1.0)
    fill = lo if pad_value is None else pad_value
    ncol = max(1, min(nrow, n))
    nrows = math.ceil(n / ncol)
    strip = LABEL_HEIGHT if labels is not None else 0
    cell_h, cell_w = h + strip + pad, w + pad
    grid = torch.full((c, t, pad + nrows * cell_h, pad + ncol * cell_w), fill, dtype=videos.dtype)
    for k in range(n):
        r, q = divmod(k, ncol)
        y0, x0 = pad + r * cell_h, pad + q * cell_w
        if labels is not None:
            mask = torch.from_numpy(_label_mask(str(labels[k]), w, strip))
            text = (lo + (hi - lo) * mask).to(videos.dtype)  # (strip, W)
            grid[:, :, y0 : y0 + strip, x0 : x0 + w] = text
        grid[:, :, y0 + strip : y0 + strip + h, x0 : x0 + w] = videos[k].to("cpu")
    return grid
