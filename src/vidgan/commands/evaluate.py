"""`vidgan evaluate`: compute registered metrics between real data and fakes or a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidgan.commands import COMMANDS, Command
from vidgan.errors import VidganError

DESCRIPTION = """\
Compute metrics between a real dataset and a fake one (frame folders, zips, video trees) or
videos generated on the fly from a checkpoint (no disk round trip). Metric names state the
protocol (see --list); every option that changes a number is recorded in the JSON result,
with the data fingerprints and the vidgan version. Real features are cached on disk under a
hash of the data's content, the options and the detector weights.

Examples:
  vidgan evaluate --metrics fvd2048_16f,kvd,fid,motion --real data/sky --fake samples/ \
      --out results.jsonl
  vidgan evaluate --metric fvd_digan --real ucf101/train --ckpt run/ --trials 3
  vidgan evaluate --metric motion_speed_toy,motion_spectrum_16f --real toy/ --fake samples/
  vidgan evaluate --metric is_c3d_ucf101 --ckpt run/ --detector-path c3d_ucf101.pt
  vidgan evaluate --list
"""

_PROTOCOL_FLAGS = (
    ("num_real", int, "real clips"),
    ("num_fake", int, "fake clips"),
    ("frames", int, "frames per clip"),
    ("stride", int, "step between used frames"),
    ("seed", int, "base seed of subsets, offsets and latents"),
    ("trials", int, "independent repetitions (mean and std)"),
    ("resolution", int, "resize shorter side and centre-crop to this size first"),
    ("real_offset", str, "first frame of real clips: random|start"),
    ("fake_offset", str, "first frame of fake clips from a dataset: random|start"),
    ("real_subset", str, "real videos: random (seeded)|sorted"),
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metric", "--metrics", dest="metric", help="NAME[,NAME...] (see --list)")
    p.add_argument("--list", action="store_true", help="list the metrics and exit")
    p.add_argument("--real", help="real dataset: frame folders, zip, or video files")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--fake", help="fake dataset in any layout --real accepts")
    src.add_argument("--ckpt", "--checkpoint", dest="ckpt", help="generate fakes from this")
    p.add_argument("--source", default=None, help="checkpoint kind for --ckpt (see generate)")
    p.add_argument("--out", help="append results as JSON lines to this file")
    p.add_argument("--detector-path", help="weights file for the metric's detector")
    p.add_argument("--covariance", choices=("biased", "unbiased"), help="covariance estimator")
    p.add_argument(
        "--preprocess",
        choices=("resize", "center_crop"),
        help="I3D input: resize to 224 (StyleGAN-V) or shorter side + centre crop (DIGAN)",
    )
    for name, typ, help_ in _PROTOCOL_FLAGS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=typ, help=help_)
    p.add_argument("--batch-size", type=int, default=None, help="clips per detector call")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    p.add_argument("--cache-dir", default=None, help="real-feature cache (default ~/.cache/vidgan)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _pick_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VidganError(f"--device {name!r} is not a valid device.") from None


def _table(results: list[dict[str, Any]]) -> str:
    rows = [("metric", "value", "std", "clips real/fake", "time s")]
    for r in results:
        p = r["options"]["protocol"]
        rows.append(
            (
                r["metric"] + (" *" if r["options"]["protocol_modified"] else ""),
                f"{r['value']:.4f}",
                f"{r['std']:.4f}" if len(r["trials"]) > 1 else "-",
                f"{p['num_real'] if r['real'] is not None else '-'}/{p['num_fake']}",
                f"{r['time_s']:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    if any(r["options"]["protocol_modified"] for r in results):
        lines.append("* protocol options changed from the metric's definition (see JSON)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vidgan.metrics import METRICS, append_result, compute_metric, open_data
    from vidgan.metrics.cache import default_cache_dir
    from vidgan.metrics.fvd import (
        ALIASES,
        FAKE_ONLY,
        _json_default,
        expand_metric_names,
        resolve_protocol,
    )

    if args.list:
        for name in METRICS.names():
            print(f"{name:28s} {METRICS.get(name).help}")
        for alias, targets in ALIASES.items():
            print(f"{alias:28s} alias of {','.join(targets)}")
        return 0
    if not args.metric:
        raise VidganError("--metric is required (see --list for the names).")
    if not args.fake and not args.ckpt:
        raise VidganError("give --fake PATH or --ckpt CKPT.")
    names = expand_metric_names(args.metric)
    if not args.real and any(METRICS.get(n).distance not in FAKE_ONLY for n in names):
        raise VidganError("--real PATH is required (only is_* metrics work without real data).")
    if args.preprocess and not any(METRICS.get(n).extractor == "i3d" for n in names):
        raise VidganError("--preprocess applies to I3D metrics (fvd*, kvd*) only.")
    overrides = {name: getattr(args, name) for name, _, _ in _PROTOCOL_FLAGS}
    device = _pick_device(args.device)
    if device.type == "cpu":
        from vidgan.heap import keep_freed_memory

        keep_freed_memory()  # the detectors remake the same activations every batch
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    generator = None
    if args.ckpt:
        from vidgan.checkpoint import load_checkpoint

        generator = load_checkpoint(args.ckpt, source=args.source, device=device).generator
        generator.eval()
    memo: dict = {}
    opened: dict = {}
    results = []
    for name in names:
        protocol = resolve_protocol(METRICS.get(name), overrides)
        key = (protocol.frames, protocol.stride, protocol.resolution)
        if key not in opened:  # datasets depend on clip length (too-short videos) and size
            opened[key] = (
                open_data(args.real, protocol) if args.real else None,
                open_data(args.fake, protocol) if args.fake else None,
            )
        real, fake = opened[key]
        if METRICS.get(name).distance in FAKE_ONLY:
            real = None
        result = compute_metric(
            name,
            real=real,
            fake=fake,
            generator=generator,
            overrides=overrides,
            covariance=args.covariance,
            extractor_options=(
                {"preprocess": args.preprocess}
                if args.preprocess and METRICS.get(name).extractor == "i3d"
                else None
            ),
            detector_path=args.detector_path,
            device=device,
            batch_size=args.batch_size,
            cache_dir=cache_dir,
            progress=not args.no_progress,
            memo=memo,
        )
        if args.ckpt:
            result["fake"] = {"ckpt": str(args.ckpt), "generator": result["fake"]["generator"]}
        results.append(result)
        if args.out:
            append_result(args.out, result)
    print(_table(results))
    for r in results:
        sys.stdout.write(json.dumps(r, sort_keys=True, default=_json_default) + "\n")
    return 0


COMMANDS.add(
    "evaluate",
    Command(
        help="compute FVD/KVD/FID/motion metrics against real data",
        configure=configure,
        run=run,
        description=DESCRIPTION,
    ),
)
