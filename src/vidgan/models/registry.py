"""Model registry: a name ties together a config class, its builders and a training recipe.

Each model file registers itself at import (its training recipe is attached by the matching
`vidgan.recipes` module, so model files stay free of training code):

    register_model(ModelSpec(name="fmr", config_cls=FMRConfig, build_generator=...,
                             build_discriminators=..., recipe=FMRRecipe))

The CLI's `--model` choices and the contract tests' parametrisation come from `MODELS.names()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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


def attach_recipe(name: str, recipe: Any) -> ModelSpec:
    """Give registered model `name` its training recipe (called by the `vidgan.recipes` modules,
    so model files never import training code)."""
    return MODELS.update(name, replace(MODELS.get(name), recipe=recipe))


def get_model(name: str) -> ModelSpec:
    load_models()
    return MODELS.get(name)


def load_models() -> list[str]:
    """Import every model module and every recipe module; return the model names."""
    import vidgan.models  # model modules register on import
    import vidgan.recipes  # noqa: F401  (recipe modules attach themselves)

    return MODELS.names()
