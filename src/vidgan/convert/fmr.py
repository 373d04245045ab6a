"""Import official FMR checkpoints.

Source: github:hse1032/Frequency-based-Motion-Representation-for-Video-GANs.

The trainer `torch.save`s `{g, g_ema, img_d, vid_d, g_optim, img_d_optim, vid_d_optim, args, iter}`
(`args` is the argparse.Namespace of cfg.py); the denser `G_ema_*.pt` files hold only
`{g_ema, args, iter}`. Reading never runs code stored in the file: the pickle's imports are checked
against an allow-list (tensor rebuilding, storages, OrderedDict, argparse.Namespace) before
`torch.load(weights_only=True)` unpickles it with the Namespace as the only extra safe global.

Our FMR modules keep the official parameter names, so the key table is the identity (with a
`module.` prefix stripped if present); the config comes from the Namespace, and the channel
widths, band count and MLP depths are read from the tensor shapes, so non-standard widths load too.

    cfg, states = read_official_fmr("checkpoint/300000.pt")   # states["g_ema"], ["img_d"], ...
    G = load_official_fmr("checkpoint/300000.pt")              # eval-mode FMRGenerator
"""

from __future__ import annotations

import argparse
import math
import pickle
import pickletools
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vidgan.convert import CONVERTERS, Converted
from vidgan.errors import CheckpointError
from vidgan.models.fmr import (
    _D_MULTIPLIER,
    DeltaVideoDiscriminator,
    FMRConfig,
    FMRGenerator,
    ImageDiscriminator,
    PatchImageDiscriminator,
    PatchVideoDiscriminator,
    VideoDiscriminator,
    build_discriminators,
)
from vidgan.nn.stylegan2 import channel_table

STATE_KEYS = ("g_ema", "g", "img_d", "vid_d")  # the module state dicts of a checkpoint
DP_PREFIX = "module."

# official class name (cfg.py --image_discriminator / --video_discriminator) -> our option
IMAGE_D_NAMES = {"ImageDiscriminator": "image", "PatchImageDiscriminator": "patch_image"}
VIDEO_D_NAMES = {
    "PatchVideoDiscriminator": "patch_video",
    "VideoDiscriminator": "video",
    "DeltaVideoDiscriminator": "delta",
}
D_CLASSES: dict[str, type[nn.Module]] = {
    "image": ImageDiscriminator,
    "patch_image": PatchImageDiscriminator,
    "patch_video": PatchVideoDiscriminator,
    "video": VideoDiscriminator,
    "delta": DeltaVideoDiscriminator,
}

# Everything the checkpoint pickle may import: tensor/storage rebuilding, OrderedDict, Namespace.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("argparse", "Namespace"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch.storage", "UntypedStorage"),
    ("torch.storage", "TypedStorage"),
}
_STORAGE = re.compile(r"^[A-Za-z0-9]*Storage$")


def _allowed(module: str, name: str) -> bool:
    return (module, name) in _ALLOWED_GLOBALS or (module == "torch" and bool(_STORAGE.match(name)))


def _check_pickle_imports(data: bytes, path: Path) -> None:
    """Refuse a pickle that imports anything outside the allow-list (before any unpickling)."""
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
            elif op.name in ("GLOBAL", "INST"):
                module, name = arg.split(" ", 1)
                if not _allowed(module, name):
                    raise CheckpointError(
                        f"{path}: refused to load, the checkpoint imports {module}.{name} "
                        "(only tensors, OrderedDict and argparse.Namespace are allowed)."
                    )
            elif op.name == "STACK_GLOBAL":
                module, name = (strings[-2], strings[-1]) if len(strings) >= 2 else ("?", "?")
                if not _allowed(module, name):
                    raise CheckpointError(
                        f"{path}: refused to load, the checkpoint imports {module}.{name} "
                        "(only tensors, OrderedDict and argparse.Namespace are allowed)."
                    )
    except (ValueError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"{path}: the checkpoint's pickle is corrupt ({e}).") from None


def load_checkpoint_dict(path: str | Path) -> dict[str, Any]:
    """Read an official FMR `.pt` file as a dict without executing code stored in it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file.")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
            if len(pkl) != 1:
                raise CheckpointError(f"{path} is a zip file but not a torch.save checkpoint.")
            _check_pickle_imports(zf.read(pkl[0]), path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused or failed to read as a weights-only checkpoint ({first})."
        ) from None
    if not isinstance(obj, Mapping) or "g_ema" not in obj:
        raise CheckpointError(f"{path} is not an FMR checkpoint (no 'g_ema' entry).")
    return dict(obj)


# --- config from args + shapes ------------------------------------------------------------------
def _arg(args: Any, name: str, default: Any = None) -> Any:
    if isinstance(args, Mapping):
        return args.get(name, default)
    return getattr(args, name, default)


def _strip_prefix(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    keys = list(sd)
    if keys and all(k.startswith(DP_PREFIX) for k in keys):
        return {k[len(DP_PREFIX) :]: v for k, v in sd.items()}
    return dict(sd)


def _count(sd: Mapping[str, Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def _generator_channels(sd: Mapping[str, Tensor], size: int) -> dict[int, int]:
    table = {4: int(sd["renderer.conv1.conv.weight"].shape[1])}
    for j in range(int(math.log2(size)) - 2):
        table[2 ** (j + 3)] = int(sd[f"renderer.convs.{2 * j}.conv.weight"].shape[1])
    return table


def _d_channels(sd: Mapping[str, Tensor], size: int) -> dict[int, int]:
    table = {size: int(sd["convs.0.0.weight"].shape[0])}
    for i in range(1, int(math.log2(size)) - 1):
        table[size >> i] = int(sd[f"convs.{i}.conv2.1.weight"].shape[0])
    return table


def _override(table: dict[int, int], default: dict[int, int]) -> dict[int, int] | None:
    return None if all(default[r] == c for r, c in table.items()) else dict(table)


def config_from_checkpoint(ckpt: Mapping[str, Any], path: str | Path = "") -> FMRConfig:
    """FMRConfig from the Namespace (sizes, bands, Ds) and the tensor shapes (widths, depths)."""
    args = ckpt.get("args")
    if args is None:
        raise CheckpointError(f"{path}: the checkpoint has no 'args' (cfg.py Namespace).")
    g = _strip_prefix(ckpt["g_ema"])
    try:
        size = int(_arg(args, "image_size"))
        freqs = tuple(float(f) for f in str(_arg(args, "freq_val", "7")).split(",") if f.strip())
        ratio = float(_arg(args, "VD_resize_ratio", 1.0))
        img_d = IMAGE_D_NAMES[_arg(args, "image_discriminator", "ImageDiscriminator")]
        vid_d = VIDEO_D_NAMES[_arg(args, "video_discriminator", "PatchVideoDiscriminator")]
        g_table = _generator_channels(g, size)
        kw: dict[str, Any] = {
            "image_size": size,
            "dim_z_content": int(_arg(args, "dim_z_content", 512)),
            "dim_z_motion": int(_arg(args, "dim_z_motion", 512)),
            "video_length": int(_arg(args, "video_length", 16)),
            "freq_bands": freqs,
            "n_mlp": _count(g, r"renderer\.style\.(\d+)\.weight"),
            "n_mlp_m": _count(g, r"motion_style\.(\d+)\.weight"),
            "n_motion_linear": _count(g, r"motion_linear\.0\.(\d+)\."),
            "channels": _override(g_table, channel_table(2)),
            "vd_resize_ratio": ratio,
            "image_discriminator": img_d,
            "video_discriminator": vid_d,
        }
        n_sin = int(g["LFF.0.ffm.linear.weight"].shape[0])
        if n_sin != kw["dim_z_motion"]:
            kw["n_sinusoids"] = n_sin
        overrides: dict[int, int] = {}
        for key, name, dsize in (("img_d", img_d, size), ("vid_d", vid_d, int(size * ratio))):
            if key in ckpt:
                table = _d_channels(_strip_prefix(ckpt[key]), dsize)
                ov = _override(table, channel_table(_D_MULTIPLIER[D_CLASSES[name]]))
                for r, c in (ov or {}).items():
                    if overrides.get(r, c) != c:
                        raise CheckpointError(
                            f"{path}: the image and video discriminators use different widths "
                            f"at {r} px ({overrides[r]} vs {c}); vidgan's config has one table."
                        )
                    overrides[r] = c
        if overrides:
            kw["d_channels"] = overrides
        return FMRConfig(**kw)
    except KeyError as e:
        raise CheckpointError(f"{path}: missing entry {e} in the checkpoint.") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unusable args in the checkpoint ({e}).") from None


def _check_keys(ours: nn.Module, sd: Mapping[str, Tensor], what: str, path: str | Path) -> None:
    """Every official key must exist in our module with the same shape, and vice versa."""
    want = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        raise CheckpointError(
            f"{path}: {what} keys do not match the FMR model "
            f"(missing {missing[:3]}, unexpected {extra[:3]})."
        )
    bad = [k for k in want if want[k] != got[k]]
    if bad:
        k = bad[0]
        raise CheckpointError(f"{path}: {what} {k} has shape {got[k]}, expected {want[k]}.")


def _read(path: str | Path) -> tuple[FMRConfig, dict[str, dict[str, Tensor]], Any]:
    ckpt = load_checkpoint_dict(path)
    cfg = config_from_checkpoint(ckpt, path)
    states = {k: _strip_prefix(ckpt[k]) for k in STATE_KEYS if k in ckpt}
    with torch.device("meta"):
        G = FMRGenerator(cfg)
        Ds = build_discriminators(cfg)
    for key in ("g_ema", "g"):
        if key in states:
            _check_keys(G, states[key], key, path)
    for key, name in (("img_d", "image"), ("vid_d", "video")):
        if key in states:
            _check_keys(Ds[name], states[key], key, path)
    return cfg, states, ckpt.get("iter")


def read_official_fmr(path: str | Path) -> tuple[FMRConfig, dict[str, dict[str, Tensor]]]:
    """(config, {"g_ema", "g"?, "img_d"?, "vid_d"?: state dict with our (= official) keys})."""
    cfg, states, _ = _read(path)
    return cfg, states


def load_official_fmr(path: str | Path, *, ema: bool = True) -> FMRGenerator:
    """A ready eval-mode FMRGenerator with the checkpoint's g_ema (or g) weights."""
    cfg, states = read_official_fmr(path)
    key = "g_ema" if ema else "g"
    if key not in states:
        raise CheckpointError(f"{path} has no '{key}' generator.")
    G = FMRGenerator(cfg)
    G.load_state_dict(states[key], strict=True)
    return G.eval()


@CONVERTERS.register("fmr")
def convert_fmr(src: Path) -> Converted:
    """`vidgan convert --from fmr`: the g_ema generator with its config."""
    cfg, states, ckpt_iter = _read(src)
    return Converted(
        model="fmr",
        config=cfg,
        state_dict=states["g_ema"],
        source=str(src),
        notes={
            "iter": ckpt_iter if isinstance(ckpt_iter, int) else None,
            "entries": sorted(states),
            "generator": "g_ema",
        },
    )
