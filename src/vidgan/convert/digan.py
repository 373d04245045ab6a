"""Import the official DIGAN `network-snapshot-*.pkl` without executing any of its code.

The release pickles StyleGAN2-ADA `torch_utils.persistence` objects: every network module is a
REDUCE of `_reconstruct_persistent_obj(meta)` whose `meta` carries the whole source text of its
module, which the original loader `exec`s. Here a restricted unpickler maps that reconstructor to
a function that keeps only `meta["class_name"]` and `meta["state"]` (the module `__dict__`,
including `_init_kwargs`), turns framework objects (OmegaConf configs, Beta distributions,
containers) into inert records, and refuses every other global. Tensors come back through torch's
own weights-only loader. Nothing from the file is ever called.

Weights keep the official raw parameterisation: our `EqualLinear` stores the same raw weight and
applies the same lr_mult / sqrt(fan_in) at run time, and FMM / ToRGB weights are used as stored;
so the key table only renames, drops the unused `resample_filter` buffers and squeezes 1x1 convs.
"""

from __future__ import annotations

import io
import math
import pickle
import re
from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vidgan.convert import CONVERTERS, Converted
from vidgan.errors import CheckpointError
from vidgan.models.digan import DIGANConfig, DIGANGenerator, build_discriminators

# --- safe unpickling ---------------------------------------------------------------------------


class PersistentRecord:
    """What a persistent object becomes: its class name and stored `__dict__`, never its code."""

    def __init__(self, class_name: str, state: dict[str, Any]) -> None:
        self.class_name = class_name
        self.state = state

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


class InertRecord:
    """Stand-in for allowed framework classes: accepts any arguments and keeps the state."""

    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _EasyDict(dict):
    """dnnlib.util.EasyDict as a plain dict (no attribute magic, accepts an empty BUILD)."""

    def __setstate__(self, state: Any) -> None:
        if state:
            self.update(state)


def _reconstruct_persistent(meta: Any) -> PersistentRecord:
    """Replacement for torch_utils.persistence._reconstruct_persistent_obj: ignores module_src."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or "state" not in meta:
        raise CheckpointError("persistent object with an unexpected layout (not a DIGAN snapshot).")
    return PersistentRecord(str(meta.get("class_name")), meta["state"])


def _load_storage(data: bytes) -> Any:
    """torch.storage._load_from_bytes through torch's weights-only loader."""
    return torch.load(io.BytesIO(data), weights_only=True)


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    """numpy's multiarray.scalar without numpy's unpickling path."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise CheckpointError("refusing a non-numeric numpy scalar in the snapshot.")
    return np.frombuffer(data, dtype=dtype)[0]


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): defaultdict,
    ("builtins", "dict"): dict,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("typing", "Any"): InertRecord,
}
# Modules whose classes become InertRecord (configs, distributions, plain containers).
_INERT_PREFIXES = ("omegaconf.", "torch.distributions.", "torch.nn.modules.container")


class SafeSnapshotUnpickler(pickle.Unpickler):
    """Unpickler admitting only the globals a DIGAN snapshot needs; code is never executed."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module.startswith(_INERT_PREFIXES) and re.fullmatch(r"[A-Z]\w*", name):
            return InertRecord
        raise CheckpointError(
            f"snapshot refers to {module}.{name}, which a DIGAN snapshot never needs; refusing to "
            "load it (the file may run code)."
        )


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """The snapshot's top-level dict with networks as `PersistentRecord`s (no code is run)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file.")
    try:
        with path.open("rb") as f:
            data = SafeSnapshotUnpickler(f).load()
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: not a readable DIGAN snapshot ({e}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), PersistentRecord):
        raise CheckpointError(f"{path}: no G_ema network in this pickle (not a DIGAN snapshot).")
    return data


def _state_of(obj: Any) -> dict[str, Any]:
    if isinstance(obj, PersistentRecord):
        return obj.state
    if isinstance(obj, InertRecord) and isinstance(obj.state, dict):
        return obj.state
    raise CheckpointError(f"unexpected module object {obj!r} in the snapshot.")


def flatten_state(obj: Any, prefix: str = "") -> dict[str, Tensor]:
    """A module record -> its `state_dict()` (parameters and persistent buffers, dotted keys)."""
    state = _state_of(obj)
    out: dict[str, Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for kind in ("_parameters", "_buffers"):
        for name, t in (state.get(kind) or {}).items():
            if t is None or (kind == "_buffers" and name in skip):
                continue
            out[prefix + name] = t.detach().clone() if isinstance(t, Tensor) else t
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(flatten_state(child, f"{prefix}{name}."))
    return out


def init_kwargs(obj: Any) -> dict[str, Any]:
    """The constructor kwargs a persistent object stored (`_init_kwargs`)."""
    kwargs = _state_of(obj).get("_init_kwargs")
    if not isinstance(kwargs, dict):
        raise CheckpointError("the network record has no _init_kwargs.")
    return dict(kwargs)


# --- configuration ------------------------------------------------------------------------------


def resolve_interpolations(cfg: Any, root: Any = None) -> Any:
    """Resolve OmegaConf-style `${a.b}` strings against the cfg root (as the network does)."""
    root = cfg if root is None else root
    if isinstance(cfg, dict):
        return {k: resolve_interpolations(v, root) for k, v in cfg.items()}
    if isinstance(cfg, str):
        m = re.fullmatch(r"\$\{([\w.]+)\}", cfg)
        if m:
            node = root
            for part in m.group(1).split("."):
                if not isinstance(node, dict) or part not in node:
                    raise CheckpointError(f"cannot resolve {cfg!r} in the generator cfg.")
                node = node[part]
            return resolve_interpolations(node, root)
    return cfg


def _get(d: Mapping[str, Any], path: str, default: Any = None) -> Any:
    node: Any = d
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _unsupported(what: str) -> CheckpointError:
    return CheckpointError(f"this DIGAN snapshot uses {what}, which vidgan does not implement.")


def config_from_kwargs(g_kwargs: Mapping[str, Any], d_kwargs: Mapping[str, Any]) -> DIGANConfig:
    """DIGANConfig from the official Generator / OurDiscriminator constructor kwargs."""
    cfg = resolve_interpolations(dict(g_kwargs.get("cfg") or {}))
    res = int(g_kwargs["img_resolution"])
    if int(g_kwargs.get("img_channels", 3)) != 3 or int(d_kwargs.get("img_channels", 3)) != 3:
        raise _unsupported("img_channels != 3")
    checks = {
        "input.type": ("coords", _get(cfg, "input.type")),
        "fmm.enabled": (True, _get(cfg, "fmm.enabled")),
        "fmm.activation": ("demod", _get(cfg, "fmm.activation")),
        "use_noise": (False, bool(_get(cfg, "use_noise", False))),
        "upsampling_mode": ("nearest", _get(cfg, "upsampling_mode", "nearest")),
        "coords.fallback": (False, bool(_get(cfg, "coords.fallback", False))),
        "coords.coord_dim": (2, _get(cfg, "coords.coord_dim", 2)),
        "coords.kernel_size": (1, _get(cfg, "coords.kernel_size", 1)),
    }
    for key, (want, got) in checks.items():
        if got != want:
            raise _unsupported(f"{key} = {got!r}")
    input_res = int(_get(cfg, "input.resolution"))
    res_cfgs = _get(cfg, "coords.res_configs") or {}
    fuser_res = [input_res] + [
        2**i for i in range(int(math.log2(input_res)) + 1, 10) if 2**i <= res
    ]
    sizes, scales = {}, set()
    for r in fuser_res:
        rc = res_cfgs.get(str(r)) or {}
        for extra in ("log_emb_size", "random_emb_size", "shared_emb_size", "const_emb_size"):
            if rc.get(extra, 0):
                raise _unsupported(f"coords.res_configs.{r}.{extra}")
        if not rc.get("use_cosine", False) or rc.get("use_raw_coords", False):
            raise _unsupported(f"coords.res_configs.{r} without cosines or with raw coordinates")
        sizes[r] = int(rc.get("predictable_emb_size", 0))
        scales.add(float(rc.get("fourier_scale", math.sqrt(10))))
    if len(scales) != 1:
        raise _unsupported("different fourier_scale per resolution")
    low = sizes[input_res]
    # the first resolution with its own res_config (digan.yml: 128 and 256 use medium_res_cfg)
    first_cfg = res_cfgs.get(str(input_res))
    high_from = next((r for r in fuser_res if res_cfgs.get(str(r)) != first_cfg), res * 2)
    high = sizes.get(high_from, low)
    if any(sizes[r] != (high if r >= high_from else low) for r in fuser_res):
        raise _unsupported(f"Fourier embedding sizes {sizes}")
    extra = {int(k): int(v) for k, v in (_get(cfg, "num_extra_convs") or {}).items()}
    used = {r: extra.get(r, 0) for r in fuser_res}  # keyed by working resolution
    n_extra = max(used.values(), default=0)
    extra_from = min((r for r, n in used.items() if n), default=res * 2)
    if any(n not in (0, n_extra) or (n == 0) == (r >= extra_from) for r, n in used.items()):
        raise _unsupported(f"num_extra_convs {extra}")
    mk = dict(g_kwargs.get("mapping_kwargs") or {})
    sk = dict(g_kwargs.get("synthesis_kwargs") or {})
    if sk.get("conv_clamp") is not None:
        raise _unsupported("a generator conv_clamp")
    ek = dict(d_kwargs.get("epilogue_kwargs") or {})
    if d_kwargs.get("architecture", "resnet") != "resnet":
        raise _unsupported(f"D architecture {d_kwargs.get('architecture')!r}")
    dmk = dict(d_kwargs.get("mapping_kwargs") or {})
    return DIGANConfig(
        resolution=res,
        z_dim=int(g_kwargs["z_dim"]),
        w_dim=int(g_kwargs["w_dim"]),
        motion_dim=int(g_kwargs["w_dim"]),  # the release: randn(B, 512) into an FC of 2 * w_dim
        num_classes=int(g_kwargs.get("c_dim", 0)),
        mapping_layers=int(mk.get("num_layers", 8)),
        mapping_lr_mult=float(mk.get("lr_multiplier", 0.01)),
        w_avg_beta=float(mk.get("w_avg_beta", 0.995)),
        input_resolution=input_res,
        channel_base=int(sk.get("channel_base", 32768)),
        channel_max=int(sk.get("channel_max", 512)),
        fmm_rank=int(_get(cfg, "fmm.rank")),
        emb_size_low=low,
        emb_size_high=high,
        emb_high_from=high_from,
        fourier_scale=scales.pop(),
        motion_sigma=float(_get(cfg, "coords.motion_sigma", 0.25)),
        num_extra_convs=n_extra,
        extra_convs_from=extra_from,
        d_channel_base=int(d_kwargs.get("channel_base", 32768)),
        d_channel_max=int(d_kwargs.get("channel_max", 512)),
        d_mbstd_group=int(ek.get("mbstd_group_size", 4)),
        d_mbstd_channels=int(ek.get("mbstd_num_channels", 1)),
        d_conv_clamp=None if d_kwargs.get("conv_clamp") is None else float(d_kwargs["conv_clamp"]),
        d_mapping_layers=int(dmk.get("num_layers", 8)),
        d_cmap_dim=d_kwargs.get("cmap_dim"),
    )


# --- key tables ----------------------------------------------------------------------------------


def generator_key_table(G: DIGANGenerator) -> dict[str, str]:
    """Our generator key -> official key (the first block's fuser sits under `input.input`)."""
    first = G.synthesis.block_names[0]
    table = {}
    for key in G.state_dict():
        official = key.replace(
            f"synthesis.{first}.coord_fuser.", f"synthesis.{first}.input.input.coord_fuser."
        )
        table[key] = official
    return table


def _dead_key(key: str) -> bool:
    """Official buffers our modules do not keep (FIR filters unused by 1x1 layers, or rebuilt)."""
    return key.endswith("resample_filter")


def map_state_dict(
    official: Mapping[str, Tensor], module: nn.Module, table: Mapping[str, str], source: str
) -> dict[str, Tensor]:
    """Apply `table` (ours -> official), squeezing 1x1 conv weights; check names and shapes."""
    expected = module.state_dict()
    wanted = set(table.values())
    unexpected = sorted(k for k in official if k not in wanted and not _dead_key(k))
    missing = sorted(o for o in wanted if o not in official)
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: state dict does not match the DIGAN layout: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}."
        )
    out = {}
    for ours, off in table.items():
        t = official[off]
        want = expected[ours].shape
        if t.shape != want and t.ndim == 4 and t.shape[2:] == (1, 1):
            t = t[:, :, 0, 0]  # 1x1 conv weight [O, I, 1, 1] -> per-pixel linear [O, I]
        if t.shape != want:
            raise CheckpointError(
                f"{source}: {off} has shape {list(t.shape)}, expected {list(want)}."
            )
        out[ours] = t.float().contiguous()
    return out


def convert_generator_state_dict(
    official: Mapping[str, Tensor], cfg: DIGANConfig, *, source: str = "state dict"
) -> dict[str, Tensor]:
    """Official `G.state_dict()` -> our DIGANGenerator state dict."""
    with torch.device("meta"):
        G = DIGANGenerator(cfg)
    return map_state_dict(official, G, generator_key_table(G), source)


def convert_discriminator_state_dict(
    official: Mapping[str, Tensor], cfg: DIGANConfig, *, source: str = "state dict"
) -> dict[str, dict[str, Tensor]]:
    """Official `D.state_dict()` (videoD.*, imageD.*) -> {"video": ..., "image": ...}."""
    with torch.device("meta"):
        Ds = build_discriminators(cfg)
    out = {}
    for name, prefix in (("video", "videoD."), ("image", "imageD.")):
        part = {k[len(prefix) :]: v for k, v in official.items() if k.startswith(prefix)}
        table = {k: k for k in Ds[name].state_dict()}
        out[name] = map_state_dict(part, Ds[name], table, f"{source} ({prefix[:-1]})")
    return out


def read_official_digan(path: str | Path) -> tuple[DIGANConfig, dict[str, dict[str, Tensor]]]:
    """An official snapshot -> (config, {"G_ema", "G", "video", "image"} state dicts).

    `G` is present only when the snapshot has the training generator.
    """
    snap = load_snapshot(path)
    src = str(path)
    if not isinstance(snap.get("D"), PersistentRecord):
        raise CheckpointError(f"{src}: no discriminator D in this snapshot.")
    try:
        cfg = config_from_kwargs(init_kwargs(snap["G_ema"]), init_kwargs(snap["D"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{src}: unreadable network kwargs ({e}).") from None
    out = {"G_ema": convert_generator_state_dict(flatten_state(snap["G_ema"]), cfg, source=src)}
    if isinstance(snap.get("G"), PersistentRecord):
        out["G"] = convert_generator_state_dict(flatten_state(snap["G"]), cfg, source=src)
    out.update(convert_discriminator_state_dict(flatten_state(snap["D"]), cfg, source=src))
    return cfg, out


@CONVERTERS.register("digan")
def _convert(src: Path) -> Converted:
    cfg, states = read_official_digan(src)
    return Converted(
        model="digan",
        config=cfg,
        state_dict=states["G_ema"],
        source=str(src),
        notes={"networks": sorted(states), "generator": "G_ema"},
    )


__all__ = [
    "SafeSnapshotUnpickler",
    "config_from_kwargs",
    "convert_discriminator_state_dict",
    "convert_generator_state_dict",
    "flatten_state",
    "load_snapshot",
    "read_official_digan",
]
