"""A tiny name -> object registry, used for models, datasets, metrics and converters.

Registries replace if/elif ladders: the CLI's choices and the test parametrisation are read
from them, and an unknown name gets one sentence naming the nearest valid names.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vidgan.errors import ConfigError

T = TypeVar("T")


def nearest(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    """Return a short "did you mean" clause for `name` among `choices` (may be empty)."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """Maps names to objects; `register` is a decorator, `get` raises a ConfigError."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def update(self, name: str, obj: T) -> T:
        """Replace the object of an already registered name (e.g. to attach a training recipe)."""
        self.get(name)
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none registered)"
            raise ConfigError(
                f"unknown {self.kind} {name!r}{nearest(name, self.names())} "
                f"Valid {self.kind}s: {valid}."
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
