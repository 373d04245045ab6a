"""One GAN training engine for every model: recipe contract, loop, checkpoints, DDP.

How a model trains
------------------
A model registers `ModelSpec(name, config_cls, build_generator, build_discriminators, recipe)`
where `recipe` is a `TrainRecipe` subclass (vidgan.train.recipe). The loop builds
`recipe_cls(model_cfg=, clip=, d_names=, num_classes=, augment=)` and asks it:

* class attributes (or instance attributes set in `__init__` from the model config):
  `loss` ("softplus" non-saturating logistic, or "bce" for G3AN: the same function on logits),
  `r1_gamma`, `r1_interval` (lazy R1; 0 = off), `g_optim` / `d_optim` (`OptimSpec` lr, betas,
  eps), `ema_kimg` (G_ema half-life; 0 = G_ema follows G), `ema_rampup`, `augment`
  (DiffAugment policy: color, translation, cutout, flip), `terms` (`DTerm(weight, r1_gamma)`
  per discriminator name), `reuse_fakes` (the D step judges the G step's fakes, detached,
  instead of rendering its own: one G forward per step, as the FMR and G3AN releases do).
* `default_clip_spec(model_cfg)` (classmethod): the `vidgan.data.ClipSpec` its data needs.
* `real_video(batch)`: the real clips `[B, 3, T, H, W]` from a collated batch
  `{"video": [B, T, 3, H, W], "label": [B], "index": [B]}`; R1 differentiates w.r.t. it
  (before augmentation, as StyleGAN2-ADA).
* `real_inputs(video, batch, rand)` and `fake_inputs(G, rand, labels)`: a dict
  `{d_name: DInput(x, cond)}` with one entry per discriminator; D is called as `D(x, **cond)`
  (cond carries e.g. a pair's time gap `dt` or `labels`). The defaults give every D the whole
  augmented clip; a pair D samples two frames (real) or generates two times (fake) here.
* every random draw goes through `rand` (`BatchRandom`: `rand`, `randn`, `randint`, `latents`,
  `augment`, and `draw(fn)` for CPU samplers such as `vidgan.data.pairs`), which draws for the
  global batch from a generator seeded by (seed, step, phase) and returns this call's rows.
  That makes N ranks == 1 process and resume exact. Never use the global torch RNG there.

The loop owns the schedule and names no model: G step, D step, lazy R1 on every D with
StyleGAN2's lr / betas scaling c = k/(k+1) for the D optimizers, EMA, bf16 autocast
(`train.amp`; default: on where the hardware has native bf16, vidgan.precision),
channels_last, gradient accumulation, `--device auto`, DDP. Loss math lives in
vidgan.train.losses. Losses are batch means, so gradients averaged over ranks and accumulation
rounds equal those of the global batch.

Configs
-------
`RunConfig(model_name, model, train, data)`: the model's config dataclass, `TrainConfig` and the
clip spec. Resolution: defaults -> `--preset` YAML (`{model_name:, model: {...}, train: {...},
data: {...}}`) -> `key=value` overrides (`model.x=`, `train.x=`, `data.x=`, or a bare key when
only one section has it). `--dry-run` prints it with the resolved hyper-parameters; the run
folder gets `config.json`. TrainConfig fields left None take the recipe's value.

Run folder
----------
`config.json`, `stats.jsonl`, `tb/` (TensorBoard), `samples/step-*.mp4` (G_ema on fixed
latents), `checkpoints/step-XXXXXXXX/` (see vidgan.train.checkpoint: safetensors for G, G_ema,
each D and each optimizer, `state.json` with config, step, kimg, RNG states, data position and
metric history; written atomically, verified by a manifest on load, never unpickled). The last
`keep_last` checkpoints are kept, plus the best by `best_metric` (metrics are callables passed
to `Trainer(metrics=...)`, evaluated on G_ema at each checkpoint).

Data order: epoch e visits a permutation seeded by (seed, e), cut into global batches; rank r
reads its contiguous rows of each (vidgan.train.data). SIGINT / SIGTERM finish the step, save,
print the resume command and exit 0. A NaN / Inf loss raises `TrainingDiverged` before the
optimizer step; checkpoints already written stay.

Distributed: `torchrun --nproc_per_node N -m vidgan train ...` (gloo on CPU, NCCL on CUDA);
rank 0 writes everything. Gradients are all-reduced by hand after each phase (no DDP wrapper: R1
needs double backward). BatchNorm statistics stay per rank (no SyncBatchNorm); models whose D
mixes samples (minibatch-stddev) match 1-process runs only when groups do not cross ranks.
"""

from __future__ import annotations

from typing import Any

from vidgan.train.config import RunConfig, TrainConfig, resolve_run_config
from vidgan.train.recipe import BatchRandom, DInput, DTerm, OptimSpec, TrainRecipe

__all__ = [
    "BatchRandom",
    "DInput",
    "DTerm",
    "OptimSpec",
    "RunConfig",
    "TrainConfig",
    "TrainRecipe",
    "Trainer",
    "resolve_run_config",
]


def __getattr__(name: str) -> Any:
    if name == "Trainer":  # imported lazily: the loop pulls in data, logging and tensorboard
        from vidgan.train.loop import Trainer

        return Trainer
    raise AttributeError(name)
