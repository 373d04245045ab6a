"""Importers for the official checkpoints of the paper models.

Each converter module registers a function `path -> Converted` under the official project's name:

    @CONVERTERS.register("g3an")
    def _convert(src: Path) -> Converted: ...

The converter reads the file without unpickling code (`torch.load(weights_only=True)` or
safetensors), maps the official keys to ours with an explicit table, checks every name and shape,
and returns our model's config and state dict; `vidgan convert` writes them as a vidgan checkpoint.
`get_converter` imports every module of this package on first use (no list to maintain), so
importing the package itself stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from vidgan.registry import Registry


@dataclass(frozen=True)
class Converted:
    """An official checkpoint in our terms: which model, its config and its state dict."""

    model: str  # name in vidgan.models.MODELS
    config: Any  # that model's frozen config dataclass
    state_dict: dict[str, Tensor]  # keys of our generator module
    source: str = ""  # where it came from (file path)
    notes: dict[str, Any] = field(default_factory=dict)  # anything a converter wants to record


Converter = Callable[[Path], Converted]

CONVERTERS: Registry[Converter] = Registry("converter")


def _import_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def get_converter(name: str) -> Converter:
    """The converter registered as `name` (imports every converter module first)."""
    _import_all()
    return CONVERTERS.get(name)


def converter_names() -> list[str]:
    """Names of every converter (imports the converter modules so they register)."""
    _import_all()
    return CONVERTERS.names()


__all__ = ["CONVERTERS", "Converted", "Converter", "converter_names", "get_converter"]
