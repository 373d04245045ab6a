"""The machine line every benchmark result carries: CPU, cores, torch, threads, load."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

import torch

from vidgan.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """`auto` -> CUDA when present, else CPU; other names are checked (one-sentence errors)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"--device {name!r} is not a device name (auto, cpu, cuda, cuda:1)."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name!r} asks for CUDA, but no CUDA device is present.")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r}: only cpu and CUDA devices are benchmarked.")
    return device


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(*, threads: int, device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on (and under which load)."""
    flags = cpu_flags()
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "native_bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load_average(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One line: `AMD EPYC, 2 cores, 1 thread(s), cpu, torch 2.13.0, load 3.1 2.5 1.7`."""
    load = info.get("load_average")
    parts = [
        str(info.get("gpu") or info["cpu"]),
        f"{info['cores']} cores",
        f"{info['threads']} thread(s)",
        str(info["device"]),
        f"torch {info['torch']}",
    ]
    if load:
        parts.append("load " + " ".join(f"{x:.1f}" for x in load))
    return ", ".join(parts)
