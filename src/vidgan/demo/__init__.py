"""The demo's sections: each writes files to the demo folder and returns what the page shows.

Sections run in registration order; `vidgan.demo.data` (toy data, real clips) comes first and
model modules add theirs (`vidgan.demo.fmr`, ...). `index.html` shows every item with one
sentence.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DemoItem:
    """One thing the index page shows: a file (gif/png/mp4) and a sentence about it."""

    title: str
    file: str  # relative to the demo folder
    sentence: str


@dataclass
class DemoContext:
    out: Path
    seed: int
    train_minutes: float
    device: str
    shared: dict[str, Any] = field(default_factory=dict)  # what sections hand to later ones


Section = Callable[[DemoContext], list[DemoItem]]
#: (name, fn) in page order; models append their sections when imported.
SECTIONS: list[tuple[str, Section]] = []


def section(name: str) -> Callable[[Section], Section]:
    def deco(fn: Section) -> Section:
        SECTIONS.append((name, fn))
        return fn

    return deco


def write_index(out: Path, items: list[tuple[str, list[DemoItem]]], seconds: float) -> Path:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>vidgan demo</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;background:#fafafa}"
        "figure{display:inline-block;margin:1em;vertical-align:top;max-width:460px}"
        "img{image-rendering:pixelated;max-width:440px;border:1px solid #ccc}"
        "figcaption{font-size:0.9em}</style>",
        "<h1>vidgan demo</h1>",
        f"<p>Made by <code>vidgan demo</code> in {seconds:.0f} s.</p>",
    ]
    for name, section_items in items:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        for it in section_items:
            src = html.escape(it.file)
            parts.append(
                f"<figure><img src='{src}' alt='{html.escape(it.title)}'>"
                f"<figcaption><b>{html.escape(it.title)}</b>: {html.escape(it.sentence)}"
                f" (<a href='{src}'>{src}</a>)</figcaption></figure>"
            )
    path = out / "index.html"
    path.write_text("\n".join(parts) + "\n")
    return path


def load_sections() -> list[tuple[str, Section]]:
    """Import the section modules (they register in page order) and return the sections."""
    import importlib

    for mod in _MODULES:
        importlib.import_module(f"vidgan.demo.{mod}")
    order = {f"vidgan.demo.{m}": i for i, m in enumerate(_MODULES)}
    # page order = module order in _MODULES (import order may differ), then definition order
    return sorted(SECTIONS, key=lambda item: order.get(item[1].__module__, len(order)))


#: Section modules in page order.
_MODULES: tuple[str, ...] = ("data", "fmr", "digan", "g3an")
