"""`vidgan data toy|prepare|info`: make the FMR toy set, convert videos to frames, inspect data."""

from __future__ import annotations

import argparse

from vidgan.commands import COMMANDS, Command

DESCRIPTION = """\
Datasets are StyleGAN-V frame folders (root/<video>/<frame>.jpg), a zip of that layout, or a
tree of video files (.mp4/.avi/.webm/.mkv; class labels from the first-level folders).

  vidgan data toy data/toy --n 1000          FMR toy set (3 bouncing objects) + labels.json
  vidgan data prepare ucf101/ data/ucf64 --size 64 --zip --workers 2
  vidgan data info data/ucf64.zip            videos, frames, resolutions, problems
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _strides(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1 or 2,3, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"strides must be positive, got {text!r}")
    return values


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(parser)
    )

    p = sub.add_parser(
        "toy",
        help="write the FMR toy dataset (3 bouncing objects, speeds 2/4/8) with labels.json",
        description="Write the FMR toy dataset: 64x64 videos of a circle/square/triangle at "
        "columns 16/32/48 bouncing vertically at 2, 4 or 8 px per frame. Every video is kept "
        "and labels.json records each object's shape, colour, speed, start and direction. "
        "DST may end in .zip to write a zip instead of a folder.",
    )
    p.add_argument("dst", help="output folder (or .zip)")
    p.add_argument("--n", type=_positive, default=1000, help="number of videos (default 1000)")
    p.add_argument("--frames", type=_positive, default=32, help="frames per video (default 32)")
    p.add_argument("--size", type=_positive, default=64, help="frame size in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed; video i depends on (seed, i)")
    p.add_argument("--format", choices=("png", "jpg"), default="png", help="frame format")
    p.add_argument("--force", action="store_true", help="replace DST if it exists")
    p.set_defaults(_action=_run_toy)

    p = sub.add_parser(
        "prepare",
        help="convert videos to resized frame folders or a zip (resumable)",
        description="Decode every video of SRC (or every frame folder), centre-crop to a square, "
        "resize with Lanczos to --size and save JPEG quality 95 (or PNG) as DST/<video>/"
        "<frame>.jpg. Interrupted runs resume: finished videos are skipped. Existing output "
        "is never replaced without --force.",
    )
    p.add_argument("src", help="video file tree, single video, frame folders or zip")
    p.add_argument("dst", help="output folder (or .zip with --zip)")
    p.add_argument("--size", type=_positive, required=True, help="output frame size (square)")
    p.add_argument("--zip", action="store_true", help="write DST as one zip (adds .zip)")
    p.add_argument("--workers", type=_positive, default=1, help="parallel processes (default 1)")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg", help="frame format")
    p.add_argument("--force", action="store_true", help="replace existing output")
    p.add_argument("--skip-bad", action="store_true", help="skip and report broken videos")
    p.set_defaults(_action=_run_prepare)

    p = sub.add_parser(
        "info",
        help="summarise a dataset: videos, frames, resolutions, too-short and unreadable files",
        description="Scan a dataset and report videos, frame counts, resolutions, labels, "
        "videos too short for a clip and unreadable files. --full decodes every frame.",
    )
    p.add_argument("path", help="frame folders, zip, or video file tree")
    p.add_argument("--frames", type=_positive, default=16, help="clip length to check (16)")
    p.add_argument("--stride", type=_strides, default=(1,), help="clip stride(s), e.g. 2,3")
    p.add_argument("--full", action="store_true", help="decode every frame (slow, thorough)")
    p.set_defaults(_action=_run_info)


def _run_toy(args: argparse.Namespace) -> int:
    from vidgan.data.toy import write_toy_dataset

    dst = write_toy_dataset(
        args.dst,
        n_videos=args.n,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        fmt=args.format,
        force=args.force,
        progress=True,
    )
    print(f"wrote {args.n} toy videos ({args.frames} frames, {args.size}px) to {dst}")
    return 0


def _run_prepare(args: argparse.Namespace) -> int:
    from vidgan.data.prepare import prepare_dataset

    report = prepare_dataset(
        args.src,
        args.dst,
        size=args.size,
        fmt=args.format,
        to_zip=args.zip,
        workers=args.workers,
        force=args.force,
        skip_bad=args.skip_bad,
    )
    print(
        f"{report.dst}: {len(report.written)} videos written, "
        f"{len(report.resumed)} already done, {len(report.failed)} skipped as broken"
    )
    for name, why in report.failed[:10]:
        print(f"  skipped {name}: {why}")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    from vidgan.data.clips import ClipSpec
    from vidgan.data.info import dataset_info

    spec = ClipSpec(frames=args.frames, stride=args.stride)
    info = dataset_info(args.path, spec, full=args.full)
    print("\n".join(info.lines()))
    return 0


def run(args: argparse.Namespace) -> int:
    return args._action(args)


COMMANDS.add(
    "data",
    Command(
        help="make the toy dataset, prepare videos as frames, inspect a dataset",
        configure=configure,
        run=run,
        description=DESCRIPTION,
    ),
)
