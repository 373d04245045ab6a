"""`vidgan train`: one GAN training loop for every registered model (see vidgan.train)."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import TYPE_CHECKING

from vidgan.commands import COMMANDS, Command
from vidgan.errors import ConfigError

if TYPE_CHECKING:
    from vidgan.train.config import RunConfig

DESCRIPTION = """\
Train a registered model on a dataset with the shared GAN loop.

  vidgan train --model NAME --data PATH --outdir RUN [--preset NAME] [key=value ...]

Config keys are sectioned: model.<field> (the model's config), train.<field> (batch, steps,
kimg, g_lr, d_lr, r1_gamma, r1_interval, ema_kimg, amp, accumulate, checkpoint_every,
keep_last, ...), data.<field> (the clip spec); a bare key works when only one section has it.
--dry-run prints the resolved config. Ctrl-C (or SIGTERM) finishes the step, saves a
checkpoint and prints how to resume; --resume auto continues from the newest intact one.
Several processes: torchrun --nproc_per_node N -m vidgan train ...
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="NAME", help="registered model (from vidgan.models)")
    p.add_argument("--data", metavar="PATH", help="dataset folder, zip or video tree")
    p.add_argument("--outdir", metavar="RUN", help="run folder: config, checkpoints, logs")
    p.add_argument("--preset", metavar="NAME", help="YAML preset (name in vidgan/presets or path)")
    p.add_argument(
        "--resume",
        metavar="auto|PATH",
        help="continue from the newest intact checkpoint in --outdir (auto) or from PATH",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="time N steps, print a per-phase breakdown and exit (writes nothing)",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run."""
    parts = ["vidgan", "train"]
    for flag in ("model", "data", "outdir", "preset"):
        value = getattr(args, flag, None)
        if value:
            parts += [f"--{flag}", str(value)]
    parts += [*args.overrides, "--resume", "auto"]
    return shlex.join(parts)


def _dry_run(run_cfg: RunConfig) -> None:
    from vidgan.config import to_dict
    from vidgan.models.registry import get_model
    from vidgan.train.loop import resolve_hparams

    spec = get_model(run_cfg.model_name)
    recipe = spec.recipe(
        model_cfg=run_cfg.model,
        clip=run_cfg.data,
        d_names=tuple(spec.build_discriminators(run_cfg.model)),
        augment=run_cfg.train.augment,
    )
    resolved = to_dict(resolve_hparams(recipe, run_cfg.train))
    resolved["total_steps"] = run_cfg.train.total_steps()
    print(json.dumps({**run_cfg.to_dict(), "resolved": resolved}, indent=2, sort_keys=True))


def periodic_metrics(run_cfg: RunConfig, data: str, outdir: str) -> dict:
    """train.metrics -> {name: fn(G_ema) -> value}; each result is also appended, with all its
    options, to <outdir>/metric-<name>.jsonl."""
    best = run_cfg.train.best_metric
    if best and best not in run_cfg.train.metrics:
        raise ConfigError(f"train.best_metric {best!r} must be one of train.metrics.")
    if not run_cfg.train.metrics:
        return {}
    from pathlib import Path

    from vidgan.metrics import METRICS, append_result, compute_metric, open_data
    from vidgan.metrics.fvd import resolve_protocol

    n = run_cfg.train.metric_clips
    overrides = {"num_real": n, "num_fake": n} if n else None
    memo: dict = {}  # real features are computed once per run, not at every checkpoint

    def make(name: str):
        protocol = resolve_protocol(METRICS.get(name), overrides)  # unknown names fail now
        real = open_data(data, protocol)

        def fn(G) -> float:
            result = compute_metric(
                name,
                real=real,
                generator=G,
                overrides=overrides,
                progress=False,
                device=str(G.device),
                memo=memo,
            )
            append_result(Path(outdir) / f"metric-{name}.jsonl", result)
            return float(result["value"])

        return fn

    return {name: make(name) for name in run_cfg.train.metrics}


def run(args: argparse.Namespace) -> int:
    from vidgan.train.config import resolve_run_config

    run_cfg = resolve_run_config(args.model, preset=args.preset, overrides=args.overrides)
    if args.dry_run:
        _dry_run(run_cfg)
        return 0
    if not args.outdir:
        raise ConfigError("vidgan train needs --outdir RUN (the folder for checkpoints and logs).")
    if not args.data:
        raise ConfigError("vidgan train needs --data PATH (a dataset folder, zip or video tree).")
    if args.profile < 0:
        raise ConfigError(f"--profile must be >= 0, got {args.profile}.")
    from vidgan.train.dist import init_distributed, shutdown
    from vidgan.train.loop import Trainer

    metrics = periodic_metrics(run_cfg, args.data, args.outdir)
    env = init_distributed(run_cfg.train.device)
    try:
        trainer = Trainer(
            run_cfg,
            outdir=args.outdir,
            data_path=args.data,
            metrics=metrics,
            resume=args.resume,
            profile=args.profile,
            env=env,
            resume_hint=resume_command(args),
        )
        return trainer.fit()
    finally:
        shutdown(env)


COMMANDS.add(
    "train",
    Command(
        help="train a model with the shared GAN loop",
        description=DESCRIPTION,
        configure=configure,
        run=run,
    ),
)
