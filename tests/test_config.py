import json
from dataclasses import dataclass, field

import pytest

from vidgan.config import apply_overrides, from_dict, to_dict
from vidgan.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)


@dataclass(frozen=True)
class Outer:
    name: str = "fmr"
    bands: tuple[int, ...] = (7,)
    use_x: bool = False
    size: int = 32
    inner: Inner = field(default_factory=Inner)


def test_round_trip_is_identity():
    cfg = Outer(bands=(3, 5, 7), inner=Inner(lr=0.1))
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_overrides_are_typed():
    cfg = apply_overrides(Outer(), ["size=64", "bands=3,7", "inner.lr=1e-3", "use_x=true"])
    assert cfg.size == 64 and cfg.bands == (3, 7) and cfg.inner.lr == 1e-3 and cfg.use_x is True


def test_strings_stay_strings_for_optional_str_fields():
    @dataclass(frozen=True)
    class WithPolicy:
        augment: str | None = None
        count: int | None = None

    cfg = apply_overrides(WithPolicy(), {"augment": "", "count": "3"})
    assert cfg.augment == "" and cfg.count == 3
    policy = apply_overrides(WithPolicy(), ["augment=color,translation"]).augment
    assert policy == "color,translation"


def test_int_keyed_dicts_survive_json():
    @dataclass(frozen=True)
    class Widths:
        channels: dict[int, int] | None = None

    cfg = Widths(channels={4: 64, 32: 16})
    back = from_dict(Widths, json.loads(json.dumps(to_dict(cfg))))
    assert back == cfg and back.channels == {4: 64, 32: 16}


def test_unknown_key_names_nearest():
    with pytest.raises(ConfigError, match="did you mean 'size'"):
        apply_overrides(Outer(), ["sise=3"])
    with pytest.raises(ConfigError, match=r"inner\.lrr"):
        apply_overrides(Outer(), ["inner.lrr=3"])


def test_bad_type_is_one_sentence():
    with pytest.raises(ConfigError, match="size must be an integer"):
        apply_overrides(Outer(), ["size=big"])
    with pytest.raises(ConfigError, match="needs 2 values"):
        apply_overrides(Outer(), ["inner.betas=0.5"])
