"""`vidgan` command line: one subcommand per task, each defined in `vidgan.commands`.

Bad usage or bad input exits with code 2 and one sentence; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vidgan import __version__
from vidgan.commands import COMMANDS, load_commands
from vidgan.errors import VidganError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one `vidgan: error:` line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    load_commands()
    parser = _Parser(
        prog="vidgan",
        description="Continuous-time video GANs (DIGAN, FMR, G3AN): data, training, sampling, "
        "metrics and checkpoint conversion.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vidgan {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS.names():
        cmd = COMMANDS.get(name)
        p = sub.add_parser(
            name,
            help=cmd.help,
            description=cmd.description or cmd.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show full tracebacks on errors",
        )
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False)) or os.environ.get("VIDGAN_DEBUG") == "1"
    try:
        rc = args._run(args)
    except VidganError as e:
        if debug:
            raise
        print(f"vidgan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidgan: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
