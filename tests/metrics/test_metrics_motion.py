"""Network-free motion metrics: toy tracking vs ground truth, reaction to temporal shuffling."""

from __future__ import annotations

import numpy as np
import torch

from vidgan.data import toy
from vidgan.metrics.motion import (
    spectrum_distance,
    speed_distance,
    speed_histogram,
    temporal_spectrum,
    toy_speeds,
    track_toy_objects,
)


def _toy_set(n: int, seed: int, frames: int = 16) -> tuple[torch.Tensor, list[dict]]:
    videos, labels = [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        v, lab = toy.make_toy_video(rng, size=64, frames=frames)
        videos.append(torch.from_numpy(v).permute(3, 0, 1, 2))  # (3, T, H, W)
        labels.append(lab)
    return torch.stack(videos), labels


def _shuffle_time(clips: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([c[:, torch.randperm(c.shape[1], generator=g)] for c in clips])


def test_tracker_recovers_ground_truth_speeds_and_rows():
    clips, labels = _toy_set(40, seed=0, frames=16)
    est = toy_speeds(clips)
    truth = np.array([[o["speed"] for o in lab["objects"]] for lab in labels], dtype=float)
    assert np.mean(np.abs(est - truth) < 0.5) >= 0.97
    ys = track_toy_objects(clips)
    true_y = np.array([[o["y"] for o in lab["objects"]] for lab in labels], dtype=float)
    err = ys - true_y  # constant offset per shape (triangle centroid), never more than 2 px
    assert np.nanmax(np.abs(err)) < 2.0
    hist = speed_histogram(est)
    true_hist = speed_histogram(truth)
    assert all(abs(hist[k] - true_hist[k]) < 0.05 for k in true_hist)


def test_tracker_scales_with_video_size_and_stride():
    clips, labels = _toy_set(10, seed=1, frames=32)
    truth = np.array([[o["speed"] for o in lab["objects"]] for lab in labels], dtype=float)
    # stride 2: every other frame, divided back by the stride
    est2 = toy_speeds(clips[:, :, ::2], stride=2)
    assert np.mean(np.abs(est2 - truth) < 1.0) >= 0.9
    # 128 px upscaled copy: speeds still in 64-px units
    big = clips.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)
    np.testing.assert_allclose(toy_speeds(big), toy_speeds(clips), atol=0.3)


def _gratings(n: int, seed: int, frames: int = 16, size: int = 32) -> torch.Tensor:
    """Drifting sine gratings with random orientation, period and slow speed: smooth motion."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    clips = []
    for _ in range(n):
        theta, period = rng.uniform(0, np.pi), rng.uniform(8, 24)
        speed, phase = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
        u = xx * np.cos(theta) + yy * np.sin(theta)
        t = np.arange(frames)[:, None, None]
        lum = 128 + 100 * np.sin(2 * np.pi * (u[None] - speed * t) / period + phase)
        clips.append(np.broadcast_to(lum[None], (3, frames, size, size)))
    return torch.from_numpy(np.stack(clips)).round().to(torch.uint8)


def test_motion_metrics_react_strongly_to_temporal_shuffling():
    a, _ = _toy_set(30, seed=2)
    b, _ = _toy_set(30, seed=3)
    shuffled = _shuffle_time(b, 0)
    sa, sb, ss = toy_speeds(a), toy_speeds(b), toy_speeds(shuffled)
    base, corrupt = speed_distance(sa, sb), speed_distance(sa, ss)
    assert corrupt["value"] > 10 * max(base["value"], 0.1)
    assert corrupt["tv_classes"] > 0.4
    # the spectrum on the toy set (broadband already: objects pass pixels as pulses)
    pa, pb, ps = temporal_spectrum(a), temporal_spectrum(b), temporal_spectrum(shuffled)
    assert spectrum_distance(pa, ps)["value"] > 3 * spectrum_distance(pa, pb)["value"]
    assert spectrum_distance(pa, ps)["log_energy_ratio"] > 0.3
    # and on smooth motion, where shuffling whitens a low-frequency spectrum
    ga, gb = _gratings(24, 0), _gratings(24, 1)
    qa, qb, qs = (
        temporal_spectrum(ga),
        temporal_spectrum(gb),
        temporal_spectrum(_shuffle_time(gb, 1)),
    )
    base_s, corrupt_s = spectrum_distance(qa, qb), spectrum_distance(qa, qs)
    assert corrupt_s["value"] > 10 * base_s["value"]
    assert corrupt_s["mean_frequency_fake"] > corrupt_s["mean_frequency_real"] + 0.1
    assert corrupt_s["log_energy_ratio"] > 1.0


def test_spectrum_peaks_at_a_known_flicker_frequency():
    t = 17  # 16 differences -> bins k = 1..8 at k/16 cycles per frame
    k = 3
    phase = 2 * np.pi * k * np.arange(t) / (t - 1)
    level = 128 + 100 * np.sin(phase)
    clip = torch.from_numpy(np.broadcast_to(level[None, :, None, None], (3, t, 8, 8)).copy())
    spec = temporal_spectrum(clip.round().to(torch.uint8)[None])
    dist = spec[0, :-1]
    assert dist.shape == (8,)
    assert int(np.argmax(dist)) == k - 1 and dist[k - 1] > 0.9
    assert spec[0, -1] > 0  # mean frame-difference energy
    # a static clip has no motion energy
    still = temporal_spectrum(torch.full((1, 3, t, 8, 8), 77, dtype=torch.uint8))
    assert still[0, -1] == 0.0
