"""3D ResNeXt-101 (Hara, Kataoka & Satoh, CVPR 2018, arXiv 1711.09577): G3AN's video-FID network.

G3AN (Wang et al., CVPR 2020) reports FID on the 2048-d global average-pooled features of this
Kinetics-400 network for 16-frame 112x112 clips with raw 0..255 pixels minus the mean
(114.7748, 107.7354, 99.4750). Architecture as in Hara's `models/resnext.py`: conv1 7x7x7 stride
(1, 2, 2), max-pool 3 stride 2, ResNeXt bottlenecks [3, 4, 23, 3], cardinality 32, widths
128..1024 (x2 out), shortcut type B (1x1x1 conv + BN when the shape changes).

No package ships the weights: the user passes `resnext-101-kinetics.pth` from Hara et al.'s
release (github.com/kenshohara/3D-ResNets-PyTorch, "resnext-101-kinetics.pth", the 2017 set).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import CheckpointError, VidganError

MEAN_RGB = (114.7748, 107.7354, 99.4750)
RESNEXT_HINT = (
    "G3AN's video FID needs `resnext-101-kinetics.pth` from Hara et al.'s 3D-ResNets-PyTorch "
    "release (github.com/kenshohara/3D-ResNets-PyTorch, pretrained models, Kinetics ResNeXt-101); "
    "no package ships it, pass it with --detector-path"
)


class ResNeXtBottleneck(nn.Module):
    """1x1x1 -> grouped 3x3x3 (cardinality 32) -> 1x1x1, residual (Hara et al. Sec. 3)."""

    expansion = 2

    def __init__(
        self, *, in_planes: int, planes: int, cardinality: int, stride: int, downsample: bool
    ) -> None:
        super().__init__()
        mid = cardinality * (planes // 32)
        out = planes * self.expansion
        self.conv1 = nn.Conv3d(in_planes, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, 3, stride, 1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, out, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out)
        self.downsample = (
            nn.Sequential(nn.Conv3d(in_planes, out, 1, stride, bias=False), nn.BatchNorm3d(out))
            if downsample
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.bn3(self.conv3(y))
        return F.relu(y + residual, inplace=True)


class ResNeXt3D(nn.Module):
    """3D ResNeXt; `forward` returns the global average-pooled features `[B, 2048]`."""

    def __init__(
        self,
        *,
        layers: tuple[int, ...] = (3, 4, 23, 3),
        cardinality: int = 32,
        widths: tuple[int, ...] = (128, 256, 512, 1024),
        num_classes: int = 400,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, 7, (1, 2, 2), 3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        in_planes = 64
        for i, (n, planes) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                down = j == 0 and (stride != 1 or in_planes != planes * 2)
                blocks.append(
                    ResNeXtBottleneck(
                        in_planes=in_planes,
                        planes=planes,
                        cardinality=cardinality,
                        stride=stride,
                        downsample=down,
                    )
                )
                in_planes = planes * ResNeXtBottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_layers = len(layers)
        self.feature_dim = in_planes
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = F.max_pool3d(x, 3, 2, 1)
        for i in range(self.num_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        # Hara's AvgPool3d((ceil(T/16), ceil(H/32), ceil(W/32))) covers the whole map at
        # the 16x112x112 input; the global mean is the same there and defined for any size.
        return x.mean(dim=(2, 3, 4))


def load_resnext101(path: str | os.PathLike[str] | None, **arch: Any) -> ResNeXt3D:
    """ResNeXt-101 from Hara's `resnext-101-kinetics.pth` (weights_only, `module.` stripped).

    `arch` overrides ResNeXt3D arguments (smaller nets in tests).
    """
    if path is None:
        raise VidganError(f"no ResNeXt-101 weights given: {RESNEXT_HINT}.")
    path = Path(path)
    if not path.is_file():
        raise VidganError(f"ResNeXt-101 weights file {path} not found: {RESNEXT_HINT}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} is not a loadable PyTorch weights file: {e}.") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else 400
    model = ResNeXt3D(num_classes=num_classes, **arch)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(
            f"{path} is not a ResNeXt-101 Kinetics state dict ({str(e).splitlines()[-1].strip()})."
        ) from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(
            f"{path} is not a ResNeXt-101 Kinetics state dict "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})."
        )
    return fold_batchnorm(model.eval().requires_grad_(False))


def _fold(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> nn.Conv3d:
    """Conv followed by eval-mode BN as one conv with bias (float64 arithmetic)."""
    scale = bn.weight.double() * torch.rsqrt(bn.running_var.double() + bn.eps)
    fused = nn.Conv3d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        groups=conv.groups,
        bias=True,
    )
    with torch.no_grad():
        fused.weight.copy_(conv.weight.double() * scale.view(-1, 1, 1, 1, 1))
        bias = conv.bias.double() if conv.bias is not None else 0.0
        fused.bias.copy_(bn.bias.double() + (bias - bn.running_mean.double()) * scale)
    return fused.requires_grad_(False)


@torch.no_grad()
def fold_batchnorm(model: ResNeXt3D) -> ResNeXt3D:
    """Fold every BatchNorm into its conv (inference only: about 1.5x faster on CPU)."""
    pairs = [(model, "conv1", "bn1")]
    for m in model.modules():
        if isinstance(m, ResNeXtBottleneck):
            pairs += [(m, "conv1", "bn1"), (m, "conv2", "bn2"), (m, "conv3", "bn3")]
            if m.downsample is not None:
                pairs.append((m.downsample, "0", "1"))
    for parent, conv, bn in pairs:
        setattr(parent, conv, _fold(getattr(parent, conv), getattr(parent, bn)))
        setattr(parent, bn, nn.Identity())
    return model.eval()


def resnext_input(video_u8: Tensor, size: int = 112) -> Tensor:
    """uint8 `[B, 3, T, H, W]` -> float 0..255 resized to `size`, minus the Kinetics mean."""
    from vidgan.metrics.i3d import resize_video

    x = resize_video(video_u8.float(), (size, size))
    mean = torch.tensor(MEAN_RGB, dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
    return x - mean
