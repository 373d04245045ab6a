"""Subcommands of the `vidgan` CLI, kept in a registry so cli.py names none of them.

A command module defines `configure(parser)` and `run(args) -> int` and registers them:

    COMMANDS.add("data", Command(help="...", configure=configure, run=run))

Heavy imports (torch, av) belong inside `run`, so `vidgan --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from vidgan.registry import Registry


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    description: str = ""


COMMANDS: Registry[Command] = Registry("command")

# Module names under vidgan.commands; each registers one subcommand when imported.
_MODULES: tuple[str, ...] = (
    "bench",
    "convert",
    "data",
    "demo",
    "evaluate",
    "explore",
    "generate",
    "train",
)


def load_commands() -> None:
    for name in _MODULES:
        importlib.import_module(f"vidgan.commands.{name}")
