"""Model registry: a name ties together a config class, its builders and a training recipe.

Each model file registers itself at import:

    register_model(ModelSpec(name="fmr", config_cls=FMRConfig, build_generator=...,
                             build_discriminators=..., recipe=FMRRecipe))

The CLI's `--model` choices and the contract tests' parametrisation come from `MODELS.names()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from vidgan.models.base import VideoGenerator
from vidgan.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """What the library needs to know about one paper model."""

    name: str
    config_cls: type  # frozen dataclass with the paper defaults
    build_generator: Callable[[Any], VideoGenerator]
    build_discriminators: Callable[[Any], dict[str, nn.Module]]
    recipe: Any = None  # training recipe class (see vidgan.train), set when the model trains
    description: str = ""


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.add(spec.name, spec)


def get_model(name: str) -> ModelSpec:
    import vidgan.models  # noqa: F401  (imports every model module so they register)

    return MODELS.get(name)
