"""Checkpoints: safetensors + JSON in a folder, written atomically, read without unpickling.

Layout of `<outdir>/checkpoints/step-00001000/`:

    G.safetensors, G_ema.safetensors, D.<name>.safetensors   unwrapped module state dicts
    optim.G.safetensors, optim.D.<name>.safetensors           optimizer tensors (exp_avg, ...)
    rng.safetensors                                           torch RNG states
    state.json      run config, step, kimg, optimizer param groups, numpy/python RNG, data
                    position, metric history
    COMPLETE        manifest {file: {size, sha256}}, written last

Writing: every file goes into `.tmp-step-...` (each fsynced), COMPLETE last, then the folder is
renamed into place with `os.replace` and the parent fsynced. A crash leaves either the old state
or a complete new checkpoint; a leftover `.tmp-*` folder is removed on the next save. Reading
checks the manifest (sizes and hashes), so a truncated or edited checkpoint is reported, and
`--resume auto` passes over it. Nothing here calls `torch.load` or unpickles anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from vidgan.errors import CheckpointError

MARKER = "COMPLETE"
STATE = "state.json"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system supports it (e.g. Windows)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write `data` to `path` through a fsynced temp file and os.replace."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _write_file(tmp, data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _tensors_bytes(tensors: Mapping[str, Tensor]) -> bytes:
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return safetensors.torch.save(plain)


# --- optimizer state <-> tensors + JSON ------------------------------------------------------
def flatten_optimizer(state_dict: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """`optimizer.state_dict()` -> (tensors for safetensors, JSON-able rest)."""
    tensors: dict[str, Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"state.{idx}.{key}"] = value
            else:
                plain.setdefault(str(idx), {})[key] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
        for g in state_dict["param_groups"]
    ]
    return tensors, {"param_groups": groups, "state": plain}


def unflatten_optimizer(tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta.get("state", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


# --- writing ---------------------------------------------------------------------------------
def save_checkpoint(
    root: str | Path,
    step: int,
    *,
    tensors: Mapping[str, Mapping[str, Tensor]],
    state: Mapping[str, Any],
) -> Path:
    """Write `<root>/step-XXXXXXXX/` atomically: `<key>.safetensors` per entry + state.json.

    On any OSError (disk full, permissions) the partial folder is removed and a CheckpointError
    says so; checkpoints already in `root` are never touched.
    """
    root = Path(root)
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        manifest: dict[str, dict[str, Any]] = {}
        files = {f"{k}.safetensors": _tensors_bytes(v) for k, v in tensors.items()}
        files[STATE] = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()
        for name, data in files.items():
            _write_file(tmp / name, data)
            manifest[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        _write_file(tmp / MARKER, json.dumps({"files": manifest}, indent=1).encode())
        _fsync_dir(tmp)
        old = None
        if final.exists():  # re-saving a step (e.g. after resume): swap, then delete the old
            old = root / f".tmp-old-{checkpoint_name(step)}-{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = e.strerror or str(e)
        raise CheckpointError(
            f"could not write checkpoint {final} ({reason}); checkpoints already in {root} "
            "are untouched."
        ) from None
    return final


# --- reading ---------------------------------------------------------------------------------
@dataclass
class CheckpointData:
    """A verified checkpoint read into memory."""

    path: Path
    step: int
    state: dict[str, Any]
    tensors: dict[str, dict[str, Tensor]]  # file stem -> tensors


def verify_checkpoint(path: str | Path) -> dict[str, bytes]:
    """Read every file of a checkpoint, checking the manifest; returns {file name: bytes}."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a folder.")
    marker = path / MARKER
    if not marker.is_file():
        raise CheckpointError(f"checkpoint {path} is incomplete (no {MARKER} marker).")
    try:
        manifest = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"checkpoint {path} has an unreadable {MARKER} marker.") from None
    out = {}
    for name, meta in manifest.items():
        try:
            data = (path / name).read_bytes()
        except OSError:
            raise CheckpointError(f"checkpoint {path} lacks the file {name}.") from None
        if len(data) != meta["size"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise CheckpointError(
                f"checkpoint {path} is truncated or damaged: {name} has {len(data)} bytes, "
                f"expected {meta['size']} with another checksum."
            )
        out[name] = data
    if STATE not in out:
        raise CheckpointError(f"checkpoint {path} has no {STATE}.")
    return out


def read_checkpoint(path: str | Path) -> CheckpointData:
    """Verify and read a checkpoint folder (safetensors and JSON only, nothing unpickled)."""
    path = Path(path)
    files = verify_checkpoint(path)
    state = json.loads(files.pop(STATE))
    tensors = {}
    for name, data in files.items():
        if name.endswith(".safetensors"):
            tensors[name[: -len(".safetensors")]] = safetensors.torch.load(data)
    return CheckpointData(path=path, step=int(state.get("step", 0)), state=state, tensors=tensors)


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """`step-*` folders under `root`, newest first (complete or not)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


def find_latest(root: str | Path) -> CheckpointData | None:
    """The newest checkpoint that reads back intact; damaged ones are skipped with a warning."""
    for _, path in list_checkpoints(root):
        try:
            return read_checkpoint(path)
        except CheckpointError as e:
            warnings.warn(f"skipping {e}", stacklevel=2)
    return None


def prune_checkpoints(root: str | Path, *, keep_last: int, keep: Iterable[Path] = ()) -> None:
    """Delete all but the newest `keep_last` step folders and those in `keep` (the best)."""
    keep_set = {Path(p).resolve() for p in keep}
    for i, (_, path) in enumerate(list_checkpoints(root)):
        if i >= keep_last and path.resolve() not in keep_set:
            shutil.rmtree(path, ignore_errors=True)


def rng_state() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Global RNG states: torch (tensors) and numpy / python (JSON)."""
    import random

    import numpy as np

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()
    py = random.getstate()
    plain = {
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [py[0], list(py[1]), py[2]],
    }
    return tensors, plain


def set_rng_state(tensors: Mapping[str, Tensor], plain: Mapping[str, Any]) -> None:
    import random

    import numpy as np

    if "torch_cpu" in tensors:
        torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if "numpy" in plain:
        name, keys, pos, has_gauss, cached = plain["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "python" in plain:
        version, internal, gauss = plain["python"]
        random.setstate((version, tuple(internal), gauss))
