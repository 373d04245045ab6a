"""The official G3AN checkpoint converter: key tables, config inference, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from vidgan.convert import CONVERTERS, Converted, get_converter
from vidgan.convert.g3an import (
    convert_discriminator_state_dict,
    convert_g3an,
    convert_generator_state_dict,
    generator_key_table,
    infer_generator_config,
    load_official_generator,
)
from vidgan.errors import CheckpointError
from vidgan.models import get_model
from vidgan.models.g3an import G3ANConfig, G3ANGenerator, count_parameters


class NotATensor:  # a pickled object that weights-only loading must refuse
    pass


@pytest.fixture(scope="module")
def official_state(parity_dir: Path) -> dict[str, torch.Tensor]:
    path = parity_dir / "g3an" / "generator_state_dict.safetensors"
    if not path.is_file():
        pytest.skip(f"no G3AN fixtures in {parity_dir}")
    return load_file(str(path))


def _as_official(G: G3ANGenerator) -> dict[str, torch.Tensor]:
    """Our generator's state under the official names (the table read backwards)."""
    ours = G.state_dict()
    return {official: ours[k] for official, k in generator_key_table(G.cfg).items()}


def test_plain_and_dataparallel_pth_convert_to_the_same_state(official_state, tmp_path):
    plain, dp = tmp_path / "plain.pth", tmp_path / "g3an.pth"
    torch.save(official_state, plain)
    torch.save({f"module.{k}": v for k, v in official_state.items()}, dp)
    cfg_a, sd_a = convert_g3an(plain)
    cfg_b, sd_b = convert_g3an(dp)
    assert cfg_a == cfg_b and cfg_a.attention_layout == "release"
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    # every official tensor arrives unchanged under its mapped name (BN stats, SN u/v included)
    table = generator_key_table(cfg_a)
    assert set(table) == set(official_state) and len(sd_a) == len(official_state)
    for official, ours in table.items():
        assert torch.equal(sd_a[ours], official_state[official]), official
        assert sd_a[ours].dtype == official_state[official].dtype


def test_registered_converter_builds_through_the_model_registry(official_state, tmp_path):
    path = tmp_path / "g3an.pth"
    torch.save({f"module.{k}": v for k, v in official_state.items()}, path)
    conv = get_converter("g3an")(path)
    assert "g3an" in CONVERTERS and isinstance(conv, Converted) and conv.model == "g3an"
    spec = get_model(conv.model)
    G = spec.build_generator(conv.config)
    G.load_state_dict(conv.state_dict, strict=True)
    assert G.cfg.attention_layout == "release"


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "2p1d"},
        {"mode": "3d"},
        {"use_attention": False},
        {"ch": 3, "channel_mults": (6, 4, 4, 2, 1), "c_a": 7, "c_m": 5, "attention_reduction": 4},
    ],
)
def test_config_inference_round_trips_every_variant(kw):
    cfg = G3ANConfig(**{"ch": 2, "attention_layout": "release", **kw})
    torch.manual_seed(0)
    G = G3ANGenerator(cfg)
    official = _as_official(G)
    assert infer_generator_config(official) == cfg
    got_cfg, got = convert_generator_state_dict(official)
    assert got_cfg == cfg
    assert all(torch.equal(got[k], v) for k, v in G.state_dict().items())


@pytest.mark.slow
def test_default_ch64_shapes_from_the_fixture_list(parity_dir):
    """The released (ch=64) key set and shapes, listed in param_shapes.json, convert cleanly."""
    path = parity_dir / "g3an" / "param_shapes.json"
    if not path.is_file():
        pytest.skip("no param_shapes.json")
    shapes = json.loads(path.read_text())
    entry = shapes["generator_default_ch64"]
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    state = {
        k: torch.empty(v["shape"], dtype=dtypes[v["dtype"]], device="meta")
        for k, v in entry["state_dict"].items()
    }
    cfg, _ = convert_generator_state_dict({f"module.{k}": v for k, v in state.items()})
    for key in ("c_a", "c_m", "ch", "mode", "use_attention"):
        assert getattr(cfg, key) == entry["config"][key]
    with torch.device("meta"):
        assert count_parameters(G3ANGenerator(cfg)) == entry["n_trainable_params"]
    for kind in ("video", "image"):
        d_entry = shapes[f"{kind}_discriminator_default_ch64"]
        d_state = {
            k: torch.empty(v["shape"], device="meta") for k, v in d_entry["state_dict"].items()
        }
        ch, _ = convert_discriminator_state_dict(d_state, kind)
        assert ch == d_entry["ch"]


def _small_official() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return _as_official(G3ANGenerator(G3ANConfig(ch=2, attention_layout="release")))


def test_missing_unexpected_and_misshapen_keys_are_named():
    state = _small_official()
    broken = dict(state)
    del broken["fsa.ssa.v_conv.weight_u"]
    with pytest.raises(CheckpointError, match=r"1 missing \(fsa\.ssa\.v_conv\.weight_u\)"):
        convert_generator_state_dict(broken)
    extra = {**state, "block3.conv_s.2.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"unexpected \(block3\.conv_s\.2\.weight\)"):
        convert_generator_state_dict(extra)
    bad = {**state, "block2.conv_t.0.weight_v": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"'block2\.conv_t\.0\.weight_v' has shape \[3\]"):
        convert_generator_state_dict(bad)
    mixed = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(state.items())}
    with pytest.raises(CheckpointError, match="module"):
        convert_generator_state_dict(mixed)
    with pytest.raises(CheckpointError, match="official G3AN generator"):
        convert_generator_state_dict({"net.0.bias": torch.zeros(3)})


def test_unreadable_files_raise_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        convert_g3an(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="weights-only"):
        convert_g3an(garbage)
    evil = tmp_path / "evil.pth"
    torch.save({"block1.conv_s.0.bias": NotATensor()}, evil)
    with pytest.raises(CheckpointError, match="weights-only"):
        convert_g3an(evil)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(CheckpointError, match="state dict"):
        convert_g3an(listed)


def test_safetensors_input_and_eval_mode_loader(official_state, tmp_path):
    path = tmp_path / "g3an.safetensors"
    save_file(official_state, str(path))
    G = load_official_generator(path)
    assert not G.training
    cfg, state = convert_g3an(path)
    assert cfg == G.cfg
    assert all(torch.equal(G.state_dict()[k], v) for k, v in state.items())
