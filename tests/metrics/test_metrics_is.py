"""Inception Score: the score itself against an independent computation, the C3D UCF-101 port
against explicit ops on the weights file, and `is_*` metrics with TorchScript classifiers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidgan.errors import CheckpointError, VidganError
from vidgan.metrics.c3d import C3DUCF101, CONVS, load_c3d_npz, load_classifier
from vidgan.metrics.detectors import ClassifierDetector
from vidgan.metrics.fvd import METRICS, DataRef, clip_plan, compute_metric, resolve_protocol
from vidgan.metrics.inception_score import inception_score


def _is_by_hand(logits: np.ndarray, splits: int, seed: int | None) -> tuple[float, float]:
    """IS written out row by row: KL(p || marginal) = sum p log(p / marginal)."""
    z = np.exp(np.asarray(logits, np.float64))
    p = z / z.sum(axis=1, keepdims=True)
    if seed is not None:
        order = np.arange(len(p))
        np.random.RandomState(seed).shuffle(order)
        p = p[order]
    n = len(p)
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0)
        kls = [float(np.sum(row * np.log(row / marginal))) for row in part]
        scores.append(np.exp(np.mean(kls)))
    return float(np.mean(scores)), float(np.std(scores))


@pytest.mark.parametrize("n,splits,seed", [(103, 10, 42), (40, 4, None), (57, 3, 7)])
def test_inception_score_matches_an_independent_computation(n, splits, seed):
    logits = np.random.default_rng(n).normal(scale=3.0, size=(n, 7))
    mean, std = inception_score(logits, splits=splits, shuffle_seed=seed)
    ref_mean, ref_std = _is_by_hand(logits, splits, seed)
    assert mean == pytest.approx(ref_mean, rel=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-9, abs=1e-12)
    assert std > 0  # the splits differ: the spread is really computed
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert inception_score(probs, splits=splits, from_logits=False, shuffle_seed=seed)[
        0
    ] == pytest.approx(mean, rel=1e-12)


def test_inception_score_known_cases():
    for k in (2, 5, 13):
        one_hot = np.eye(k)[np.arange(10 * k) % k] * 50.0  # confident, evenly spread logits
        assert inception_score(one_hot, splits=5, shuffle_seed=None)[0] == pytest.approx(k)
        uniform = np.full((30, k), 0.3)
        assert inception_score(uniform, splits=3)[0] == pytest.approx(1.0)


# --- the C3D port -------------------------------------------------------------------------------
def _tiny_c3d_npz(path, *, with_mean: bool = True, classes: int = 5, width: int = 2):
    rng = np.random.default_rng(0)
    arrays = {}
    cin = 3
    for name, _, _ in CONVS:
        arrays[f"{name}/W"] = rng.normal(scale=0.3, size=(width, cin, 3, 3, 3)).astype(np.float32)
        arrays[f"{name}/b"] = rng.normal(scale=0.1, size=width).astype(np.float32)
        cin = width
    hidden = 6
    for name, a, b in (
        ("fc6", width * 16, hidden),
        ("fc7", hidden, hidden),
        ("fc8", hidden, classes),
    ):
        arrays[f"{name}/W"] = rng.normal(scale=0.5, size=(b, a)).astype(np.float32)
        arrays[f"{name}/b"] = rng.normal(scale=0.1, size=b).astype(np.float32)
    mean = rng.uniform(80, 120, size=(3, 16, 128, 128))
    np.savez(path, **arrays)
    if with_mean:
        np.savez(path.with_name("mean2.npz"), mean=mean)
    return arrays, mean


def _c3d_by_hand(arrays, mean, video_u8: torch.Tensor) -> torch.Tensor:
    """TGAN-v2's C3DVersion1UCF101 forward written with explicit ops on the npz arrays."""
    t = {k: torch.from_numpy(v).double() for k, v in arrays.items()}
    x = video_u8.double() / 127.5 - 1
    x = torch.stack([x[:, 2], x[:, 1], x[:, 0]], dim=1) * 128  # pre: RGB -> BGR, x128
    b, c, n, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * n, c, h, w)
    frames = F.interpolate(frames, size=(112, 112), mode="bilinear", align_corners=True)
    x = frames.reshape(b, n, c, 112, 112).permute(0, 2, 1, 3, 4)
    x = x + torch.from_numpy(128 - mean[:, :, 8:120, 8:120])
    pools = {"conv1a": (1, 2, 2), "conv2a": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2)}
    for name, _, _ in CONVS:
        x = F.relu(F.conv3d(x, t[f"{name}/W"], t[f"{name}/b"], padding=1))
        if name in pools:
            x = F.max_pool3d(x, pools[name])
        elif name == "conv5b":  # 2x7x7 -> 1x4x4: chainer's cover_all pads the odd end
            x = F.max_pool3d(F.pad(x, (0, 1, 0, 1)), 2)
    x = F.relu(F.linear(x.flatten(1), t["fc6/W"], t["fc6/b"]))
    x = F.relu(F.linear(x, t["fc7/W"], t["fc7/b"]))
    return F.linear(x, t["fc8/W"], t["fc8/b"])


@pytest.mark.slow
def test_c3d_port_matches_explicit_ops_on_the_tgan2_file(tmp_path):
    arrays, mean = _tiny_c3d_npz(tmp_path / "conv3d_deepnetA_ucf.npz")
    model = load_c3d_npz(tmp_path / "conv3d_deepnetA_ucf.npz")
    assert isinstance(model, C3DUCF101) and model.fc8.out_features == 5
    video = torch.randint(0, 256, (2, 3, 16, 64, 80), dtype=torch.uint8)
    with torch.no_grad():
        got = model(model.prepare(video)).double()
    ref = _c3d_by_hand(arrays, mean, video)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert (got[0] - got[1]).abs().max() > 1e-3  # the two clips give different logits
    # the detector returns the softmax of those logits
    det = ClassifierDetector(path=tmp_path / "conv3d_deepnetA_ucf.npz")
    torch.testing.assert_close(det(video), torch.softmax(ref, 1), rtol=1e-4, atol=1e-5)


def test_c3d_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(VidganError, match=r"tgan2|stylegan-v"):
        load_classifier(tmp_path / "c3d_ucf101.pt")
    with pytest.raises(VidganError, match="no classifier file given"):
        load_classifier(None)
    _tiny_c3d_npz(tmp_path / "w.npz", with_mean=False)
    with pytest.raises(VidganError, match=r"mean2\.npz"):
        load_classifier(tmp_path / "w.npz")
    np.savez(tmp_path / "other.npz", mean=np.zeros((3, 16, 128, 128)), x=np.zeros(3))
    with pytest.raises(CheckpointError, match="not TGAN-v2's C3D file"):
        load_classifier(tmp_path / "other.npz")


# --- is_* metrics ---------------------------------------------------------------------------
class _TinyClassifier(torch.nn.Module):
    """Random-weight TorchScript classifier on uint8 clips -> logits (or probabilities)."""

    def __init__(self, classes: int, probs: bool) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, classes)
        self.probs = probs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x.float() / 255.0)).mean(dim=(2, 3, 4))
        out = self.fc(h) * 4.0
        return torch.softmax(out, 1) if self.probs else out


class _Videos:
    def __init__(self, n: int, frames: int = 6) -> None:
        rng = np.random.default_rng(3)
        self.videos = rng.integers(0, 256, size=(n, frames, 3, 8, 8), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.videos)

    def num_frames(self, i: int) -> int:
        return self.videos.shape[1]

    def read_frames(self, i: int, idx) -> torch.Tensor:
        return torch.from_numpy(self.videos[i][np.asarray(idx)])


@pytest.mark.parametrize("probs", [False, True])
def test_is_metric_equals_is_of_the_classifier_on_the_planned_clips(tmp_path, probs):
    torch.manual_seed(0)
    net = _TinyClassifier(6, probs).eval()
    path = tmp_path / "classifier.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    fake = _Videos(30)
    overrides = {"num_fake": 40, "frames": 4}
    res = compute_metric(
        "is_classifier_16f",
        real=None,
        fake=DataRef(fake, "mem", None),
        overrides=overrides,
        detector_path=path,
        progress=False,
    )
    # independent: the same clips (seeded plan), the network's logits, IS by hand
    protocol = resolve_protocol(METRICS.get("is_classifier_16f"), overrides)
    plan = clip_plan(
        len(fake), fake.num_frames, 40, protocol, offset="start", subset="random", trial=0, role=2
    )
    clips = torch.stack([fake.read_frames(v, idx).permute(1, 0, 2, 3) for v, idx in plan])
    with torch.no_grad():
        out = net(clips).double()
    logits = out.log().numpy() if probs else out.numpy()
    ref_mean, ref_std = _is_by_hand(logits, 10, 42)
    assert res["value"] == pytest.approx(ref_mean, rel=1e-6)
    assert res["details"]["split_std"] == pytest.approx(ref_std, rel=1e-5)
    assert 1.0 < res["value"] < 6.0
    assert res["real"] is None and res["options"]["protocol"]["num_fake"] == 40
    json.dumps(res)


def test_evaluate_is_without_real_data(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from vidgan.cli import main

    fake = tmp_path / "fake"
    rng = np.random.default_rng(0)
    for v in range(4):
        d = fake / f"v{v}"
        d.mkdir(parents=True)
        for f in range(4):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(d / f"{f}.png")
    torch.manual_seed(1)
    torch.jit.save(torch.jit.script(_TinyClassifier(3, False)), str(tmp_path / "c.pt"))
    args = ["evaluate", "--metric", "is_classifier_16f", "--fake", str(fake), "--frames", "4"]
    args += ["--num-fake", "10", "--detector-path", str(tmp_path / "c.pt"), "--no-progress"]
    assert main([*args, "--no-cache"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["metric"] == "is_classifier_16f" and 1.0 <= result["value"] <= 3.0
    assert "-/10" in out  # the table shows no real clips
    assert main(["evaluate", "--metric", "fvd2048_16f", "--fake", str(fake)]) == 2  # needs --real
