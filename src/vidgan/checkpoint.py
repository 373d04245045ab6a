"""Model files: one safetensors file that rebuilds a trained generator from its own saved config.

A model file holds the generator weights (keys prefixed `G.`), optionally discriminators
(`D.<name>.`), and JSON metadata: the model name, its config and free-form provenance. It is what
`vidgan convert` writes, what ships as the demo checkpoint, and what `vidgan generate` reads, along
with training run folders and the official checkpoints of the three papers (through
`vidgan.convert`). Nothing here unpickles code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import Tensor

from vidgan.config import from_dict, to_dict
from vidgan.errors import CheckpointError
from vidgan.models.base import VideoGenerator
from vidgan.models.registry import ModelSpec, get_model
from vidgan.train.checkpoint import atomic_write

FORMAT = "vidgan-model-v1"


@dataclass
class LoadedModel:
    """A generator rebuilt from a checkpoint, with where it came from."""

    generator: VideoGenerator
    spec: ModelSpec
    config: Any
    source: str
    provenance: dict[str, Any] = field(default_factory=dict)


def save_model_file(
    path: str | Path,
    *,
    model_name: str,
    config: Any,
    generator: dict[str, Tensor],
    discriminators: dict[str, dict[str, Tensor]] | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model file atomically; refuses to replace an existing file unless `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} already exists; pass --force to overwrite it.")
    tensors = {f"G.{k}": v.detach().cpu().contiguous() for k, v in generator.items()}
    for name, sd in (discriminators or {}).items():
        tensors.update({f"D.{name}.{k}": v.detach().cpu().contiguous() for k, v in sd.items()})
    meta = {
        "format": FORMAT,
        "model_name": model_name,
        "config": json.dumps(to_dict(config), sort_keys=True),
        "provenance": json.dumps(provenance or {}, sort_keys=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save(tensors, metadata=meta))
    return path


def read_model_file(path: str | Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    """Metadata and tensors of a model file, with one-sentence errors for foreign files."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise CheckpointError(
                    f"{path} is a safetensors file but not a vidgan model file "
                    f"(no '{FORMAT}' metadata)."
                )
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} cannot be read as a safetensors file ({e}).") from None
    return meta, tensors


def strip_prefix(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def build_generator(
    model_name: str, config: Any, state_dict: dict[str, Tensor], *, source: str
) -> tuple[VideoGenerator, ModelSpec, Any]:
    """Build `model_name` from its config and load `state_dict` strictly, or say what differs."""
    spec = get_model(model_name)
    if isinstance(config, dict):
        config = from_dict(spec.config_cls, config, where="model")
    G = spec.build_generator(config)
    missing, unexpected = (
        sorted(set(G.state_dict()) - set(state_dict)),
        sorted(set(state_dict) - set(G.state_dict())),
    )
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not fit a {model_name} generator with its saved config: "
            f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}."
        )
    try:
        G.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1:2]
        raise CheckpointError(f"{source}: weights do not match the config ({first}).") from None
    return G.eval().requires_grad_(False), spec, config


def load_model_file(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    meta, tensors = read_model_file(path)
    G, spec, cfg = build_generator(
        meta["model_name"],
        json.loads(meta["config"]),
        strip_prefix(tensors, "G."),
        source=str(path),
    )
    prov = json.loads(meta.get("provenance", "{}"))
    return LoadedModel(G.to(device), spec, cfg, str(path), prov)


def load_discriminators(path: str | Path) -> dict[str, dict[str, Tensor]]:
    """The discriminator state dicts stored in a model file (may be empty)."""
    _, tensors = read_model_file(path)
    names = sorted({k.split(".")[1] for k in tensors if k.startswith("D.")})
    return {n: strip_prefix(tensors, f"D.{n}.") for n in names}


def load_checkpoint(
    path: str | Path, *, source: str | None = None, device: str | torch.device = "cpu"
) -> LoadedModel:
    """Any checkpoint a user may hold: a vidgan model file, a training run folder or checkpoint,
    or an official DIGAN / FMR / G3AN file (`source` names the converter; None tries each)."""
    from vidgan.convert import converter_names, get_converter

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    if path.is_dir():
        return load_run_generator(path, device=device)
    if path.suffix == ".safetensors" and source is None:
        return load_model_file(path, device)
    names = [source] if source is not None else converter_names()
    errors = []
    for name in names:
        try:
            conv = get_converter(name)(path)
        except CheckpointError as e:
            errors.append(f"{name}: {e}")
            continue
        G, spec, cfg = build_generator(conv.model, conv.config, conv.state_dict, source=str(path))
        prov = {"converted_from": name, "source": str(path), **conv.notes}
        return LoadedModel(G.to(device), spec, cfg, str(path), prov)
    raise CheckpointError(
        f"{path} is not a vidgan model file or run folder, nor an official checkpoint any "
        f"converter recognises ({'; '.join(errors)})."
    )


def load_run_generator(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """G_ema of a training run: its newest intact checkpoint, or one checkpoint folder."""
    from vidgan.train.checkpoint import find_latest, read_checkpoint

    path = Path(path)
    if (path / "checkpoints").is_dir():
        ckpt = find_latest(path / "checkpoints")
        if ckpt is None:
            raise CheckpointError(f"run folder {path} has no intact checkpoint yet.")
    elif (path / "state.json").exists():
        ckpt = read_checkpoint(path)
    else:
        raise CheckpointError(
            f"{path} is a folder but neither a training run (no checkpoints/) nor a checkpoint "
            "(no state.json)."
        )
    run = ckpt.state.get("run") or {}
    if "model_name" not in run or "G_ema" not in ckpt.tensors:
        raise CheckpointError(f"checkpoint {ckpt.path} lacks the run config or G_ema weights.")
    G, spec, cfg = build_generator(
        run["model_name"], run["model"], ckpt.tensors["G_ema"], source=str(ckpt.path)
    )
    prov = {
        "run": str(path),
        "checkpoint": str(ckpt.path),
        "step": ckpt.step,
        "kimg": ckpt.state.get("kimg"),
    }
    return LoadedModel(G.to(device), spec, cfg, str(ckpt.path), prov)
