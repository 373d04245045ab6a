"""Safe import of official DIGAN snapshots: a synthetic snapshot of the real structure, and
malicious pickles that must be refused without running anything.

The synthetic snapshot is built here from the fixture state dicts and constructor kwargs, with
the release's pickle structure (README section 6): persistent objects as REDUCE of
`torch_utils.persistence._reconstruct_persistent_obj(meta)` whose `module_src` is code that
would create a file if executed, tensors as torch pickles them, EasyDict kwargs, a Beta
distribution, numpy scalars and plain Sequential/ModuleList containers.
"""

from __future__ import annotations

import builtins
import json
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from vidgan.convert import get_converter
from vidgan.convert.digan import (
    config_from_kwargs,
    convert_discriminator_state_dict,
    convert_generator_state_dict,
    load_snapshot,
    read_official_digan,
)
from vidgan.errors import CheckpointError
from vidgan.models.digan import DIGANConfig, DIGANGenerator

CONTAINERS = {"motion_mlp": nn.Sequential, "extra_convs": nn.ModuleList}


@pytest.fixture
def fake_release(monkeypatch, tmp_path):
    """Install stand-ins for the release's torch_utils.persistence and dnnlib.util modules."""
    calls: list[str] = []
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # what the real loader would run
        calls.append("reconstruct")
        exec(meta["module_src"])

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    for name, mod in (
        ("torch_utils", types.ModuleType("torch_utils")),
        ("torch_utils.persistence", persistence),
        ("dnnlib", types.ModuleType("dnnlib")),
        ("dnnlib.util", util),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    marker = tmp_path / "code_was_executed.txt"
    src = f"open({str(marker)!r}, 'w').write('pwned')\n"
    return types.SimpleNamespace(
        reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict, calls=calls,
        marker=marker, src=src,
    )  # fmt: skip


class _Persistent:
    """Pickles like a @persistent_class instance: REDUCE(_reconstruct_persistent_obj, (meta,))."""

    def __init__(self, release, class_name, state):
        self.release, self.meta = (
            release,
            dict(
                type="class", version=6, module_src=release.src, class_name=class_name, state=state
            ),
        )

    def __reduce__(self):
        return (self.release.reconstruct, (self.meta,))


def _module_state(params, buffers, children, **extra):
    return {
        "training": False,
        "_parameters": OrderedDict(params),
        "_buffers": OrderedDict(buffers),
        "_non_persistent_buffers_set": set(),
        "_modules": OrderedDict(children),
        "_forward_hooks": OrderedDict(),
        "_init_args": (),
        **extra,
    }


def _build_tree(release, flat, root_name, init_kwargs):
    """Nest a flat official state dict into persistent records (containers as plain modules)."""
    tree: dict = {}
    for key, t in flat.items():
        *path, leaf = key.split(".")
        node = tree
        for p in path:
            node = node.setdefault(p, {})
        node.setdefault("__tensors__", {})[leaf] = t

    def make(node, name, extra):
        tensors = node.get("__tensors__", {})
        params = {
            k: nn.Parameter(v, requires_grad=False)
            for k, v in tensors.items()
            if not k.endswith(("resample_filter", "w_avg"))
        }
        buffers = {k: v for k, v in tensors.items() if k not in params}
        children = {k: make(v, k, {}) for k, v in node.items() if k != "__tensors__"}
        state = _module_state(params, buffers, children, **extra)
        if name in CONTAINERS:  # plain torch containers are pickled with NEWOBJ + BUILD
            obj = CONTAINERS[name].__new__(CONTAINERS[name])
            obj.__dict__.update(state)
            return obj
        return _Persistent(release, "Module", state)

    extra = {
        "_init_kwargs": init_kwargs,
        "weight_gain": np.float64(0.125),  # numpy scalars, as in the release
        "dist1": torch.distributions.Beta(2.0, 1.0),
        "size": torch.Size([2, 3]),
    }
    return make(tree, root_name, extra)


def _easy(release, d):
    return release.EasyDict(
        {k: _easy(release, v) if isinstance(v, dict) else v for k, v in d.items()}
    )


@pytest.fixture
def snapshot(fake_release, parity_dir, tmp_path):
    root = parity_dir / "digan"
    if not root.is_dir():
        pytest.skip(f"no DIGAN fixtures in {root}")
    meta = json.loads((root / "config.json").read_text())
    g_sd = load_file(root / "generator_state_dict.safetensors")
    d_sd = load_file(root / "discriminator_state_dict.safetensors")
    g_kwargs = dict(_easy(fake_release, meta["generator"]["init_kwargs"]))
    g_kwargs["cfg"] = meta["generator"]["cfg_unresolved_as_passed"]  # plain dict, unresolved
    d_kwargs = _easy(fake_release, meta["discriminator"]["init_kwargs"])
    data = {
        "training_set_kwargs": _easy(
            fake_release, {"class_name": "VideoFolder", "resolution": 128}
        ),
        "G": _build_tree(fake_release, g_sd, "G", g_kwargs),
        "D": _build_tree(fake_release, d_sd, "D", d_kwargs),
        "G_ema": _build_tree(fake_release, g_sd, "G_ema", g_kwargs),
        "augment_pipe": None,
    }
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    return types.SimpleNamespace(path=path, meta=meta, g_sd=g_sd, d_sd=d_sd, root=root)


@pytest.mark.slow  # the first torch.load(weights_only=True) imports torch.distributed (~2 s)
def test_synthetic_snapshot_imports_without_running_its_code(snapshot, fake_release):
    raw = snapshot.path.read_bytes()
    assert b"_reconstruct_persistent_obj" in raw and b"code_was_executed" in raw
    cfg, states = read_official_digan(snapshot.path)
    assert not fake_release.marker.exists() and fake_release.calls == []
    want_cfg = config_from_kwargs(
        dict(snapshot.meta["generator"]["init_kwargs"],
             cfg=snapshot.meta["generator"]["cfg_unresolved_as_passed"]),
        snapshot.meta["discriminator"]["init_kwargs"],
    )  # fmt: skip
    assert cfg == want_cfg
    assert (cfg.resolution, cfg.fmm_rank, cfg.emb_size_low, cfg.emb_size_high) == (128, 3, 16, 24)
    assert set(states) == {"G_ema", "G", "video", "image"}
    g_want = convert_generator_state_dict(snapshot.g_sd, cfg)
    d_want = convert_discriminator_state_dict(snapshot.d_sd, cfg)
    for name, want in (("G_ema", g_want), ("G", g_want), *d_want.items()):
        assert states[name].keys() == want.keys()
        for k in want:
            assert torch.equal(states[name][k], want[k]), f"{name}: {k}"
    # the imported weights reproduce an official output (case d: one frame per video)
    G = DIGANGenerator(cfg).eval()
    G.load_state_dict(states["G_ema"])
    io = load_file(snapshot.root / "io.safetensors")
    with torch.no_grad():
        video = G.synthesize(io["d.ws"], io["z_m"], io["d.Ts"].reshape(2, -1))
    torch.testing.assert_close(video[:, :, 0], io["d.frames"], atol=1e-4, rtol=0)


def test_registered_converter(snapshot):
    out = get_converter("digan")(snapshot.path)
    assert out.model == "digan" and out.config.resolution == 128
    assert "synthesis.b4.coord_fuser.xyaffine.weight" in out.state_dict
    assert out.state_dict["synthesis.b128.conv0.weight"].ndim == 2  # 1x1 conv squeezed


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):  # calling builtins.open(target, "w") would create the file
        return (builtins.open, (str(self.target), "w"))


def test_malicious_pickle_is_refused_without_running_anything(tmp_path):
    target = tmp_path / "created_by_pickle.txt"
    path = tmp_path / "network-snapshot-evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(target)}))
    with pytest.raises(CheckpointError, match=r"refusing.*\bopen\b|\bopen\b.*refusing"):
        load_snapshot(path)
    assert not target.exists()


def test_code_nested_inside_a_network_state_is_refused(fake_release, tmp_path):
    target = tmp_path / "nested.txt"
    state = _module_state({}, {}, {}, _init_kwargs={}, payload=_Evil(target))
    path = tmp_path / "snap.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Persistent(fake_release, "Generator", state)}))
    with pytest.raises(CheckpointError, match="refusing"):
        read_official_digan(path)
    assert not target.exists() and not fake_release.marker.exists()


def test_unreadable_inputs_give_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_official_digan(tmp_path / "missing.pkl")
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match=r"junk\.pkl"):
        read_official_digan(junk)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="G_ema"):
        read_official_digan(plain)


def test_official_full_size_kwargs_give_the_paper_config(parity_dir):
    """The fixture kwargs with the official values restored (config.json lists every change)."""
    root = parity_dir / "digan"
    if not root.is_dir():
        pytest.skip(f"no DIGAN fixtures in {root}")
    meta = json.loads((root / "config.json").read_text())
    g = json.loads(json.dumps(meta["generator"]["init_kwargs"]))
    g["synthesis_kwargs"].update(channel_base=32768, channel_max=512)
    cfg = json.loads(json.dumps(meta["generator"]["cfg_unresolved_as_passed"]))
    for dotted, change in meta["generator"]["cfg_changes_vs_official_digan_yml"].items():
        *path, leaf = dotted.split(".")
        node = cfg
        for p in path:
            node = node[p]
        node[leaf] = change["official"]
    d = dict(meta["discriminator"]["init_kwargs"], channel_base=32768, channel_max=512)
    assert config_from_kwargs(dict(g, cfg=cfg), d) == DIGANConfig()
    with pytest.raises(CheckpointError, match=r"fmm\.activation"):
        bad = json.loads(json.dumps(cfg))
        bad["fmm"]["activation"] = "bias"
        config_from_kwargs(dict(g, cfg=bad), d)
