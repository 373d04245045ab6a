"""C3D fine-tuned on UCF-101 (Tran et al., ICCV 2015): the classifier of the video Inception Score.

TGAN (Saito et al., ICCV 2017), TGAN-v2 (Saito et al., IJCV 2020), DIGAN (Yu et al., ICLR 2022)
and StyleGAN-V (`isv2048_ucf`) score UCF-101 samples with this network, as TGAN-v2's chainer port
`C3DVersion1UCF101` (github:pfnet-research/tgan2, tgan2/models/c3d/c3d_ucf101.py) defines it:

- input: 16 RGB frames in [-1, 1]; channels flipped to BGR and scaled by 128; every frame resized
  to 112x112 (bilinear, chainer's `resize_images`, align_corners=True); plus (128 - mean), the
  mean clip (`mean2.npz`, [3, 16, 128, 128]) cropped to [8:120, 8:120];
- conv1a 64, pool (1, 2, 2); conv2a 128, pool 2; conv3a/b 256, pool 2; conv4a/b 512, pool 2;
  conv5a/b 512, pool 2 (3x3x3 convs, padding 1, ReLU; pools with chainer's cover_all, i.e.
  ceil mode); fc6 8192 -> 4096, fc7 4096, ReLU (dropout is off at eval); fc8 -> 101 logits.

No package ships the weights; users pass one of
- TGAN-v2's chainer file `conv3d_deepnetA_ucf.npz` (converted from the C3D authors'
  `c3d_ucf101_finetune_whole_iter_20000` caffemodel) with `mean2.npz` beside it (or a `mean`
  array inside), read with `allow_pickle=False`;
- StyleGAN-V's TorchScript `c3d_ucf101.pt`, or any TorchScript classifier: called with uint8
  clips `[B, 3, T, H, W]` as StyleGAN-V calls it, returning logits or probabilities.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import CheckpointError, VidganError

C3D_HINT = (
    "the UCF-101 C3D classifier is not shipped by any package: pass TGAN-v2's "
    "conv3d_deepnetA_ucf.npz (with mean2.npz beside it; github.com/pfnet-research/tgan2 converts "
    "it from the C3D authors' UCF-101 caffemodel) or StyleGAN-V's c3d_ucf101.pt "
    "(github.com/universome/stylegan-v, src/metrics/video_inception_score.py) with --detector-path"
)
CONVS = (
    ("conv1a", 3, 64),
    ("conv2a", 64, 128),
    ("conv3a", 128, 256),
    ("conv3b", 256, 256),
    ("conv4a", 256, 512),
    ("conv4b", 512, 512),
    ("conv5a", 512, 512),
    ("conv5b", 512, 512),
)
#: a (1, 2, 2) or 2x2x2 max-pool follows these convs
POOL_AFTER = {"conv1a": (1, 2, 2), "conv2a": 2, "conv3b": 2, "conv4b": 2, "conv5b": 2}


class C3DUCF101(nn.Module):
    """C3D v1 on 16x112x112 clips (already mean-subtracted, BGR, 0..255 scale) -> fc8 logits."""

    def __init__(
        self,
        *,
        num_classes: int = 101,
        widths: tuple[int, ...] | None = None,
        hidden: int = 4096,
    ) -> None:
        super().__init__()
        widths = widths or tuple(c for _, _, c in CONVS)
        cin = 3
        for (name, _, _), cout in zip(CONVS, widths):
            self.add_module(name, nn.Conv3d(cin, cout, 3, 1, 1))
            cin = cout
        self.fc6 = nn.Linear(cin * 4 * 4, hidden)  # pool5 leaves 1x4x4 at 16x112x112
        self.fc7 = nn.Linear(hidden, hidden)
        self.fc8 = nn.Linear(hidden, num_classes)
        self.register_buffer("mean", torch.zeros(3, 16, 112, 112))  # 128 - mean[:, :, 8:120, ...]

    def forward(self, x: Tensor) -> Tensor:
        for name, _, _ in CONVS:
            x = F.relu(getattr(self, name)(x), inplace=True)
            if name in POOL_AFTER:
                k = POOL_AFTER[name]
                x = F.max_pool3d(x, k, k, ceil_mode=True)  # chainer cover_all=True
        x = F.relu(self.fc6(x.flatten(1)), inplace=True)
        x = F.relu(self.fc7(x), inplace=True)
        return self.fc8(x)

    def prepare(self, video_u8: Tensor) -> Tensor:
        """uint8 RGB `[B, 3, 16, H, W]` -> the network's input, as TGAN-v2's `pre` stage."""
        x = video_u8.float() / 127.5 - 1.0  # the generator's [-1, 1]
        x = x.flip(1) * 128.0  # RGB -> BGR, scale
        b, c, t, h, w = x.shape
        if (h, w) != (112, 112):
            frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W)
            frames = F.interpolate(frames, size=(112, 112), mode="bilinear", align_corners=True)
            x = frames.reshape(b, t, c, 112, 112).transpose(1, 2)
        return x + self.mean.to(x.dtype)


def load_c3d_npz(path: str | os.PathLike[str]) -> C3DUCF101:
    """TGAN-v2's chainer `conv3d_deepnetA_ucf.npz` + `mean2.npz` (beside it, or a `mean` key)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k.strip("/"): z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable .npz weights file: {e}.") from None
    if "mean" not in arrays:
        mean_path = path.with_name("mean2.npz")
        if not mean_path.is_file():
            raise VidganError(
                f"the C3D weights {path} need the UCF-101 mean clip mean2.npz beside them "
                f"(it comes with TGAN-v2's evaluation data): {mean_path} not found."
            )
        with np.load(mean_path, allow_pickle=False) as z:
            arrays["mean"] = z["mean"]
    state = {}
    try:
        model = C3DUCF101(  # sizes from the file (the release: 64..512, 4096, 101)
            num_classes=int(arrays["fc8/W"].shape[0]),
            widths=tuple(int(arrays[f"{n}/W"].shape[0]) for n, _, _ in CONVS),
            hidden=int(arrays["fc7/W"].shape[0]),
        )
        for name in [c[0] for c in CONVS] + ["fc6", "fc7", "fc8"]:
            state[f"{name}.weight"] = torch.from_numpy(np.asarray(arrays[f"{name}/W"]))
            state[f"{name}.bias"] = torch.from_numpy(np.asarray(arrays[f"{name}/b"]))
        mean = np.asarray(arrays["mean"], np.float64)
        state["mean"] = torch.from_numpy(128.0 - mean[:, :, 8:120, 8:120]).float()
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except KeyError as e:
        raise CheckpointError(f"{path} is not TGAN-v2's C3D file: no entry {e}.") from None
    except RuntimeError as e:
        raise CheckpointError(
            f"{path} does not fit the C3D UCF-101 network ({str(e).splitlines()[-1].strip()})."
        ) from None
    return model.eval().requires_grad_(False)


class TorchScriptClassifier(nn.Module):
    """A TorchScript video classifier called on uint8 clips (StyleGAN-V's convention)."""

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, video_u8: Tensor) -> Tensor:
        return self.module(video_u8)


def load_classifier(path: str | os.PathLike[str] | None) -> nn.Module:
    """A C3D npz (our port) or a TorchScript classifier file; a missing file is one sentence."""
    if path is None:
        raise VidganError(f"no classifier file given: {C3D_HINT}.")
    path = Path(path)
    if not path.is_file():
        raise VidganError(f"classifier file {path} not found: {C3D_HINT}.")
    with open(path, "rb") as f:
        head = f.read(4)
    if path.suffix == ".npz":
        return load_c3d_npz(path)
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{path} is neither a .npz C3D file nor a TorchScript file.")
    try:
        with warnings.catch_warnings():  # torch.jit.load is deprecated, still the format
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as e:
        raise CheckpointError(f"{path} is not a TorchScript classifier: {e}.") from None
    return TorchScriptClassifier(module.eval())


def to_probabilities(out: Tensor) -> Tensor:
    """Class probabilities from a classifier's output: kept when rows are already
    distributions (non-negative, summing to 1), else softmax of logits (float64)."""
    out = out.double()
    if (out >= 0).all() and torch.allclose(
        out.sum(1), torch.ones(len(out), dtype=out.dtype), atol=1e-4
    ):
        return out
    return torch.softmax(out, dim=1)
