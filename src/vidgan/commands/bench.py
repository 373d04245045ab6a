"""`vidgan bench`: speed, FLOPs, fraction of the machine's GEMM peak and memory of every model."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from vidgan.commands import COMMANDS, Command
from vidgan.errors import ConfigError

DESCRIPTION = """\
Measure, in one run: the machine's GEMM peak (fp32 and bf16 square matmuls, best of k) and,
for each model at each configuration (presets <model>-toy-*, <model>-paper-*, <model>-tiny):
G forward frames/s (eval, no_grad, warm-up excluded), seconds per training step through the
shared loop (G step, D step, EMA; the lazy R1 step left out), FLOPs per G forward and per step
(torch.utils.flop_counter), the fraction of the GEMM peak those FLOPs reach, and peak memory
(RSS high-water of a fresh process per measurement; CUDA: max_memory_allocated).

--curves instead measures generation time and peak memory against the number of frames
(16..1024, continuous models in chunks through vidgan.sample.sample) and the resolution
(32..256), and writes cost_curves.png, cost_curves.md and cost_curves.json to --out.

Examples:
  vidgan bench --quick                              # toy configs, meant for < 1 min on 2 cores
  vidgan bench --models fmr --configs toy,paper --threads 2 --json fmr.json
  vidgan bench --configs fmr-toy-64,digan-toy-64 --precision bf16
  vidgan bench --curves --out benchmarks --threads 1
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=None, help="comma list of models (default: all)")
    p.add_argument(
        "--configs",
        default=None,
        help="comma list of tiny, toy, paper or preset names (default: toy,paper; --quick: toy)",
    )
    p.add_argument("--quick", action="store_true", help="toy configs, few repeats, small GEMMs")
    p.add_argument("--json", type=Path, default=None, help="write every number here")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    p.add_argument("--precision", default="fp32", help="fp32|bf16 for the model runs")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
    p.add_argument("--no-train", action="store_true", help="G forward only")
    p.add_argument(
        "--inprocess",
        action="store_true",
        help="measure in this process (faster; memory figures include earlier leftovers)",
    )
    c = p.add_argument_group("cost curves")
    c.add_argument("--curves", action="store_true", help="time and memory vs frames/resolution")
    c.add_argument("--out", type=Path, default=None, help="--curves: output folder")


def _command_line(args: argparse.Namespace) -> str:
    """The canonical command that reproduces this run."""
    parts = ["vidgan", "bench"]
    for flag, value in [
        ("--models", args.models),
        ("--configs", args.configs),
        ("--threads", args.threads),
        ("--device", args.device if args.device != "auto" else None),
        ("--precision", args.precision if args.precision != "fp32" else None),
        ("--repeats", args.repeats),
        ("--json", args.json),
        ("--out", args.out),
    ]:
        if value is not None:
            parts += [flag, str(value)]
    for flag, on in [
        ("--quick", args.quick),
        ("--no-train", args.no_train),
        ("--inprocess", args.inprocess),
        ("--curves", args.curves),
    ]:
        if on:
            parts.append(flag)
    return shlex.join(parts)


def _check(args: argparse.Namespace) -> None:
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}.")
    if args.repeats is not None and args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {args.repeats}.")
    if args.precision not in ("fp32", "bf16"):
        raise ConfigError(f"--precision must be fp32 or bf16, got {args.precision!r}.")
    if args.json is not None and not args.json.parent.is_dir():
        raise ConfigError(f"--json {args.json}: folder {args.json.parent} does not exist.")
    if args.out is not None and not args.curves:
        raise ConfigError("--out is for --curves; use --json PATH for the benchmark table.")
    if args.curves and args.out is None:
        raise ConfigError("--curves needs --out DIR for the PNG, table and JSON.")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file, not a folder.")


def run(args: argparse.Namespace) -> int:
    import os

    from vidgan.bench.machine import pick_device
    from vidgan.bench.suite import (
        BenchOptions,
        format_table,
        has_errors,
        parse_list,
        resolve_models,
        write_json,
    )

    _check(args)
    device = pick_device(args.device)
    threads = args.threads or os.cpu_count() or 1
    models = parse_list(args.models, "--models")
    resolve_models(models)  # unknown names fail before anything runs
    command = _command_line(args)
    if args.curves:
        from vidgan.bench.curves import CurveOptions, run_curves, write_curves

        report = run_curves(
            CurveOptions(
                models=models, quick=args.quick, threads=threads, device=str(device),
                precision=args.precision, inprocess=args.inprocess, repeats=args.repeats or 2,
            ),
            command=command,
        )  # fmt: skip
        paths = write_curves(report, args.out)
        print((args.out / "cost_curves.md").read_text())
        print("wrote " + ", ".join(str(p) for p in paths))
        return 1 if has_errors(report) else 0
    configs = parse_list(args.configs, "--configs") or (
        ("toy",) if args.quick else ("toy", "paper")
    )
    options = BenchOptions(
        models=models, configs=configs, quick=args.quick, threads=threads, device=str(device),
        precision=args.precision, repeats=args.repeats, inprocess=args.inprocess,
        train=not args.no_train,
    )  # fmt: skip
    from vidgan.bench.suite import run_bench

    report = run_bench(options, command=command)
    print(format_table(report))
    print(f"\n{command}  ({report['elapsed_s']:.0f} s)")
    if args.json is not None:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 1 if has_errors(report) else 0


COMMANDS.add(
    "bench",
    Command(
        help="measure speed, FLOPs, fraction of GEMM peak and memory of every model",
        configure=configure,
        run=run,
        description=DESCRIPTION,
    ),
)
