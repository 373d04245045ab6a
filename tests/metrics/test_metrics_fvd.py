"""Metric protocols, clip sampling, the real-feature cache and `vidgan evaluate`, with tiny
detectors (the real I3D runs only in the parity test)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidgan.errors import ConfigError
from vidgan.metrics import cache as mcache
from vidgan.metrics.detectors import Detector
from vidgan.metrics.frechet import FeatureStats, polynomial_mmd, stats_distance
from vidgan.metrics.fvd import (
    METRICS,
    ClipProtocol,
    DataRef,
    clip_plan,
    compute_metric,
    evaluate_generator,
)
from vidgan.metrics.i3d import center_crop_resize
from vidgan.models.base import Latents


class ArrayDataset:
    """In-memory videos with the dataset interface the metrics use."""

    def __init__(self, videos: list[np.ndarray]) -> None:
        self.videos = videos  # each uint8 [T, H, W, 3]

    def __len__(self) -> int:
        return len(self.videos)

    def num_frames(self, i: int) -> int:
        return self.videos[i].shape[0]

    def read_frames(self, i: int, indices) -> torch.Tensor:
        return torch.from_numpy(self.videos[i][np.asarray(indices)]).permute(0, 3, 1, 2)


class TinyDetector(Detector):
    """Per-channel means and temporal differences: 6-d features; records what it saw."""

    name = "tiny"

    def __init__(self) -> None:
        super().__init__(batch_size=4)
        self.seen: list[torch.Tensor] = []

    def describe(self):
        return {"detector": self.name}

    def features(self, video_u8):
        self.seen.append(video_u8.clone())
        x = video_u8.float() / 255
        mean = x.mean(dim=(2, 3, 4))
        motion = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(2, 3, 4))
        return torch.cat([mean, motion], dim=1)


def _videos(n: int, seed: int, frames: int = 12, shift: float = 0.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.integers(0, 200, size=(1, 4, 4, 3)) + shift
        drift = rng.integers(0, 4) * np.arange(frames)[:, None, None, None]
        out.append(np.clip(base + drift, 0, 255).astype(np.uint8).repeat(1, axis=0))
    return out


def _ref(videos, fp: str | None = "fp") -> DataRef:
    return DataRef(ArrayDataset(videos), "mem", fp)


SMALL = {"num_real": 8, "num_fake": 8, "frames": 4}


def test_registry_names_state_their_protocols():
    assert {"fvd2048_16f", "fvd2048_128f", "fvd2048_128f_subsample8f", "fvd_digan"} <= set(
        METRICS.names()
    )
    sub = METRICS.get("fvd2048_128f_subsample8f").protocol
    assert (sub.frames, sub.stride, sub.span, sub.num_real) == (16, 8, 121, 2048)
    assert METRICS.get("fvd2048_128f").protocol.frames == 128
    digan = METRICS.get("fvd_digan")
    assert digan.protocol.trials == 10 and digan.extractor_options["preprocess"] == "center_crop"
    assert METRICS.get("fvd2048_16f").covariance == "biased"
    assert METRICS.get("vfid5000_16f_resnext").covariance == "unbiased"
    with pytest.raises(ConfigError, match="did you mean 'fvd2048_16f'"):
        METRICS.get("fvd2048_16")
    with pytest.raises(ConfigError, match="real_offset"):
        ClipProtocol(real_offset="middle")


def test_clip_plan_is_a_seeded_random_subset_with_valid_offsets():
    p = ClipProtocol(num_real=10, frames=4, stride=3)
    lengths = [20 + i for i in range(100)]

    def plan(protocol, subset="random", count=10, offset="random"):
        return clip_plan(
            100,
            lambda i: lengths[i],
            count,
            protocol,
            offset=offset,
            subset=subset,
            trial=0,
            role=1,
        )

    a, b = plan(p), plan(p)
    vids = [v for v, _ in a]
    assert vids == [v for v, _ in b]  # deterministic
    assert vids != list(range(10)) and len(set(vids)) == 10  # not first-in-sorted-order
    assert [v for v, _ in plan(p, subset="sorted")] == list(range(10))
    other = plan(ClipProtocol(num_real=10, frames=4, stride=3, seed=1))
    assert [v for v, _ in other] != vids
    for v, idx in a:
        assert np.all(np.diff(idx) == 3) and idx[0] >= 0 and idx[-1] < lengths[v]
    assert len({int(idx[0]) for _, idx in a}) > 1  # random offsets
    assert all(idx[0] == 0 for _, idx in plan(p, offset="start"))
    # more clips than videos: every video used, twice at most, with fresh offsets
    many = plan(p, count=150)
    counts = np.bincount([v for v, _ in many], minlength=100)
    assert counts.min() == 1 and counts.max() == 2
    no_repeat = ClipProtocol(num_real=10, frames=4, real_repeat=False)
    assert len(plan(no_repeat, count=150)) == 100


def test_fvd_equals_frechet_of_the_planned_clips_and_records_options():
    det = TinyDetector()
    real, fake = _ref(_videos(10, 0), "fp-real"), _ref(_videos(10, 1, shift=30), "fp-fake")
    res = compute_metric(
        "fvd2048_16f", real=real, fake=fake, overrides=SMALL, extractor=det, progress=False
    )
    p = ClipProtocol(num_real=8, num_fake=8, frames=4)
    plan_r = clip_plan(
        10, real.dataset.num_frames, 8, p, offset="random", subset="random", trial=0, role=1
    )
    plan_f = clip_plan(
        10, fake.dataset.num_frames, 8, p, offset="start", subset="random", trial=0, role=2
    )

    def feats(ds, plan):
        clips = torch.stack([ds.read_frames(v, i).permute(1, 0, 2, 3) for v, i in plan])
        return TinyDetector().features(clips).double().numpy()

    fr, ff = feats(real.dataset, plan_r), feats(fake.dataset, plan_f)
    expected = stats_distance(FeatureStats.from_features(fr), FeatureStats.from_features(ff))
    assert res["value"] == pytest.approx(expected, rel=1e-9)
    assert res["value"] > 0.01
    opts = res["options"]
    assert opts["protocol"]["num_real"] == 8 and opts["protocol_modified"] is True
    assert opts["covariance"] == "biased" and opts["detector"] == {"detector": "tiny"}
    assert res["real"]["fingerprint"] == "fp-real" and res["fake"]["fingerprint"] == "fp-fake"
    assert res["vidgan_version"]
    unbiased = compute_metric(
        "fvd2048_16f",
        real=real,
        fake=fake,
        overrides=SMALL,
        extractor=TinyDetector(),
        covariance="unbiased",
        progress=False,
    )
    exp_u = stats_distance(
        FeatureStats.from_features(fr, "unbiased"), FeatureStats.from_features(ff, "unbiased")
    )
    assert unbiased["value"] == pytest.approx(exp_u, rel=1e-9)
    assert unbiased["options"]["covariance"] == "unbiased"
    cropped = compute_metric(
        "fvd2048_16f",
        real=real,
        fake=fake,
        extractor=TinyDetector(),
        extractor_options={"preprocess": "center_crop"},
        progress=False,
        overrides={"num_real": 8, "num_fake": 8, "frames": 4},
    )
    assert cropped["options"]["protocol_modified"] is True


def test_real_features_cached_under_data_fingerprint(tmp_path):
    vids = _videos(10, 0)
    fake = _ref(_videos(10, 1), "fp-fake")

    def run(fp, **over):
        det = TinyDetector()
        res = compute_metric(
            "fvd2048_16f",
            real=_ref(vids, fp),
            fake=fake,
            overrides={**SMALL, **over},
            extractor=det,
            cache_dir=tmp_path,
            progress=False,
        )
        return res["value"], sum(len(s) for s in det.seen)

    v1, n1 = run("content-1")
    assert n1 == 16  # real + fake clips
    v2, n2 = run("content-1")
    assert n2 == 8 and v2 == pytest.approx(v1, rel=1e-12)  # real features from the cache
    _, n3 = run("content-2")  # same options, other data: never reused
    assert n3 == 16
    _, n4 = run("content-1", seed=5)  # other options
    assert n4 == 16
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and all(f.endswith(".npz") and not f.startswith(".") for f in files)
    _, n5 = run(None)  # no fingerprint: no cache use
    assert n5 == 16 and len(list(tmp_path.iterdir())) == 3


def test_fingerprint_follows_content(tmp_path):
    root = tmp_path / "data"
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "0.png").write_bytes(b"abc")
    (root / "v1" / "1.png").write_bytes(b"x" * 300_000)
    fp = mcache.fingerprint_path(root)
    assert fp == mcache.fingerprint_path(root)
    (root / "v1" / "0.png").write_bytes(b"abd")
    assert mcache.fingerprint_path(root) != fp
    (root / "v1" / "0.png").write_bytes(b"abc")
    assert mcache.fingerprint_path(root) == fp
    (root / "v1" / "1.png").rename(root / "v1" / "2.png")
    assert mcache.fingerprint_path(root) != fp


class FrameIndexGenerator:
    """Generator contract stub: every pixel of frame t has value t (after quantisation)."""

    continuous_time = True
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.n_frames_asked: list[int] = []

    def check_length(self, n: int) -> None:
        pass

    def sample_latents(self, batch, *, n_frames=16, generator=None, labels=None):
        self.n_frames_asked.append(n_frames)
        z = torch.randn(batch, 2, generator=generator)
        return Latents(content=z, motion=torch.zeros(batch, 2))

    def frame_times(self, n_frames):
        return torch.arange(n_frames, dtype=torch.float32)

    def generate(self, latents, t):
        b = latents.batch_size
        # value t/127.5 - 1 -> uint8 t; the content latent adds a tiny brightness change in G
        v = t.view(1, 1, -1, 1, 1) + 0.2 * latents.content[:, :1].view(b, 1, 1, 1, 1).tanh()
        return (v / 127.5 - 1.0).expand(b, 3, -1, 4, 4)


def test_generator_fakes_follow_the_subsample_protocol():
    real = _ref([np.zeros((130, 4, 4, 3), np.uint8) + i for i in range(4)], "fp")
    det, G = TinyDetector(), FrameIndexGenerator()
    res = evaluate_generator(
        G,
        "fvd2048_128f_subsample8f",
        real=real,
        overrides={"num_real": 4, "num_fake": 5},
        extractor=det,
        progress=False,
    )
    fake_clips = torch.cat(det.seen[-2:])  # batches of 4 + 1
    assert fake_clips.shape == (5, 3, 16, 4, 4)
    assert fake_clips[:, 0, :, 0, 0].tolist() == [list(range(0, 128, 8))] * 5
    assert G.n_frames_asked == [121, 121]
    assert res["fake"] == {"generator": "FrameIndexGenerator"}
    again = evaluate_generator(
        G,
        "fvd2048_128f_subsample8f",
        real=real,
        overrides={"num_real": 4, "num_fake": 5},
        extractor=TinyDetector(),
        progress=False,
    )
    assert again["value"] == res["value"]  # seeded latents


def test_kvd_reuses_fvd_features_and_trials_report_spread():
    det = TinyDetector()
    real, fake = _ref(_videos(12, 0)), _ref(_videos(12, 1, shift=20), "fp2")
    memo: dict = {}
    kw = dict(real=real, fake=fake, overrides=SMALL, extractor=det, progress=False, memo=memo)
    fvd = compute_metric("fvd2048_16f", **kw)
    n = len(det.seen)
    kvd = compute_metric("kvd2048_16f", **kw)
    assert len(det.seen) == n  # no new extraction
    assert fvd["value"] > 0 and np.isfinite(kvd["value"])
    feats = list(memo.values())
    assert kvd["value"] == pytest.approx(polynomial_mmd(feats[0], feats[1]), rel=1e-9)
    res = compute_metric(
        "fvd2048_16f",
        real=real,
        fake=fake,
        overrides={**SMALL, "trials": 3},
        extractor=TinyDetector(),
        progress=False,
    )
    assert len(res["trials"]) == 3 and len(set(res["trials"])) == 3
    assert res["std"] == pytest.approx(float(np.std(res["trials"])))
    assert res["value"] == pytest.approx(float(np.mean(res["trials"])))


def test_center_crop_keeps_the_middle():
    x = torch.arange(200.0).view(1, 1, 1, 1, 200).expand(1, 3, 2, 100, 200)
    out = center_crop_resize(x, 50)
    assert out.shape == (1, 3, 2, 50, 50)
    assert out.mean().item() == pytest.approx(99.5, abs=1.0)
    assert out[..., 0].max().item() > 45 and out[..., -1].min().item() < 155


def _write_toy(path, seed):
    from vidgan.data import toy

    toy.write_toy_dataset(path, n_videos=6, frames=16, seed=seed)


@pytest.mark.slow
def test_evaluate_command_appends_json_and_uses_the_cache(tmp_path, capsys):
    from vidgan.cli import main

    _write_toy(tmp_path / "real", 0)
    _write_toy(tmp_path / "fake", 1)
    out = tmp_path / "r.jsonl"
    argv = [
        "evaluate",
        "--metric",
        "motion_speed_toy,motion_spectrum_16f",
        "--real",
        str(tmp_path / "real"),
        "--fake",
        str(tmp_path / "fake"),
        "--num-real",
        "6",
        "--num-fake",
        "6",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    assert main(argv) == 0
    lines = [json.loads(s) for s in out.read_text().splitlines()]
    assert [r["metric"] for r in lines] == ["motion_speed_toy", "motion_spectrum_16f"]
    speed = lines[0]
    assert speed["real"]["fingerprint"] == mcache.fingerprint_path(tmp_path / "real")
    assert speed["options"]["protocol"]["num_real"] == 6 and speed["value"] >= 0
    assert speed["labels_check"]["tracker_accuracy"] >= 0.9  # against labels.json
    assert sum(speed["labels_check"]["hist_labels"].values()) == pytest.approx(1.0)
    assert len(list((tmp_path / "cache").iterdir())) == 2
    assert main(argv) == 0
    again = [json.loads(s) for s in out.read_text().splitlines()][2:]
    assert [r["value"] for r in again] == [r["value"] for r in lines]
    assert "motion_speed_toy *" in capsys.readouterr().out
    assert main(["evaluate", "--metric", "fvd2048_16", "--real", "x", "--fake", "y"]) == 2
    assert "did you mean" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_command_generates_fakes_from_a_checkpoint(tmp_path, capsys):
    from vidgan.checkpoint import save_model_file
    from vidgan.cli import main
    from vidgan.config import from_dict, load_preset
    from vidgan.models.registry import get_model, load_models

    load_models()
    spec = get_model("fmr")
    cfg = from_dict(spec.config_cls, load_preset("fmr-tiny")["model"])
    torch.manual_seed(0)
    G = spec.build_generator(cfg)
    ckpt = save_model_file(
        tmp_path / "g.safetensors", model_name="fmr", config=cfg, generator=G.state_dict()
    )
    _write_toy(tmp_path / "real", 0)
    argv = [
        "evaluate",
        "--metric",
        "motion_spectrum_16f",
        "--real",
        str(tmp_path / "real"),
        "--ckpt",
        str(ckpt),
        "--num-real",
        "4",
        "--num-fake",
        "4",
        "--no-cache",
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["fake"]["ckpt"] == str(ckpt) and res["fake"]["generator"] == "FMRGenerator"
    assert res["value"] > 0
    assert main(argv) == 0  # seeded: the same number again
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["value"] == res["value"]


class ParamGenerator(torch.nn.Module):
    """A generator with one weight: brightness = gain * content."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(40.0))

    def sample_latents(self, batch, *, n_frames=16, generator=None, labels=None):
        return Latents(
            content=torch.rand(batch, 1, generator=generator), motion=torch.zeros(batch, 1)
        )

    def frame_times(self, n_frames):
        return torch.arange(n_frames, dtype=torch.float32)

    def generate(self, latents, t):
        v = 100 + self.gain * latents.content.view(-1, 1, 1, 1, 1) + t.view(1, 1, -1, 1, 1)
        return (v / 127.5 - 1).expand(-1, 3, -1, 4, 4)


def test_memo_never_serves_features_of_older_weights():
    real = _ref(_videos(6, 0), "fp")
    G, memo = ParamGenerator(), {}
    kw = dict(real=real, overrides=SMALL, progress=False, memo=memo)
    det = TinyDetector()
    first = evaluate_generator(G, "fvd2048_16f", extractor=det, **kw)
    n = len(det.seen)
    evaluate_generator(G, "kvd2048_16f", extractor=det, **kw)
    assert len(det.seen) == n  # same weights: reused
    with torch.no_grad():
        G.gain.fill_(5.0)
    second = evaluate_generator(G, "fvd2048_16f", extractor=det, **kw)
    assert len(det.seen) > n and second["value"] != first["value"]


@pytest.mark.slow
def test_fake_sets_from_folders_zips_and_mp4_trees_agree(tmp_path, capsys):
    """The same fake videos as frame folders, a zip and an mp4 tree: same metric value (mp4
    within codec error), through `open_data` and `vidgan evaluate --fake`."""
    from vidgan.cli import main
    from vidgan.data import toy
    from vidgan.io.video import write_video
    from vidgan.metrics import open_data

    toy.write_toy_dataset(tmp_path / "real", n_videos=6, frames=16, seed=0)
    toy.write_toy_dataset(tmp_path / "fake", n_videos=6, frames=16, seed=1)
    toy.write_toy_dataset(tmp_path / "fake.zip", n_videos=6, frames=16, seed=1)
    ds = open_data(tmp_path / "fake", METRICS.get("motion_spectrum_16f").protocol).dataset
    for i in range(len(ds)):
        frames = ds.read_frames(i, np.arange(16)).permute(0, 2, 3, 1).numpy()
        write_video(tmp_path / "mp4" / f"v{i}.mp4", frames, crf=10)
    protocol = METRICS.get("motion_spectrum_16f").protocol
    real = open_data(tmp_path / "real", protocol)
    values = {}
    for kind in ("fake", "fake.zip", "mp4"):
        res = compute_metric(
            "motion_spectrum_16f",
            real=real,
            fake=open_data(tmp_path / kind, protocol),
            overrides={"num_real": 6, "num_fake": 6},
            progress=False,
        )
        values[kind] = res["value"]
    assert values["fake.zip"] == values["fake"]
    assert values["mp4"] == pytest.approx(values["fake"], rel=0.1)
    argv = ["evaluate", "--metric", "motion_spectrum_16f", "--real", str(tmp_path / "real")]
    argv += ["--fake", str(tmp_path / "mp4"), "--num-real", "6", "--num-fake", "6"]
    assert main([*argv, "--no-cache", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["value"] == pytest.approx(values["mp4"], rel=1e-12)


def test_prefetch_keeps_order_raises_errors_and_stops_early():
    from vidgan.metrics.fvd import prefetch

    assert list(prefetch(iter(range(7)), depth=2)) == list(range(7))

    def broken():
        yield 1
        raise ValueError("bad frame")

    got = []
    with pytest.raises(ValueError, match="bad frame"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1]
    produced = []

    def counting():
        for i in range(1000):
            produced.append(i)
            yield i

    it = prefetch(counting(), depth=1)
    assert next(it) == 0
    it.close()  # the consumer stops: the producer stops too instead of running ahead
    import time

    time.sleep(0.3)
    assert len(produced) < 10


def test_evaluate_command_keeps_the_heap_on_cpu(tmp_path, monkeypatch, capsys):
    """Detector batches remake the same activations: on the CPU the command keeps freed memory
    in the C heap (vidgan.heap) before any data is read."""
    import vidgan.heap
    from vidgan.cli import main

    calls: list[bool] = []
    monkeypatch.setattr(vidgan.heap, "keep_freed_memory", lambda: calls.append(True) or True)
    missing = str(tmp_path / "missing")
    argv = ["evaluate", "--metric", "motion_spectrum_16f", "--real", missing, "--fake", missing]
    assert main([*argv, "--device", "cpu", "--no-progress"]) == 2  # no such folder
    assert "missing" in capsys.readouterr().err
    assert calls == [True]
