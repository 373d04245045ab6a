"""DIGAN parity: the official state dicts in our modules reproduce the official outputs.

Driven only by the fixture files (config.json, *.safetensors in <parity_dir>/digan): the config
comes from the official constructor kwargs through the converter, every input and expected output
from io.safetensors / discriminator_io.safetensors. Tolerances are the fixture README's.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from vidgan.convert.digan import (
    config_from_kwargs,
    convert_discriminator_state_dict,
    convert_generator_state_dict,
)
from vidgan.models.digan import DIGANGenerator, MotionDiscriminator, build_discriminators

FRAME_ATOL = 1e-4  # README section 5: frames atol 1e-4, ws 1e-5, D logits 1e-5
WS_ATOL = 1e-5
LOGIT_ATOL = 1e-5


@pytest.fixture(scope="module")
def fx(parity_dir):
    root = parity_dir / "digan"
    if not root.is_dir():
        pytest.skip(f"no DIGAN fixtures in {root}")
    meta = json.loads((root / "config.json").read_text())
    g_kwargs = dict(
        meta["generator"]["init_kwargs"], cfg=meta["generator"]["cfg_unresolved_as_passed"]
    )
    cfg = config_from_kwargs(g_kwargs, meta["discriminator"]["init_kwargs"])
    torch.set_num_threads(1)
    G = DIGANGenerator(cfg).eval()
    G.load_state_dict(convert_generator_state_dict(
        load_file(root / "generator_state_dict.safetensors"), cfg))  # fmt: skip
    Ds = build_discriminators(cfg)
    d_states = convert_discriminator_state_dict(
        load_file(root / "discriminator_state_dict.safetensors"), cfg
    )
    for name, D in Ds.items():
        D.load_state_dict(d_states[name])
        D.eval()
    return {
        "meta": meta,
        "cfg": cfg,
        "G": G,
        "D": Ds,
        "io": load_file(root / "io.safetensors"),
        "dio": load_file(root / "discriminator_io.safetensors"),
    }


def _frames_bt(frames: torch.Tensor, batch: int) -> torch.Tensor:
    """Official [(b t), 3, H, W] rows -> our [B, 3, T, H, W]."""
    n, c, h, w = frames.shape
    return frames.reshape(batch, n // batch, c, h, w).permute(0, 2, 1, 3, 4)


def _times(ts: torch.Tensor, batch: int) -> torch.Tensor:
    return ts.reshape(batch, -1)  # [(b t), 1, 1, 1] -> [B, T]


def test_config_follows_the_fixture(fx):
    cfg, derived = fx["cfg"], fx["meta"]["generator"]["derived"]
    assert fx["G"].num_ws == derived["num_ws"]
    assert [f"b{r}" for r in derived["block_resolutions"]] == fx["G"].synthesis.block_names
    for name, ch in derived["channels"].items():
        assert cfg.channels(int(name[1:])) == ch
    assert cfg.fourier_scale == pytest.approx(derived["fourier_scale"])
    assert cfg.motion_sigma == derived["motion_sigma"]
    n_params = sum(p.numel() for p in fx["G"].parameters())
    n_dead = sum(
        math.prod(s[0]) for k, s in fx["meta"]["generator"]["state_dict"].items()
        if k.endswith("resample_filter") or k == "mapping.w_avg"
    )  # fmt: skip
    assert n_params == fx["meta"]["generator"]["numel"] - n_dead


@torch.no_grad()
def test_mapping_and_truncation(fx):
    G, io = fx["G"], fx["io"]
    w = G.mapping_for(io["z"])
    torch.testing.assert_close(w[:, None].expand_as(io["ws"]), io["ws"], atol=WS_ATOL, rtol=0)
    wt = G.mapping_for(io["z"], truncation_psi=0.7)
    torch.testing.assert_close(
        wt[:, None].expand_as(io["ws_trunc0.7"]), io["ws_trunc0.7"], atol=WS_ATOL, rtol=0
    )


@torch.no_grad()
@pytest.mark.parametrize("case", ["a", "b", "c", "d"])
def test_generator_frames(fx, case):
    """a: 16 standard frames; b: any times (extrapolation too); c: train pairs; d: per-layer ws."""
    G, io = fx["G"], fx["io"]
    batch = io["z"].shape[0]
    ws = io["d.ws"] if case == "d" else io["ws"]
    t = _times(io[f"{case}.Ts"], batch)
    if case == "b":
        torch.testing.assert_close(t[0], io["b.times"])
    video = G.synthesize(ws, io["z_m"], t)
    torch.testing.assert_close(
        video, _frames_bt(io[f"{case}.frames"], batch), atol=FRAME_ATOL, rtol=0
    )


@torch.no_grad()
def test_training_pair_intermediates(fx):
    """Case c, block by block: fuser vectors, Fourier features and the running RGB skip image."""
    G, io = fx["G"], fx["io"]
    batch = io["z"].shape[0]
    t = _times(io["c.Ts"], batch)
    torch.testing.assert_close(t[:, 1] - t[:, 0], io["c.dT"].reshape(-1))
    assert bool((t[:, 1] >= t[:, 0]).all())
    ws = io["ws"]
    synth = G.synthesis
    for name, (w_fuser, _, _) in zip(synth.block_names, synth.w_index):
        fuser = getattr(synth, name).coord_fuser
        tag = f"c.debug.{name}.input" if name == synth.block_names[0] else f"c.debug.{name}"
        if fuser is None:
            continue
        w = ws[:, w_fuser]
        rows = t.shape[1]
        m = fuser.xyaffine(w).repeat_interleave(rows, 0)
        torch.testing.assert_close(m, io[f"{tag}.xyaffine_out"], atol=1e-5, rtol=0)
        code = fuser.motion_code(w, io["z_m"])
        torch.testing.assert_close(
            code.repeat_interleave(rows, 0), io[f"{tag}.affine_out"], atol=1e-5, rtol=0
        )
        h = fuser.phase_shift(code, t).reshape(-1, fuser.emb_size)
        torch.testing.assert_close(h, io[f"{tag}.motion_mlp_out"], atol=1e-5, rtol=0)
    trace: dict[str, torch.Tensor] = {}
    G.render(G.prepare(ws, io["z_m"]), t, trace=trace)
    first = synth.block_names[0]
    feats = trace[f"{first}.fourier"][0]  # video 0: (T, 2E, n*n)
    ref = io[f"c.debug.{first}.input_out"]
    torch.testing.assert_close(feats.reshape(ref.shape), ref, atol=1e-5, rtol=0)
    for key in io:
        if key.startswith("c.debug.") and key.endswith(".img_out"):
            name = key.split(".")[2]
            got = trace[f"{name}.img"][0]
            torch.testing.assert_close(got.reshape(io[key].shape), io[key], atol=FRAME_ATOL, rtol=0)


@torch.no_grad()
def test_discriminators(fx):
    D, dio, io = fx["D"], fx["dio"], fx["io"]
    vid = dio["vid"]
    b = vid.shape[0]
    # samples 0, 1 are the case-c fakes: rebuild them with our pair helper
    frames = _frames_bt(io["c.frames"], io["z"].shape[0])
    dt = io["c.dT"].reshape(-1)
    torch.testing.assert_close(MotionDiscriminator.from_video(frames, dt), vid[:2])
    img = vid[:, :6].reshape(b * 2, 3, *vid.shape[2:])  # b (t c) h w -> (b t) c h w
    torch.testing.assert_close(D["video"](vid), dio["x_vid"], atol=LOGIT_ATOL, rtol=0)
    torch.testing.assert_close(D["image"](img), dio["x_img"], atol=LOGIT_ATOL, rtol=0)
    # batch composition changes the minibatch-std groups
    torch.testing.assert_close(D["video"](vid[:2]), dio["B2.x_vid"], atol=LOGIT_ATOL, rtol=0)
    torch.testing.assert_close(D["image"](img[:4]), dio["B2.x_img"], atol=LOGIT_ATOL, rtol=0)
    for name, x in (("video", vid), ("image", img)):
        h = None
        for block in D[name].block_names:
            h = getattr(D[name], block)(h, x)
        ref = dio[f"debug.{name}D.b8.x_out"]
        torch.testing.assert_close(h, ref, atol=LOGIT_ATOL, rtol=0)
    # real pairs: dt = (f1 - f0) / (n - 1) is the constant last channel
    pairs = dio["real.frame_pairs"]
    dt_real = (pairs[:, 1] - pairs[:, 0]) / (fx["cfg"].n_frames - 1)
    torch.testing.assert_close(vid[2:, 6], dt_real[:, None, None].expand_as(vid[2:, 6]))
