"""Parity with the official G3AN code: every case of the fixture folder, read from the files.

The folder is `$VIDGAN_FIXTURES/g3an` (see tests/conftest.py); nothing about the public set is
hard-coded, so another set with the same layout (other seeds) passes too. Tolerances are the
ones the fixture README suggests for a float32 port.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from vidgan.convert.g3an import (
    convert_discriminator_state_dict,
    discriminator_key_table,
    load_official_discriminator,
    load_official_generator,
)
from vidgan.models.g3an import G3ANGenerator

G_ATOL = 1e-5  # README: generator outputs atol=1e-5, rtol=0
D_ATOL = 1e-6  # README: D outputs atol=1e-6


@pytest.fixture(scope="module")
def g3an_dir(parity_dir: Path) -> Path:
    d = parity_dir / "g3an"
    if not d.is_dir():
        pytest.skip(f"no G3AN fixtures in {parity_dir}")
    return d


@pytest.fixture(scope="module")
def io(g3an_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(g3an_dir / "io.safetensors"))


def _official_config(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["config"])


def _generator_cases(io: dict[str, torch.Tensor]) -> list[tuple[str, str, str]]:
    """(za key, zm key, expected key): `out<sfx>` is G(za<sfx> or za, zm<sfx>)."""
    cases = []
    for key in sorted(io):
        if key.startswith("out"):
            sfx = key[3:]
            cases.append((f"za{sfx}" if f"za{sfx}" in io else "za", f"zm{sfx}", key))
    assert cases, "io.safetensors holds no out* tensors"
    return cases


def _run(G: G3ANGenerator, za: torch.Tensor, zm: torch.Tensor) -> torch.Tensor:
    """The official (B, C, 1, 1, 1) / (B, C, T0, 1, 1) codes through our public forward."""
    z_app, z_mot = za.flatten(1), zm.flatten(2)
    t = G.frame_times(4 * z_mot.shape[2] + 12)
    with torch.no_grad():
        return G(z_app, z_mot, t)


@pytest.fixture(scope="module")
def official_g(g3an_dir: Path) -> G3ANGenerator:
    return load_official_generator(load_file(str(g3an_dir / "generator_state_dict.safetensors")))


@pytest.mark.slow
def test_generator_reproduces_official_outputs_from_pth_files(g3an_dir, io, tmp_path):
    """Both fixture state dicts (plain, DataParallel) saved as .pth, loaded weights-only."""
    files = sorted(g3an_dir.glob("generator_state_dict*.safetensors"))
    assert len(files) >= 2
    for path in files:
        pth = tmp_path / f"{path.stem}.pth"
        torch.save(load_file(str(path)), pth)
        G = load_official_generator(pth)
        official = _official_config(path)
        cfg = G.cfg
        assert (cfg.c_a, cfg.c_m, cfg.ch, cfg.mode, cfg.use_attention) == (
            official["c_a"],
            official["c_m"],
            official["ch"],
            official["mode"],
            official["use_attention"],
        )
        assert cfg.attention_layout == "release" and not G.training
        for za, zm, out in _generator_cases(io):
            got = _run(G, io[za], io[zm])
            torch.testing.assert_close(got, io[out], atol=G_ATOL, rtol=0, msg=f"{path.name}: {out}")


def test_generator_intermediates_match_reference_info(g3an_dir, io, official_g):
    """Every block output (h_s, h_v, h_t), F-SA and the final output vs reference_info.json."""
    info = json.loads((g3an_dir / "reference_info.json").read_text())["intermediates_eval_za_zm"]
    got: dict[str, torch.Tensor] = {}
    hooks = []
    for i, block in enumerate(official_g.blocks, start=1):

        def keep(_m, _inp, out, i=i):
            got.update({f"block{i}.h_s": out[0], f"block{i}.h_v": out[1], f"block{i}.h_t": out[2]})

        hooks.append(block.register_forward_hook(keep))
    hooks.append(official_g.fsa.register_forward_hook(lambda _m, _i, out: got.update(fsa=out)))
    try:
        got["to_rgb"] = _run(official_g, io["za"], io["zm"])
    finally:
        for h in hooks:
            h.remove()
    assert set(info) <= set(got)
    for name, ref in info.items():
        x = got[name].double()
        assert list(x.shape) == ref["shape"], name
        for stat, value in (("mean", x.mean()), ("std", x.std()), ("max", x.max())):
            assert abs(float(value) - ref[stat]) < G_ATOL, f"{name} {stat}"
        first8 = x[0].flatten()[:8]
        torch.testing.assert_close(
            first8, torch.tensor(ref["first8_of_sample0"], dtype=torch.float64), atol=G_ATOL, rtol=0
        )


def test_intended_layout_differs_only_through_the_attention(io, official_g):
    """Released weights under the intended F-SA layout give another video; with both attention
    gains at 0 the two layouts agree exactly, so the layout is the only difference."""
    cfg = dataclasses.replace(official_g.cfg, attention_layout="intended")
    intended = G3ANGenerator(cfg).eval()
    intended.load_state_dict(official_g.state_dict())
    za, zm, out = _generator_cases(io)[0]
    io = {k: io[k][:1] for k in (za, zm, out)}  # one video is enough here
    assert (_run(intended, io[za], io[zm]) - io[out]).abs().max() > 1e-2
    release = G3ANGenerator(official_g.cfg).eval()
    release.load_state_dict(official_g.state_dict())
    for G in (intended, release):
        G.fsa.temporal.gamma.data.zero_()
        G.fsa.spatial.gamma.data.zero_()
    torch.testing.assert_close(_run(intended, io[za], io[zm]), _run(release, io[za], io[zm]))
    assert (_run(release, io[za], io[zm]) - io[out]).abs().max() > 1e-2  # attention matters


def _discriminators(g3an_dir: Path) -> dict[str, torch.nn.Module]:
    state = load_file(str(g3an_dir / "discriminators.safetensors"))
    out = {}
    for prefix, kind in (("VD.", "video"), ("ID.", "image")):
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        out[prefix[:2]] = load_official_discriminator(sub, kind)
    return out


def test_discriminators_reproduce_official_outputs(g3an_dir, io):
    d_io = load_file(str(g3an_dir / "discriminators_io.safetensors"))
    Ds = _discriminators(g3an_dir)
    video, image = Ds["VD"], Ds["ID"]
    with torch.no_grad():
        checks = {
            "vd_output": video(d_io["vd_input"]),
            "id_output": image(d_io["id_input"]),
            "vd_output_on_generator_out": video(io["out"]),
        }
        for key in d_io:
            m = re.fullmatch(r"id_output_on_generator_out_frame(\d+)", key)
            if m:
                checks[key] = image(io["out"][:, :, int(m.group(1))])
    assert any(k.startswith("id_output_on_generator_out_frame") for k in checks)
    for key, got in checks.items():
        torch.testing.assert_close(got, d_io[key], atol=D_ATOL, rtol=0, msg=key)


def test_discriminators_train_mode_power_iteration(g3an_dir):
    """One train-mode call: the same u, v updates and the same logits as the official one."""
    d_io = load_file(str(g3an_dir / "discriminators_io.safetensors"))
    Ds = _discriminators(g3an_dir)
    for name, kind, x in (("VD", "video", "vd_input"), ("ID", "image", "id_input")):
        D = Ds[name].train()
        with torch.no_grad():
            got = D(d_io[x])
        torch.testing.assert_close(
            got, d_io[f"{name.lower()}_output_train_mode"], atol=D_ATOL, rtol=0
        )
        table = discriminator_key_table(kind)
        ours = D.state_dict()
        prefix = f"{name}_after_train_step."
        keys = [k for k in d_io if k.startswith(prefix)]
        assert keys
        for key in keys:
            torch.testing.assert_close(ours[table[key[len(prefix) :]]], d_io[key], msg=key)


def test_discriminator_state_dicts_round_trip(g3an_dir):
    """Converted D weights are the fixture tensors, renamed (nothing else touched)."""
    state = load_file(str(g3an_dir / "discriminators.safetensors"))
    for prefix, kind in (("VD.", "video"), ("ID.", "image")):
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        dp = {f"module.{k}": v for k, v in sub.items()}  # as saved by the release (DataParallel)
        ch, ours = convert_discriminator_state_dict(dp, kind)
        assert ch == sub["net.0.bias"].shape[0]
        table = discriminator_key_table(kind)
        assert set(table) == set(sub)
        for k, v in sub.items():
            assert torch.equal(ours[table[k]], v)
