"""Training configs: `TrainConfig` (the schedule) and `RunConfig` (model + train + data).

A run is resolved in this order, later wins: the model's config dataclass defaults, the
recipe's default clip spec, `TrainConfig` defaults, a YAML preset, `key=value` overrides.
The preset and override keys are sectioned: `model.<field>`, `train.<field>`, `data.<field>`;
a bare key is accepted when exactly one section has that field (`batch=8` = `train.batch=8`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vidgan.config import _split_override, apply_overrides, from_dict, load_preset, to_dict
from vidgan.errors import ConfigError
from vidgan.registry import nearest

SECTIONS: tuple[str, ...] = ("model", "train", "data")


@dataclass(frozen=True)
class TrainConfig:
    """The schedule and machinery of a run; None means "the model's recipe decides"."""

    batch: int = 32  # global batch: all ranks and accumulation rounds together
    accumulate: int = 1  # micro-batches per step on each rank (same result, less memory)
    steps: int = 0  # optimisation steps; 0 = derive from `kimg`
    kimg: float = 1000.0  # thousands of real clips to show D when `steps` is 0
    g_lr: float | None = None  # Adam lr of G (None: recipe)
    d_lr: float | None = None  # Adam lr of every D (None: recipe)
    g_betas: tuple[float, float] | None = None  # Adam betas of G (None: recipe)
    d_betas: tuple[float, float] | None = None  # Adam betas of the Ds, before lazy-reg scaling
    r1_gamma: float | None = None  # R1 weight for every D (None: recipe; 0 = off)
    r1_interval: int | None = None  # lazy R1 every k steps (None: recipe; 0 = off)
    ema_kimg: float | None = None  # G_ema half-life in kimg (None: recipe; 0 = G_ema = G)
    ema_rampup: float | None = None  # half-life <= rampup * images seen (None: recipe; 0 = off)
    augment: str | None = None  # DiffAugment policy, e.g. "color,translation" (None: recipe)
    reuse_fakes: bool | None = None  # D step judges the G step's fakes (None: recipe)
    amp: bool | None = None  # bf16 autocast (None: where native bf16 exists, vidgan.precision)
    channels_last: bool = False  # channels_last(_3d) memory format for modules and inputs
    keep_heap: bool = True  # CPU runs keep freed memory in the C heap (vidgan.heap)
    seed: int = 0  # seeds init, data order, latents and augmentation
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    workers: int = 2  # DataLoader worker processes per rank
    skip_bad: bool = False  # skip unreadable videos in --data instead of failing
    checkpoint_every: int = 1000  # steps between checkpoints (and one at the end)
    keep_last: int = 3  # complete checkpoints kept, besides the best one
    metrics: tuple[str, ...] = ()  # vidgan.metrics names computed on G_ema at each checkpoint
    metric_clips: int = 256  # real and fake clips per periodic metric (0 = the protocol's own)
    best_metric: str = ""  # metric (computed at checkpoints) that picks the kept best one
    best_lower: bool = True  # True: smaller `best_metric` is better (FVD, FID)
    sample_every: int = 500  # steps between sample grids from fixed latents (0 = off)
    sample_count: int = 16  # videos in a sample grid
    sample_frames: int = 0  # frames per sample video (0 = the clip length)
    log_every: int = 50  # steps between stats lines (JSONL, TensorBoard)
    tensorboard: bool = True  # write TensorBoard events under <outdir>/tb

    def __post_init__(self) -> None:
        checks = [
            (self.batch >= 1, f"train.batch must be >= 1, got {self.batch}"),
            (self.accumulate >= 1, f"train.accumulate must be >= 1, got {self.accumulate}"),
            (self.steps >= 0, f"train.steps must be >= 0, got {self.steps}"),
            (self.steps > 0 or self.kimg > 0, "set train.steps or train.kimg to more than 0"),
            (self.checkpoint_every >= 1, "train.checkpoint_every must be >= 1"),
            (self.keep_last >= 1, f"train.keep_last must be >= 1, got {self.keep_last}"),
            (self.log_every >= 1, f"train.log_every must be >= 1, got {self.log_every}"),
            (self.sample_every >= 0, "train.sample_every must be >= 0"),
            (self.workers >= 0, f"train.workers must be >= 0, got {self.workers}"),
            (self.metric_clips >= 0, f"train.metric_clips must be >= 0, got {self.metric_clips}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg + ".")

    def total_steps(self) -> int:
        """`steps`, or enough steps to show `kimg` thousand clips."""
        return self.steps if self.steps > 0 else math.ceil(self.kimg * 1000 / self.batch)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; written to `<outdir>/config.json` and every checkpoint."""

    model_name: str  # key in vidgan.models.MODELS
    model: Any  # the model's own config dataclass (ModelSpec.config_cls)
    train: TrainConfig
    data: Any  # the clip spec the recipe asks of the data (vidgan.data.ClipSpec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model": to_dict(self.model),
            "train": to_dict(self.train),
            "data": to_dict(self.data),
        }


def _spec_and_recipe(model_name: str) -> tuple[Any, Any]:
    from vidgan.models.registry import get_model

    spec = get_model(model_name)
    if spec.recipe is None:
        raise ConfigError(f"model {model_name!r} has no training recipe yet, so it cannot train.")
    return spec, spec.recipe


def _section_of(key: str, run: dict[str, Any]) -> tuple[str, str]:
    """'train.batch' -> ('train', 'batch'); a bare 'batch' -> the one section that has it."""
    head, _, rest = key.partition(".")
    if head in SECTIONS and rest:
        return head, rest
    owners = [s for s in SECTIONS if head in {f.name for f in dataclasses.fields(run[s])}]
    if len(owners) == 1:
        return owners[0], key
    if len(owners) > 1:
        raise ConfigError(
            f"config key {key!r} exists in {' and '.join(owners)}; "
            f"write {' or '.join(f'{o}.{key}' for o in owners)}."
        )
    names = {s: [f.name for f in dataclasses.fields(run[s])] for s in SECTIONS}
    every = [f"{s}.{n}" for s in SECTIONS for n in names[s]]
    valid = "; ".join(f"{s}.{{{', '.join(names[s])}}}" for s in SECTIONS)
    raise ConfigError(
        f"unknown config key {key!r}"
        f"{nearest(key, every + [e.split('.', 1)[1] for e in every]) or '.'} Valid keys: {valid}."
    )


def _apply(run: dict[str, Any], items: Sequence[tuple[str, Any]], recipe: Any) -> None:
    """Apply (key, value) pairs; model keys first, as the default clip spec depends on them."""
    by_section: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in items:
        section, sub = _section_of(key, run)
        by_section[section][sub] = value  # a later value (CLI) wins over an earlier (preset)
    if by_section["model"]:
        run["model"] = apply_overrides(run["model"], by_section["model"])
        run["data"] = recipe.default_clip_spec(run["model"])
    for section in ("train", "data"):
        if by_section[section]:
            run[section] = apply_overrides(run[section], by_section[section])


def _flatten_preset(preset: Mapping[str, Any], where: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in preset.items():
        if key == "model_name":
            continue
        if key not in SECTIONS:
            raise ConfigError(
                f"preset {where} has unknown top-level key {key!r}{nearest(key, SECTIONS)} "
                "Valid keys: model_name, model, train, data."
            )
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"preset {where}: {key!r} must be a mapping of fields.")
        items.extend((f"{key}.{k}", v) for k, v in value.items())
    return items


def resolve_run_config(
    model_name: str | None,
    *,
    preset: str | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """Defaults -> preset -> overrides, all typed; unknown names list the valid ones.

    A preset (YAML) looks like `{model_name: fmr, model: {...}, train: {...}, data: {...}}`; its
    `model_name` is used when `model_name` is None and must agree with it otherwise.
    """
    data = load_preset(preset) if preset else {}
    preset_model = data.get("model_name")
    if model_name is None:
        if not preset_model:
            raise ConfigError("no model given: pass --model NAME (or a preset with model_name).")
        model_name = str(preset_model)
    elif preset_model and preset_model != model_name:
        raise ConfigError(
            f"preset {preset!r} is for model {preset_model!r}, not {model_name!r}; "
            "drop --preset or --model."
        )
    spec, recipe = _spec_and_recipe(model_name)
    model_cfg = spec.config_cls()
    run: dict[str, Any] = {
        "model": model_cfg,
        "train": TrainConfig(),
        "data": recipe.default_clip_spec(model_cfg),
    }
    items = _flatten_preset(data, repr(preset)) + [_split_override(o) for o in overrides]
    _apply(run, items, recipe)
    return RunConfig(
        model_name=model_name, model=run["model"], train=run["train"], data=run["data"]
    )


def run_config_from_dict(data: Mapping[str, Any], *, where: str = "config") -> RunConfig:
    """Rebuild a RunConfig from `RunConfig.to_dict()` output (config.json, state.json)."""
    try:
        model_name = str(data["model_name"])
        spec, recipe = _spec_and_recipe(model_name)
        model_cfg = from_dict(spec.config_cls, data["model"], where="model")
        clip = recipe.default_clip_spec(model_cfg)
        return RunConfig(
            model_name=model_name,
            model=model_cfg,
            train=from_dict(TrainConfig, data["train"], where="train"),
            data=from_dict(type(clip), data["data"], where="data"),
        )
    except KeyError as e:
        raise ConfigError(f"{where} lacks the key {e.args[0]!r}.") from None


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        path = f"{prefix}{key}"
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out.extend(config_diff(va, vb, path + "."))
        elif va != vb:
            out.append(path)
    return out
