"""Motion metrics that need no pretrained network.

FVD's I3D features are dominated by per-frame content (Ge et al., CVPR 2024, "content-debiased
FVD"): shuffling the frames of real videos in time barely moves FVD. These two measures look at
motion only:

* `toy_speeds`: on the FMR toy set (three objects bouncing vertically in the columns
  x = 16, 32, 48 of 64 at speeds {2, 4, 8} px/frame), track each object by the vertical centroid
  of the non-black pixels in its column band and estimate its speed as the median |dy| per frame
  (the median ignores the shortened steps at wall bounces). Speeds are given at the 64-px scale.
  Distances between real and fake: Wasserstein-1 between the per-object speed samples, total
  variation between histograms over the nearest class {static, 2, 4, 8, other}, and the change
  in the share of fast (>= 6 px/frame) objects.
* `temporal_spectrum`: for any video set, the distribution of frame-difference energy over
  temporal frequencies (power spectrum of the frame differences along time, summed over pixels,
  normalised per clip), averaged over clips. Distance: Wasserstein-1 between the mean spectra
  over frequency (in cycles/frame) plus their total variation, and the log ratio of the mean
  frame-difference energy (how much motion there is at all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidgan.errors import VidganError

TOY_COLUMNS = (0.25, 0.5, 0.75)  # object columns as a fraction of the width (16, 32, 48 of 64)
TOY_SPEEDS = (2, 4, 8)
TOY_SCALE = 64  # speeds are reported in pixels per frame of a 64x64 video
FAST_SPEED = 6.0


def wasserstein1(
    u: np.ndarray, v: np.ndarray, u_w: np.ndarray | None = None, v_w: np.ndarray | None = None
) -> float:
    """Wasserstein-1 between two weighted 1-D samples: the area between their CDFs."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    u_w = np.ones_like(u) if u_w is None else np.asarray(u_w, np.float64)
    v_w = np.ones_like(v) if v_w is None else np.asarray(v_w, np.float64)
    grid = np.sort(np.concatenate([u, v]))

    def cdf(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        order = np.argsort(x)
        cum = np.concatenate([[0.0], np.cumsum(w[order])])
        return cum[np.searchsorted(x[order], grid[:-1], side="right")] / w.sum()

    cdf_u, cdf_v = cdf(u, u_w), cdf(v, v_w)
    return float(np.sum(np.abs(cdf_u - cdf_v) * np.diff(grid)))


# --- toy-set object tracking -----------------------------------------------------------------
def track_toy_objects(
    video_u8: Tensor, *, threshold: int = 40, band: float = 4.0 / 64
) -> np.ndarray:
    """Vertical centroid per object and frame, `[B, 3, T]` in 64-px units (NaN when not seen).

    `video_u8` is uint8 `[B, 3, T, H, W]`; an object pixel is any channel above `threshold`
    (toy colours are >= 100 on black), inside a band of half-width `band * W` around its column.
    """
    if video_u8.ndim != 5:
        raise VidganError(
            f"toy tracking expects [B, 3, T, H, W] videos, got {list(video_u8.shape)}."
        )
    b, _, t, h, w = video_u8.shape
    mask = (video_u8.amax(dim=1) > threshold).float()  # (B, T, H, W)
    rows = (torch.arange(h, dtype=torch.float32) + 0.5) * (TOY_SCALE / h)  # pixel centres
    out = np.full((b, len(TOY_COLUMNS), t), np.nan)
    half = max(1, round(band * w))
    for j, frac in enumerate(TOY_COLUMNS):
        x = round(frac * w)
        col = mask[..., max(0, x - half) : x + half + 1].sum(dim=-1)  # (B, T, H)
        weight = col.sum(dim=-1)  # (B, T)
        centroid = (col * rows).sum(dim=-1) / weight.clamp_min(1e-9)
        out[:, j] = torch.where(weight > 0, centroid, torch.nan).numpy()
    return out


def toy_speeds(video_u8: Tensor, *, stride: int = 1, **track_kw: Any) -> np.ndarray:
    """Per-object speed estimate `[B, 3]` (px/frame at 64 px): median |dy| / stride over frames.

    NaN for an object not seen in at least two consecutive frames.
    """
    ys = track_toy_objects(video_u8, **track_kw)
    dy = np.abs(np.diff(ys, axis=-1)) / stride  # (B, 3, T-1)
    with np.errstate(all="ignore"):
        valid = np.isfinite(dy).sum(axis=-1) > 0
        speed = np.where(
            valid, np.nanmedian(np.where(np.isfinite(dy), dy, np.nan), axis=-1), np.nan
        )
    return speed


def speed_histogram(speeds: np.ndarray) -> dict[str, float]:
    """Share of objects whose speed is nearest to each class (0 = static; 'other' if > 12)."""
    s = np.asarray(speeds, np.float64).reshape(-1)
    centres = np.array((0.0, *TOY_SPEEDS))
    labels = ["static", *[str(v) for v in TOY_SPEEDS]]
    counts = dict.fromkeys([*labels, "other", "lost"], 0.0)
    for v in s:
        if not np.isfinite(v):
            counts["lost"] += 1
        elif v > 12:
            counts["other"] += 1
        else:
            counts[labels[int(np.argmin(np.abs(centres - v)))]] += 1
    total = max(len(s), 1)
    return {k: c / total for k, c in counts.items()}


def speed_distance(real: np.ndarray, fake: np.ndarray) -> dict[str, Any]:
    """Distances between per-object speed samples of two video sets."""
    r = np.asarray(real, np.float64).reshape(-1)
    f = np.asarray(fake, np.float64).reshape(-1)
    hr, hf = speed_histogram(r), speed_histogram(f)
    r_ok, f_ok = r[np.isfinite(r)], f[np.isfinite(f)]
    w1 = wasserstein1(r_ok, f_ok) if len(r_ok) and len(f_ok) else float("inf")
    fast_r = float(np.mean(r_ok >= FAST_SPEED)) if len(r_ok) else 0.0
    fast_f = float(np.mean(f_ok >= FAST_SPEED)) if len(f_ok) else 0.0
    return {
        "value": w1,
        "wasserstein1": w1,
        "tv_classes": 0.5 * sum(abs(hr[k] - hf[k]) for k in hr),
        "fast_share_real": fast_r,
        "fast_share_fake": fast_f,
        "fast_share_diff": fast_f - fast_r,
        "hist_real": hr,
        "hist_fake": hf,
    }


# --- temporal spectrum ----------------------------------------------------------------------
def temporal_spectrum(video_u8: Tensor, *, size: int = 32) -> np.ndarray:
    """Per-clip distribution of frame-difference energy over temporal frequency, `[B, F + 1]`.

    Columns 0..F-1 hold the normalised power of rfft bins k = 1..F, F = (T-1)//2 (DC excluded),
    at about k / (2F) cycles per frame (exact for even T-1); the last column holds the clip's
    mean frame-difference energy (per pixel, luma in [0, 1]^2), so amounts of motion compare too.
    """
    _, _, t, h, w = video_u8.shape
    if t < 3:
        raise VidganError(f"the temporal spectrum needs clips of at least 3 frames, got {t}.")
    luma_w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)
    y = (video_u8.float() / 255.0 * luma_w).sum(dim=1)  # (B, T, H, W)
    if (h, w) != (size, size):
        y = F.adaptive_avg_pool2d(y, (min(size, h), min(size, w)))
    d = y[:, 1:] - y[:, :-1]  # (B, T-1, h, w) frame differences
    d = d - d.mean(dim=1, keepdim=True)
    power = torch.fft.rfft(d.double(), dim=1).abs().pow(2).sum(dim=(2, 3))  # (B, F_all)
    power = power[:, 1:]  # drop DC
    total = power.sum(dim=1, keepdim=True)
    spectrum = torch.where(total > 0, power / total.clamp_min(1e-30), 1.0 / power.shape[1])
    energy = (y[:, 1:] - y[:, :-1]).double().pow(2).mean(dim=(1, 2, 3))
    return torch.cat([spectrum, energy[:, None]], dim=1).numpy()


def spectrum_distance(real: np.ndarray, fake: np.ndarray) -> dict[str, Any]:
    """Distances between the mean temporal spectra of two clip sets (same clip length)."""
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if r.shape[1] != f.shape[1]:
        raise VidganError("real and fake temporal spectra come from clips of different lengths.")
    pr, pf = r[:, :-1].mean(axis=0), f[:, :-1].mean(axis=0)
    n_freq = pr.shape[0]
    freqs = np.arange(1, n_freq + 1) / (2.0 * n_freq)  # cycles per frame, up to Nyquist 0.5
    w1 = wasserstein1(freqs, freqs, pr, pf)
    er, ef = float(r[:, -1].mean()), float(f[:, -1].mean())
    return {
        "value": w1,
        "wasserstein1_cycles_per_frame": w1,
        "tv": float(0.5 * np.abs(pr - pf).sum()),
        "mean_frequency_real": float((freqs * pr).sum()),
        "mean_frequency_fake": float((freqs * pf).sum()),
        "log_energy_ratio": float(np.log((ef + 1e-12) / (er + 1e-12))),
        "spectrum_real": pr.tolist(),
        "spectrum_fake": pf.tolist(),
    }
