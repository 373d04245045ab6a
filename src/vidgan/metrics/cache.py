"""Data fingerprints and the on-disk cache of real-data features.

The cache key is a hash of the data's content fingerprint, every extraction option and the
detector description (weights hash included): never of the options alone (a StyleGAN-V trap,
whose key ignores the data). Files are written to a temp name and moved with `os.replace`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FINGERPRINT_METHOD = (
    "vidgan-fp-v1: sorted relative paths + sizes + bytes "
    "(files > 192 KiB: head, middle, tail 64 KiB)"
)
_BLOCK = 64 << 10


def _file_digest(path: Path, h: Any) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size <= 3 * _BLOCK:
            h.update(f.read())
            return
        for pos in (0, size // 2 - _BLOCK // 2, size - _BLOCK):
            f.seek(pos)
            h.update(f.read(_BLOCK))


def fingerprint_path(path: str | os.PathLike[str]) -> str:
    """Content fingerprint of a dataset file or folder (sha256 hex, see FINGERPRINT_METHOD)."""
    root = Path(path)
    h = hashlib.sha256()
    if root.is_file():
        files = [root]
        rels = [root.name]
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        rels = [p.relative_to(root).as_posix() for p in files]
    for rel, p in zip(rels, files):
        h.update(rel.encode())
        h.update(str(p.stat().st_size).encode())
        _file_digest(p, h)
    return h.hexdigest()


def cache_key(payload: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `payload` (fingerprint, options, detector)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def default_cache_dir() -> Path:
    env = os.environ.get("VIDGAN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "vidgan" / "metrics"


def load_cached(cache_dir: str | os.PathLike[str] | None, key: str) -> np.ndarray | None:
    """Cached features for `key`, or None."""
    if cache_dir is None:
        return None
    path = Path(cache_dir).expanduser() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["features"]
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is recomputed


def save_cached(
    cache_dir: str | os.PathLike[str] | None, key: str, features: np.ndarray, meta: dict[str, Any]
) -> Path | None:
    """Write features atomically (temp file + os.replace) with the key's payload as JSON."""
    if cache_dir is None:
        return None
    d = Path(cache_dir).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{key[:8]}-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, features=features, meta=json.dumps(meta, sort_keys=True, default=str))
        final = d / f"{key}.npz"
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final
