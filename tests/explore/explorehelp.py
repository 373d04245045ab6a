"""Tiny random-weight model files for the explorer tests, and a job-polling helper."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidgan.checkpoint import save_model_file
from vidgan.config import from_dict, load_preset
from vidgan.io import as_thwc_uint8
from vidgan.models.registry import get_model

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_FMR = ROOT / "src" / "vidgan" / "assets" / "fmr-toy-32.safetensors"


def tiny_model_file(folder: Path, model: str, seed: int = 0) -> Path:
    """`<model>-tiny` with random weights, saved as a vidgan model file."""
    spec = get_model(model)
    cfg = from_dict(spec.config_cls, load_preset(f"{model}-tiny")["model"])
    torch.manual_seed(seed)
    G = spec.build_generator(cfg)
    path = folder / f"{model}-tiny.safetensors"
    save_model_file(path, model_name=model, config=cfg, generator=G.state_dict())
    return path


def wait(client, job_id: str, timeout: float = 60.0) -> dict:
    """Poll a job until it finishes; return its last status."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in ("done", "cancelled", "error"):
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def png(data: bytes) -> np.ndarray:
    from io import BytesIO

    return np.asarray(Image.open(BytesIO(data)).convert("RGB"))


def u8(video: torch.Tensor) -> np.ndarray:
    """Float `[3, T, H, W]` -> uint8 `[T, H, W, 3]` as the page shows it."""
    return as_thwc_uint8(video)
