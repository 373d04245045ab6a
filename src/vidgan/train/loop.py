"""The one GAN training loop: G step, D step, lazy R1, EMA; checkpoints, logs, samples, DDP.

The loop names no model. It asks the model's `TrainRecipe` what each discriminator sees and
which hyper-parameters apply, and takes the loss math from `vidgan.train.losses`. One step:

1. G: every D judges `recipe.fake_inputs(G, ...)`; loss = sum_d w_d * g_loss_d.
2. D: loss = sum_d w_d * d_loss(D_d(real_d), D_d(fake_d)), fakes made without grad, or with
   the recipe's `reuse_fakes` (`train.reuse_fakes`) the G step's fakes, detached.
3. R1 (every `r1_interval` steps): sum_d gamma_d / 2 * interval * E||grad_x D_d||^2, x = real
   clips before augmentation; D's Adam lr and betas are scaled by c = k / (k + 1) (StyleGAN2).
4. EMA: G_ema <- lerp(G_ema, G, 1 - beta), half-life `ema_kimg` (ramp-up optional).

Each phase splits the rank's batch into `accumulate` micro-batches; losses are batch means
divided by `accumulate`, and gradients are averaged over ranks, so any split of the global
batch over ranks and micro-batches gives the same update.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import signal
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from vidgan import __version__, heap
from vidgan.config import to_dict
from vidgan.errors import CheckpointError, ConfigError, VidganError
from vidgan.models.base import VideoGenerator
from vidgan.models.registry import ModelSpec, get_model
from vidgan.precision import resolve_amp
from vidgan.train import losses
from vidgan.train.checkpoint import (
    atomic_write,
    checkpoint_name,
    find_latest,
    flatten_optimizer,
    list_checkpoints,
    prune_checkpoints,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unflatten_optimizer,
)
from vidgan.train.config import RunConfig, config_diff
from vidgan.train.data import RealBatches, open_training_data
from vidgan.train.dist import (
    DistEnv,
    all_reduce_max,
    average_gradients,
    barrier,
    broadcast_module,
    init_distributed,
)
from vidgan.train.log import RunLogger, fixed_latents, format_profile, sample_videos
from vidgan.train.recipe import LOSS_KINDS, BatchRandom, DInput, OptimSpec, TrainRecipe, mix_seed

PHASES: dict[str, int] = {"G": 1, "D_fake": 2, "D_real": 3, "R1": 4}
CHECKPOINT_DIR = "checkpoints"


class TrainingDiverged(VidganError):
    """A loss became NaN or Inf; the run stops and keeps its last good checkpoint."""


@dataclass(frozen=True)
class HParams:
    """The hyper-parameters in force: the recipe's, with TrainConfig overrides applied."""

    loss: str
    g_optim: OptimSpec
    d_optim: OptimSpec  # as given; the D optimizers use the lazy-reg scaled copy
    r1_interval: int
    r1_gamma: dict[str, float]  # per D
    weights: dict[str, float]  # per D
    ema_kimg: float
    ema_rampup: float
    augment: str
    reuse_fakes: bool  # the D step judges the G step's fakes instead of rendering its own

    @property
    def d_optim_scaled(self) -> OptimSpec:
        c = losses.lazy_reg_factor(self.r1_interval if any(self.r1_gamma.values()) else 0)
        b1, b2 = self.d_optim.betas
        return OptimSpec(lr=self.d_optim.lr * c, betas=(b1**c, b2**c), eps=self.d_optim.eps)


def resolve_hparams(recipe: TrainRecipe, train: Any) -> HParams:
    """Recipe defaults, overridden by the non-None TrainConfig fields."""
    if recipe.loss not in LOSS_KINDS:
        raise ConfigError(f"recipe loss {recipe.loss!r} is not one of {', '.join(LOSS_KINDS)}.")
    g, d = recipe.g_optim, recipe.d_optim
    g = OptimSpec(
        lr=g.lr if train.g_lr is None else train.g_lr,
        betas=g.betas if train.g_betas is None else tuple(train.g_betas),
        eps=g.eps,
    )
    d = OptimSpec(
        lr=d.lr if train.d_lr is None else train.d_lr,
        betas=d.betas if train.d_betas is None else tuple(train.d_betas),
        eps=d.eps,
    )
    unknown = set(recipe.terms) - set(recipe.d_names)
    if unknown:
        raise ConfigError(
            f"recipe terms name unknown discriminators: {', '.join(sorted(unknown))}."
        )
    gammas = {}
    for name in recipe.d_names:
        term = recipe.term(name)
        gamma = recipe.r1_gamma if term.r1_gamma is None else term.r1_gamma
        gammas[name] = float(gamma if train.r1_gamma is None else train.r1_gamma)
    return HParams(
        loss=recipe.loss,
        g_optim=g,
        d_optim=d,
        r1_interval=int(recipe.r1_interval if train.r1_interval is None else train.r1_interval),
        r1_gamma=gammas,
        weights={n: float(recipe.term(n).weight) for n in recipe.d_names},
        ema_kimg=float(recipe.ema_kimg if train.ema_kimg is None else train.ema_kimg),
        ema_rampup=float(recipe.ema_rampup if train.ema_rampup is None else train.ema_rampup),
        augment=",".join(recipe.augment_pipe.policy),
        reuse_fakes=bool(recipe.reuse_fakes if train.reuse_fakes is None else train.reuse_fakes),
    )


def to_channels_last(module: nn.Module) -> nn.Module:
    """4-D weights -> channels_last, 5-D -> channels_last_3d (Module.to rejects the mix)."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.ndim == 4:
            t.data = t.data.contiguous(memory_format=torch.channels_last)
        elif t.ndim == 5:
            t.data = t.data.contiguous(memory_format=torch.channels_last_3d)
    return module


def _split_batch(batch: Mapping[str, Any], parts: int) -> list[dict[str, Any]]:
    """A collated batch -> `parts` equal micro-batches (tensors and lists sliced on dim 0)."""
    n = len(next(iter(batch.values())))
    size = n // parts
    out = []
    for i in range(parts):
        sl = slice(i * size, (i + 1) * size)
        out.append({k: v[sl] for k, v in batch.items()})
    return out


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()
    }


@dataclass
class _Accum:
    """Running sums of logged values between two stats lines."""

    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] += v
            self.counts[k] += 1

    def pop(self) -> dict[str, float]:
        out = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums.clear()
        self.counts.clear()
        return out


class Trainer:
    """One training run: builds everything from a RunConfig, then `fit()` runs the schedule."""

    def __init__(
        self,
        run: RunConfig,
        *,
        outdir: str | Path,
        dataset: Dataset | None = None,  # a dataset of {"video": [T,3,H,W], "label", "index"}
        data_path: str | None = None,  # else opened with vidgan.data.open_dataset
        resume: str | None = None,  # None (fresh), "auto" (newest intact) or a checkpoint path
        metrics: Mapping[str, Callable[[VideoGenerator], float]] | None = None,
        profile: int = 0,  # > 0: time this many steps, print the breakdown, write nothing
        env: DistEnv | None = None,
        resume_hint: str = "",  # the command that continues this run (printed on stop)
        progress: bool = True,  # show the tqdm bar
    ) -> None:
        self.run = run
        self.cfg = run.train
        self.outdir = Path(outdir)
        self.ckpt_root = self.outdir / CHECKPOINT_DIR
        self.metrics = dict(metrics or {})
        self.profile = int(profile)
        self.env = env or init_distributed(self.cfg.device)
        self.device = self.env.device
        if self.cfg.keep_heap and self.device.type == "cpu":
            heap.keep_freed_memory()  # no page faults on each step's fresh activations
        self.resume_hint = resume_hint or f"add --resume auto (outdir {self.outdir})"
        self.progress = progress
        self._stop: str | None = None
        self._timer = _Timer(False, self.device)
        cfg = self.cfg
        micro = self.env.world_size * cfg.accumulate
        if cfg.batch % micro:
            raise ConfigError(
                f"train.batch={cfg.batch} must be divisible by world size x train.accumulate "
                f"= {self.env.world_size} x {cfg.accumulate}."
            )
        self.local_batch = cfg.batch // self.env.world_size
        self.micro_batch = self.local_batch // cfg.accumulate
        self.total_steps = cfg.total_steps()
        self.writes = self.env.is_main and self.profile == 0

        if self.writes:
            self._on_main(self._prepare_outdir, resume)
        else:
            self._agree(None)

        self.spec: ModelSpec = get_model(run.model_name)
        self._build()
        self.step = 0
        self.nimg = 0
        self.metric_history: list[dict[str, Any]] = []
        data_pos = {"epoch": 0, "index": 0}
        if resume is not None:
            ckpt = self._find_resume(resume)
            if ckpt is not None:
                data_pos = self._load(ckpt)
        if dataset is None:
            if data_path is None:
                raise ConfigError("no training data: pass --data PATH.")
            dataset = open_training_data(data_path, run.data, skip_bad=cfg.skip_bad, seed=cfg.seed)
        self.dataset = dataset
        self.batches = RealBatches(
            dataset,
            global_batch=cfg.batch,
            rank=self.env.rank,
            world_size=self.env.world_size,
            seed=cfg.seed,
            workers=cfg.workers,
            epoch=int(data_pos["epoch"]),
            index=int(data_pos["index"]),
            name=data_path or "the dataset",
        )
        if self.writes:
            atomic_write(self.outdir / "config.json", _json(run.to_dict()))

    # --- set-up -------------------------------------------------------------------------------
    def _agree(self, error: VidganError | None) -> None:
        """Make every rank raise when rank 0 failed (no rank waits forever at a collective)."""
        failed = all_reduce_max(1.0 if error is not None else 0.0, self.env)
        if error is not None:
            raise error
        if failed:
            raise VidganError("rank 0 stopped with an error (see its message).")

    def _on_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            out = fn(*args, **kwargs)
        except VidganError as e:
            self._agree(e)
        self._agree(None)
        return out

    def _prepare_outdir(self, resume: str | None) -> None:
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
            probe = self.outdir / f".write-test-{id(self)}"
            atomic_write(probe, b"ok")
            probe.unlink()
        except OSError as e:
            raise CheckpointError(
                f"cannot write to --outdir {self.outdir} ({e.strerror or e}); choose a writable "
                "folder with free space."
            ) from None
        if resume is None and list_checkpoints(self.ckpt_root):
            raise CheckpointError(
                f"--outdir {self.outdir} already holds checkpoints; pass --resume auto to "
                "continue that run or choose a new --outdir."
            )

    def _build(self) -> None:
        cfg, run, spec = self.cfg, self.run, self.spec
        # initial weights (and any model code that uses the global RNGs) follow train.seed
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)
        G = spec.build_generator(run.model)
        Ds = spec.build_discriminators(run.model)
        if not isinstance(G, VideoGenerator):
            raise ConfigError(
                f"model {run.model_name!r} builds a {type(G).__name__}, not a VideoGenerator."
            )
        self.G = G.to(self.device).train()
        self.Ds = nn.ModuleDict(Ds).to(self.device).train()
        if cfg.channels_last:
            to_channels_last(self.G)
            to_channels_last(self.Ds)
        broadcast_module(self.G, self.env)
        broadcast_module(self.Ds, self.env)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.recipe: TrainRecipe = spec.recipe(
            model_cfg=run.model,
            clip=run.data,
            d_names=tuple(self.Ds.keys()),
            num_classes=int(getattr(G, "num_classes", 0)),
            augment=cfg.augment,
        )
        self.hp = resolve_hparams(self.recipe, cfg)
        self._kept_fakes: dict[int, Mapping[str, DInput]] = {}  # G step -> D step (reuse_fakes)
        g, d = self.hp.g_optim, self.hp.d_optim_scaled
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=g.lr, betas=g.betas, eps=g.eps)
        self.opt_D = {
            name: torch.optim.Adam(D.parameters(), lr=d.lr, betas=d.betas, eps=d.eps)
            for name, D in self.Ds.items()
        }
        self.amp = resolve_amp(cfg.amp, self.device)
        if self.device.type == "cuda" or self.amp:
            self._autocast: Callable[[], AbstractContextManager[Any]] = lambda: torch.autocast(
                self.device.type, dtype=torch.bfloat16, enabled=self.amp
            )
        else:
            self._autocast = nullcontext

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, **{f"D.{n}": o for n, o in self.opt_D.items()}}

    # --- checkpoints --------------------------------------------------------------------------
    def _find_resume(self, resume: str) -> Any:
        if resume == "auto":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ckpt = find_latest(self.ckpt_root)
            if self.env.is_main:
                for w in caught:
                    print(f"vidgan train: warning: {w.message}", file=sys.stderr)
            if ckpt is None and self.env.is_main:
                print(f"vidgan train: no checkpoint in {self.ckpt_root}; starting a new run.")
            return ckpt
        return read_checkpoint(resume)

    def _state(self) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
        tensors: dict[str, dict[str, Tensor]] = {
            "G": self.G.state_dict(),
            "G_ema": self.G_ema.state_dict(),
        }
        for name, D in self.Ds.items():
            tensors[f"D.{name}"] = D.state_dict()
        optim_meta = {}
        for name, opt in self._optimizers().items():
            tensors[f"optim.{name}"], optim_meta[name] = flatten_optimizer(opt.state_dict())
        tensors["rng"], rng_plain = rng_state()
        state = {
            "format": 1,
            "vidgan_version": __version__,
            "run": self.run.to_dict(),
            "step": self.step,
            "nimg": self.nimg,
            "kimg": self.nimg / 1000,
            "data": self.batches.state(),
            "optim": optim_meta,
            "rng": rng_plain,
            "metrics": self.metric_history,
            "world_size": self.env.world_size,
        }
        return tensors, state

    def _load(self, ckpt: Any) -> dict[str, int]:
        path, state = ckpt.path, ckpt.state
        saved = state.get("run", {})
        if saved.get("model_name") != self.run.model_name:
            raise CheckpointError(
                f"checkpoint {path} belongs to model {saved.get('model_name')!r}, not "
                f"{self.run.model_name!r}; pick another --outdir or --resume path."
            )
        diff = config_diff(saved.get("model", {}), to_dict(self.run.model))
        if diff:
            raise CheckpointError(
                f"checkpoint {path} was made with another model config ({', '.join(diff)} "
                "differ); use the same model.* settings or start a new --outdir."
            )
        changed = [
            k
            for k in ("batch", "seed", "accumulate")
            if saved.get("train", {}).get(k) != getattr(self.cfg, k)
        ]
        if changed and self.env.is_main:
            print(
                f"vidgan train: warning: train.{', train.'.join(changed)} changed since {path}; "
                "the run continues but is no longer identical to an uninterrupted one.",
                file=sys.stderr,
            )
        t = ckpt.tensors
        try:
            self.G.load_state_dict(t["G"])
            self.G_ema.load_state_dict(t["G_ema"])
            for name, D in self.Ds.items():
                D.load_state_dict(t[f"D.{name}"])
            for name, opt in self._optimizers().items():
                opt.load_state_dict(unflatten_optimizer(t[f"optim.{name}"], state["optim"][name]))
        except KeyError as e:
            raise CheckpointError(f"checkpoint {path} lacks {e.args[0]!r}.") from None
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(f"checkpoint {path} does not fit this model: {first}") from None
        self._apply_hparams_to_optimizers()
        set_rng_state(t.get("rng", {}), state.get("rng", {}))
        self.step = int(state["step"])
        self.nimg = int(state["nimg"])
        self.metric_history = list(state.get("metrics", []))
        data = state.get("data", {})
        if self.env.is_main:
            print(
                f"vidgan train: resuming from {path} "
                f"(step {self.step}, kimg {self.nimg / 1000:.2f})."
            )
        if data.get("global_batch") != self.cfg.batch:
            return {"epoch": int(data.get("epoch", 0)) + 1, "index": 0}
        return {"epoch": int(data.get("epoch", 0)), "index": int(data.get("index", 0))}

    def _apply_hparams_to_optimizers(self) -> None:
        """The current config's lr / betas win over the ones stored in a checkpoint."""
        g, d = self.hp.g_optim, self.hp.d_optim_scaled
        for opt, spec in [(self.opt_G, g), *[(o, d) for o in self.opt_D.values()]]:
            for group in opt.param_groups:
                group["lr"], group["betas"], group["eps"] = spec.lr, tuple(spec.betas), spec.eps

    def _best_path(self) -> Path | None:
        name = self.cfg.best_metric
        scored = [(h[name], h["step"]) for h in self.metric_history if name and name in h]
        if not scored:
            return None
        _, step = (min if self.cfg.best_lower else max)(scored)
        return self.ckpt_root / checkpoint_name(step)

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0), prune old ones; all ranks agree."""
        path = None
        if self.writes:
            tensors, state = self._state()
            path = self._on_main(
                save_checkpoint, self.ckpt_root, self.step, tensors=tensors, state=state
            )
            best = self._best_path()
            prune_checkpoints(
                self.ckpt_root, keep_last=self.cfg.keep_last, keep=[best] if best else []
            )
        elif self.profile == 0:
            self._agree(None)
        barrier(self.env)
        return path

    # --- one step -----------------------------------------------------------------------------
    def _rand(self, phase: str, micro: int) -> BatchRandom:
        start = self.env.rank * self.local_batch + micro * self.micro_batch
        return BatchRandom(
            seed=mix_seed(self.cfg.seed, self.step, PHASES[phase]),
            global_batch=self.cfg.batch,
            rows=slice(start, start + self.micro_batch),
            device=self.device,
        )

    def _check_inputs(self, inputs: Mapping[str, DInput], what: str) -> None:
        if set(inputs) != set(self.Ds.keys()):
            raise VidganError(
                f"recipe {type(self.recipe).__name__}.{what} returned inputs for "
                f"{sorted(inputs)}, but the discriminators are {sorted(self.Ds.keys())}."
            )

    def _real_video(self, mb: Mapping[str, Any]) -> Tensor:
        video = self.recipe.real_video(mb)
        if self.cfg.channels_last and video.ndim == 5:
            video = video.contiguous(memory_format=torch.channels_last_3d)
        return video

    def _finish(self, params: Any, stats: dict[str, Tensor], phase: str) -> dict[str, float]:
        """Average grads and stats over ranks; stop on a non-finite loss."""
        names = list(stats)
        vec = torch.stack([stats[k].detach().float() for k in names])
        vec = average_gradients(params, self.env, vec)
        values = dict(zip(names, vec.tolist(), strict=True))
        for k, v in values.items():
            if not math.isfinite(v):
                last = list_checkpoints(self.ckpt_root)
                keep = (
                    f"the last good checkpoint is {last[0][1]}"
                    if last
                    else "no checkpoint was written yet"
                )
                hint = "perhaps with a lower learning rate"
                if self.amp:  # low-precision kernels are a cause worth ruling out first
                    hint += ", or in fp32 with train.amp=false (bf16 autocast is on)"
                raise TrainingDiverged(
                    f"{k} became {v} at step {self.step} ({phase} phase); training stopped and "
                    f"{keep} (resume it with --resume auto, {hint})."
                )
        return values

    def _phase_G(self, micros: list[dict[str, Any]]) -> dict[str, float]:
        self.G.requires_grad_(True)
        self.Ds.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        A = len(micros)
        stats = {"Loss/G": torch.zeros((), device=self.device)}
        for i, mb in enumerate(micros):
            with self._autocast():
                with self._timer("G forward"):
                    fakes = self.recipe.fake_inputs(
                        self.G, self._rand("G", i), self.recipe.labels(mb)
                    )
                self._check_inputs(fakes, "fake_inputs")
                if self.hp.reuse_fakes:  # for the D step, without G's graph
                    self._kept_fakes[i] = {
                        n: DInput(d.x.detach(), d.cond) for n, d in fakes.items()
                    }
                total = torch.zeros((), device=self.device)
                for name, D in self.Ds.items():
                    term = losses.g_loss(D(fakes[name].x, **fakes[name].cond), self.hp.loss)
                    total = total + self.hp.weights[name] * term
                    key = f"Loss/G/{name}"
                    stats[key] = (
                        stats.get(key, torch.zeros((), device=self.device)) + term.detach() / A
                    )
            (total / A).backward()
            stats["Loss/G"] = stats["Loss/G"] + total.detach() / A
        values = self._finish(self.G.parameters(), stats, "G")
        self.opt_G.step()
        return values

    def _phase_D(self, micros: list[dict[str, Any]]) -> dict[str, float]:
        self.G.requires_grad_(False)
        self.Ds.requires_grad_(True)
        for opt in self.opt_D.values():
            opt.zero_grad(set_to_none=True)
        A = len(micros)
        zero = torch.zeros((), device=self.device)
        stats = {"Loss/D": zero}
        kept, self._kept_fakes = self._kept_fakes, {}
        for i, mb in enumerate(micros):
            with self._autocast():
                fakes = kept.pop(i, None)
                if fakes is None:
                    with torch.no_grad():
                        fakes = self.recipe.fake_inputs(
                            self.G, self._rand("D_fake", i), self.recipe.labels(mb)
                        )
                reals = self.recipe.real_inputs(self._real_video(mb), mb, self._rand("D_real", i))
                self._check_inputs(fakes, "fake_inputs")
                self._check_inputs(reals, "real_inputs")
                total = zero
                for name, D in self.Ds.items():
                    real_logits = D(reals[name].x, **reals[name].cond)
                    fake_logits = D(fakes[name].x.detach(), **fakes[name].cond)
                    term = losses.d_loss(real_logits, fake_logits, self.hp.loss)
                    total = total + self.hp.weights[name] * term
                    stats[f"Loss/D/{name}"] = stats.get(f"Loss/D/{name}", zero) + term.detach() / A
                    key = f"Scores/{name}/real"
                    stats[key] = stats.get(key, zero) + real_logits.detach().float().mean() / A
                    key = f"Scores/{name}/fake"
                    stats[key] = stats.get(key, zero) + fake_logits.detach().float().mean() / A
            (total / A).backward()
            stats["Loss/D"] = stats["Loss/D"] + total.detach() / A
        values = self._finish(self.Ds.parameters(), stats, "D")
        for opt in self.opt_D.values():
            opt.step()
        return values

    def _phase_R1(self, micros: list[dict[str, Any]]) -> dict[str, float]:
        k = self.hp.r1_interval
        for opt in self.opt_D.values():
            opt.zero_grad(set_to_none=True)
        A = len(micros)
        zero = torch.zeros((), device=self.device)
        stats = {"Loss/R1": zero}
        for i, mb in enumerate(micros):
            video = self._real_video(mb).detach().requires_grad_(True)
            with self._autocast():
                reals = self.recipe.real_inputs(video, mb, self._rand("R1", i))
                self._check_inputs(reals, "real_inputs")
                total = zero
                for name, D in self.Ds.items():
                    gamma = self.hp.r1_gamma[name]
                    if gamma == 0:
                        continue
                    logits = D(reals[name].x, **reals[name].cond)
                    pen = losses.r1_penalty(logits, video)
                    total = total + pen * (gamma / 2) * k
                    stats[f"R1/{name}"] = stats.get(f"R1/{name}", zero) + pen.detach() / A
            (total / A).backward()
            stats["Loss/R1"] = stats["Loss/R1"] + total.detach() / A
        values = self._finish(self.Ds.parameters(), stats, "R1")
        for opt in self.opt_D.values():
            opt.step()
        return values

    def train_step(self, batch: Mapping[str, Any], timer: _Timer | None = None) -> dict[str, float]:
        """One optimisation step on this rank's part of a global batch; returns mean stats."""
        timer = self._timer = timer or _Timer(False, self.device)
        micros = [_to_device(mb, self.device) for mb in _split_batch(batch, self.cfg.accumulate)]
        values: dict[str, float] = {}
        with timer("G step"):
            values.update(self._phase_G(micros))
        with timer("D step"):
            values.update(self._phase_D(micros))
        k = self.hp.r1_interval
        if k > 0 and self.step % k == 0 and any(self.hp.r1_gamma.values()):
            with timer("R1"):
                values.update(self._phase_R1(micros))
        with timer("EMA"):
            beta = losses.ema_beta(
                batch=self.cfg.batch,
                ema_kimg=self.hp.ema_kimg,
                rampup=self.hp.ema_rampup,
                nimg=self.nimg,
            )
            losses.update_ema(self.G_ema, self.G, beta)
        values["EMA/beta"] = beta
        self.step += 1
        self.nimg += self.cfg.batch
        return values

    # --- the run ------------------------------------------------------------------------------
    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT / SIGTERM ask to stop after the current step (a second SIGINT aborts)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        first = [0.0]

        def handler(signum: int, frame: Any) -> None:
            # a copy of the same Ctrl-C (forwarded by torchrun or `timeout`) arrives within
            # moments; only a deliberate second Ctrl-C aborts without saving
            now = time.monotonic()
            if self._stop is not None and signum == signal.SIGINT and now - first[0] > 2.0:
                raise KeyboardInterrupt
            if self._stop is None:
                first[0] = now
                self._stop = signal.Signals(signum).name

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def request_stop(self, reason: str = "request") -> None:
        """Stop after the current step as if SIGTERM arrived (used by tests and callers)."""
        self._stop = reason

    def fit(self) -> int:
        """Run until `total_steps` (or a stop signal); returns the process exit code (0)."""
        if self.profile:
            return self._run_profile()
        log = RunLogger(
            self.outdir,
            enabled=self.writes,
            total_steps=self.total_steps,
            start_step=self.step,
            tensorboard=self.cfg.tensorboard,
            progress=self.progress,
        )
        accum = _Accum()
        sample_frames = self.cfg.sample_frames or self.recipe.n_frames
        latents = None
        if self.writes and self.cfg.sample_every:
            latents = fixed_latents(
                self.G_ema, count=self.cfg.sample_count, n_frames=sample_frames, seed=self.cfg.seed
            )
        t_start, step_start = time.perf_counter(), self.step
        try:
            with self._signals():
                while self.step < self.total_steps:
                    values = self.train_step(next(self.batches))
                    accum.add(values)
                    elapsed = time.perf_counter() - t_start
                    done_kimg = (self.step - step_start) * self.cfg.batch / 1000
                    peak = (
                        torch.cuda.max_memory_allocated(self.device) / 2**30
                        if self.device.type == "cuda"
                        else None
                    )
                    log.step(
                        self.step,
                        self.nimg / 1000,
                        {k: v for k, v in values.items() if k.startswith("Loss/")},
                        sec_per_kimg=elapsed / max(done_kimg, 1e-9),
                        peak_gb=peak,
                    )
                    stop = all_reduce_max(1.0 if self._stop else 0.0, self.env) > 0
                    if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
                        stats = accum.pop()
                        stats["Progress/kimg"] = self.nimg / 1000
                        stats["Timing/sec_per_kimg"] = elapsed / max(done_kimg, 1e-9)
                        if peak is not None:
                            stats["Memory/peak_gb"] = peak
                        log.stats(self.step, self.nimg / 1000, stats)
                    if latents is not None and (
                        self.step % self.cfg.sample_every == 0 or self.step == self.total_steps
                    ):
                        log.grid(self.step, sample_videos(self.G_ema, latents, sample_frames))
                    if (
                        stop
                        or self.step % self.cfg.checkpoint_every == 0
                        or self.step == self.total_steps
                    ):
                        self._checkpoint(log)
                    if stop:
                        log.write(
                            f"vidgan train: stopped by {self._stop or 'another rank'} at step "
                            f"{self.step} (kimg {self.nimg / 1000:.2f}); checkpoint saved in "
                            f"{self.ckpt_root}. Resume with: {self.resume_hint}"
                        )
                        return 0
        finally:
            log.close()
        log.write(f"vidgan train: done, {self.step} steps; checkpoints in {self.ckpt_root}.")
        return 0

    def _checkpoint(self, log: RunLogger) -> None:
        if self.writes and self.metrics:
            row: dict[str, Any] = {"step": self.step, "kimg": self.nimg / 1000}
            for name, fn in self.metrics.items():
                row[name] = float(fn(self.G_ema))
            self.metric_history.append(row)
            log.stats(
                self.step,
                self.nimg / 1000,
                {f"Metrics/{k}": v for k, v in row.items() if k not in ("step", "kimg")},
            )
        self.save()

    def _run_profile(self) -> int:
        timer = _Timer(True, self.device)
        for _ in range(self.profile):
            with timer("data"):
                batch = next(self.batches)
            self.train_step(batch, timer)
            timer.next_step()
        if self.env.is_main:
            print(format_profile(timer.table()))
        return 0


class _Timer:
    """Wall time per phase and step, device-synchronised; a nested phase is not counted twice."""

    NAMES = ("data", "G forward", "G step", "D step", "R1", "EMA")

    def __init__(self, enabled: bool, device: torch.device) -> None:
        self.enabled = enabled
        self.device = device
        self.rows: list[dict[str, float]] = [{}]
        self._stack: list[float] = []  # time spent in children of the open phases

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        self._sync()
        t0 = time.perf_counter()
        self._stack.append(0.0)
        try:
            yield
        finally:
            self._sync()
            spent = time.perf_counter() - t0
            children = self._stack.pop()
            if self._stack:
                self._stack[-1] += spent
            row = self.rows[-1]
            row[name] = row.get(name, 0.0) + spent - children

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def next_step(self) -> None:
        self.rows.append({})

    def table(self) -> dict[str, list[float]]:
        rows = [r for r in self.rows if r]
        return {n: [r.get(n, 0.0) for r in rows] for n in self.NAMES}


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, sort_keys=True) + "\n"
