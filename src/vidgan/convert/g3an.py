"""Import the official G3AN checkpoints (github:wyhsirius/g3an-project) into our modules.

The released `g3an.pth` is `nn.DataParallel(Generator()).state_dict()` saved with `torch.save`:
keys carry `module.`, spectral-normed layers store the legacy `weight_orig`, `weight_u`,
`weight_v` (+ `bias`), BatchNorm layers their running statistics. We read it with
`torch.load(weights_only=True)` (or a `.safetensors` file with the same keys), strip `module.`,
infer the config from the tensor shapes, map every key through an explicit table and check every
shape against a freshly built `G3ANGenerator`. The result uses `attention_layout="release"`, the
only layout under which the released weights behave as trained.

    cfg, state = convert_g3an("g3an.pth")
    G = load_official_generator("g3an.pth")          # eval-mode G3ANGenerator
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from vidgan.convert import CONVERTERS, Converted
from vidgan.errors import CheckpointError
from vidgan.models.g3an import (
    N_BLOCKS,
    G3ANConfig,
    G3ANGenerator,
    ImageDiscriminator,
    VideoDiscriminator,
)

DP_PREFIX = "module."  # nn.DataParallel

# Per-layer tensors of the official modules (legacy torch.nn.utils.spectral_norm, BatchNorm3d).
SN_TENSORS = ("bias", "weight_orig", "weight_u", "weight_v")
BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# ops.py G3: official sub-module of a G3 block -> (ours, kind)
G3_STREAMS = {
    "conv_s.0": ("appearance.conv", SN_TENSORS),
    "conv_s.1": ("appearance.bn", BN_TENSORS),
    "conv_t.0": ("motion.conv", SN_TENSORS),
    "conv_t.1": ("motion.bn", BN_TENSORS),
}
# ops.py G3 conv_v per mode (nn.Sequential indices; 2 and 5 are ReLUs)
G3_MAIN = {
    "1p2d": {
        "conv_v.0": ("main.0.conv", SN_TENSORS),
        "conv_v.1": ("main.0.bn", BN_TENSORS),
        "conv_v.3": ("main.1.conv", SN_TENSORS),
        "conv_v.4": ("main.1.bn", BN_TENSORS),
    },
    "3d": {
        "conv_v.0": ("main.0.conv", SN_TENSORS),
        "conv_v.1": ("main.0.bn", BN_TENSORS),
    },
}
G3_MAIN["2p1d"] = G3_MAIN["1p2d"]  # same indices, spatial layer first
# ops.py FSA -> ours
FSA_LAYERS = {
    "fsa.tsa.q_conv": "fsa.temporal.query",
    "fsa.tsa.k_conv": "fsa.temporal.key",
    "fsa.tsa.v_conv": "fsa.temporal.value",
    "fsa.ssa.q_conv": "fsa.spatial.query",
    "fsa.ssa.k_conv": "fsa.spatial.key",
    "fsa.ssa.v_conv": "fsa.spatial.value",
}
FSA_GAMMAS = {"fsa.tsa.gamma": "fsa.temporal.gamma", "fsa.ssa.gamma": "fsa.spatial.gamma"}
TO_RGB = {"to_rgb.0.weight": "to_rgb.weight", "to_rgb.0.bias": "to_rgb.bias"}

# networks.py VideoDiscriminator.net / ImageDiscriminator.net indices (odd ones are LeakyReLUs)
VIDEO_D_LAYERS = {
    **{f"net.{2 * i}": f"stages.{i}" for i in range(8)},
    "net.16": "final_spatial",
    "net.18": "logit",
}
IMAGE_D_LAYERS = {**{f"net.{2 * i}": f"stages.{i}" for i in range(4)}, "net.8": "logit"}


# --- reading ------------------------------------------------------------------------------------


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a `.pth` (weights-only unpickling) or `.safetensors` file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path} is not a readable safetensors file ({e}).") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler raises many types on foreign or corrupt files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"{path} cannot be read as a weights-only PyTorch checkpoint ({msg})."
        ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of name -> tensor).")
    return dict(obj)


def strip_dataparallel(
    state: Mapping[str, Tensor], source: str = "checkpoint"
) -> dict[str, Tensor]:
    """Remove the `module.` prefix nn.DataParallel adds (all keys or none must carry it)."""
    keys = list(state)
    n_prefixed = sum(k.startswith(DP_PREFIX) for k in keys)
    if n_prefixed == 0:
        return dict(state)
    if n_prefixed != len(keys):
        raise CheckpointError(
            f"{source}: {n_prefixed} of {len(keys)} keys start with {DP_PREFIX!r}; expected all "
            "or none (a state dict saved from nn.DataParallel, or a plain one)."
        )
    return {k[len(DP_PREFIX) :]: v for k, v in state.items()}


# --- key tables ---------------------------------------------------------------------------------


def _expand(official: str, ours: str, tensors: tuple[str, ...]) -> dict[str, str]:
    return {f"{official}.{t}": f"{ours}.{t}" for t in tensors}


def generator_key_table(cfg: G3ANConfig) -> dict[str, str]:
    """Official generator key -> our key, for an unconditional `cfg`."""
    table: dict[str, str] = {}
    for i in range(1, N_BLOCKS + 1):
        for official, (ours, tensors) in {**G3_MAIN[cfg.mode], **G3_STREAMS}.items():
            table.update(_expand(f"block{i}.{official}", f"blocks.{i - 1}.{ours}", tensors))
    if cfg.use_attention:
        for official, ours in FSA_LAYERS.items():
            table.update(_expand(official, ours, SN_TENSORS))
        table.update(FSA_GAMMAS)
    table.update(TO_RGB)
    return table


def discriminator_key_table(kind: Literal["video", "image"]) -> dict[str, str]:
    """Official VideoDiscriminator / ImageDiscriminator key -> our key."""
    layers = VIDEO_D_LAYERS if kind == "video" else IMAGE_D_LAYERS
    table: dict[str, str] = {}
    for official, ours in layers.items():
        table.update(_expand(official, ours, SN_TENSORS))
    return table


def _require(state: Mapping[str, Tensor], key: str, source: str) -> Tensor:
    if key not in state:
        raise CheckpointError(
            f"{source}: key {key!r} is missing; this does not look like an official G3AN "
            "generator state dict."
        )
    return state[key]


def infer_generator_config(state: Mapping[str, Tensor], source: str = "checkpoint") -> G3ANConfig:
    """Our config for an official generator state dict (keys without `module.`), from shapes."""
    widths = [
        int(_require(state, f"block{i}.conv_s.0.bias", source).shape[0])
        for i in range(1, N_BLOCKS + 1)
    ]
    ch = math.gcd(*widths)
    c_a = int(_require(state, "block1.conv_s.0.weight_orig", source).shape[0])
    c_m = int(_require(state, "block1.conv_t.0.weight_orig", source).shape[0])
    if "block1.conv_v.3.weight_orig" not in state:
        mode = "3d"
    else:
        kernel = tuple(_require(state, "block1.conv_v.0.weight_orig", source).shape[2:])
        mode = "1p2d" if kernel[1:] == (1, 1) else "2p1d"
    use_attention = "fsa.tsa.gamma" in state
    cfg = G3ANConfig(
        c_a=c_a,
        c_m=c_m,
        ch=ch,
        channel_mults=tuple(w // ch for w in widths),
        mode=mode,
        use_attention=use_attention,
        attention_layout="release",
    )
    if use_attention:
        qk = int(_require(state, "fsa.tsa.q_conv.bias", source).shape[0])
        if qk < 1 or cfg.attention_channels % qk:
            raise CheckpointError(
                f"{source}: attention query width {qk} does not divide the attention width "
                f"{cfg.attention_channels}."
            )
        cfg = replace(cfg, attention_reduction=cfg.attention_channels // qk)
    return cfg


def _map_keys(
    state: Mapping[str, Tensor],
    table: Mapping[str, str],
    expected: Mapping[str, Tensor],
    source: str,
) -> dict[str, Tensor]:
    """Rename through `table`, then check names and shapes against `expected` (ours)."""
    missing = [k for k in table if k not in state]
    unexpected = [k for k in state if k not in table]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} missing ({', '.join(missing[:5])}{', ...' * (len(missing) > 5)})"
            )
        if unexpected:
            more = ", ..." * (len(unexpected) > 5)
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:5])}{more})")
        raise CheckpointError(
            f"{source}: keys do not match the official layout: {'; '.join(parts)}."
        )
    out: dict[str, Tensor] = {}
    for official, ours in table.items():
        tensor = state[official]
        want = expected[ours]
        if tuple(tensor.shape) != tuple(want.shape):
            raise CheckpointError(
                f"{source}: {official!r} has shape {list(tensor.shape)}, but the inferred model "
                f"expects {list(want.shape)} for it."
            )
        out[ours] = tensor.detach().to(want.dtype).contiguous()
    return out


def _convert_generator(
    state: Mapping[str, Tensor], source: str
) -> tuple[G3ANConfig, dict[str, Tensor], G3ANGenerator]:
    state = strip_dataparallel(state, source)
    cfg = infer_generator_config(state, source)
    G = G3ANGenerator(cfg)  # built once: gives the expected names/shapes and is reused
    expected = G.state_dict()
    ours = _map_keys(state, generator_key_table(cfg), expected, source)
    if set(ours) != set(expected):  # the table must cover our module exactly
        raise CheckpointError(f"{source}: internal key table does not cover the G3AN generator.")
    return cfg, ours, G


# --- public API -----------------------------------------------------------------------------------


def convert_generator_state_dict(
    state: Mapping[str, Tensor], *, source: str = "state dict"
) -> tuple[G3ANConfig, dict[str, Tensor]]:
    """Official generator state dict (plain or DataParallel) -> (our config, our state dict)."""
    cfg, ours, _ = _convert_generator(state, source)
    return cfg, ours


def convert_g3an(src_path: str | Path) -> tuple[G3ANConfig, dict[str, Tensor]]:
    """Read the released `g3an.pth` (or a same-keyed .safetensors): (our config, state dict)."""
    return convert_generator_state_dict(load_state_dict_file(src_path), source=str(src_path))


def load_official_generator(
    src: str | Path | Mapping[str, Tensor], *, device: torch.device | str = "cpu"
) -> G3ANGenerator:
    """An eval-mode `G3ANGenerator` holding an official checkpoint (file path or state dict)."""
    source = "state dict" if isinstance(src, Mapping) else str(src)
    state = src if isinstance(src, Mapping) else load_state_dict_file(src)
    _, ours, G = _convert_generator(state, source)
    G.load_state_dict(ours)
    return G.to(device).eval()


def convert_discriminator_state_dict(
    state: Mapping[str, Tensor], kind: Literal["video", "image"], *, source: str = "state dict"
) -> tuple[int, dict[str, Tensor]]:
    """Official `VD_*.pth` / `ID_*.pth` state dict -> (its width `ch`, our state dict)."""
    if kind not in ("video", "image"):
        raise CheckpointError(
            f"{source}: discriminator kind must be 'video' or 'image', not {kind!r}."
        )
    state = strip_dataparallel(state, source)
    ch = int(_require(state, "net.0.bias", source).shape[0])
    D = _build_discriminator(kind, ch)
    return ch, _map_keys(state, discriminator_key_table(kind), D.state_dict(), source)


def _build_discriminator(kind: str, ch: int) -> VideoDiscriminator | ImageDiscriminator:
    return VideoDiscriminator(ch=ch) if kind == "video" else ImageDiscriminator(ch=ch)


def load_official_discriminator(
    src: str | Path | Mapping[str, Tensor],
    kind: Literal["video", "image"],
    *,
    device: torch.device | str = "cpu",
) -> VideoDiscriminator | ImageDiscriminator:
    """An eval-mode official video or image discriminator (file path or state dict)."""
    source = "state dict" if isinstance(src, Mapping) else str(src)
    state = src if isinstance(src, Mapping) else load_state_dict_file(src)
    ch, ours = convert_discriminator_state_dict(state, kind, source=source)
    D = _build_discriminator(kind, ch)
    D.load_state_dict(ours)
    return D.to(device).eval()


@CONVERTERS.register("g3an")
def _convert(src: Path) -> Converted:
    cfg, state = convert_g3an(src)
    return Converted(model="g3an", config=cfg, state_dict=state, source=str(src))


__all__ = [
    "convert_discriminator_state_dict",
    "convert_g3an",
    "convert_generator_state_dict",
    "discriminator_key_table",
    "generator_key_table",
    "infer_generator_config",
    "load_official_discriminator",
    "load_official_generator",
    "load_state_dict_file",
    "strip_dataparallel",
]
