"""`vidgan generate` end to end on a tiny FMR model file: files on disk equal the Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vidgan.checkpoint import load_checkpoint, save_model_file
from vidgan.cli import main
from vidgan.config import from_dict, load_preset
from vidgan.io import to_uint8
from vidgan.models.registry import get_model
from vidgan.sample import interpolate, sample


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    spec = get_model("fmr")
    cfg = from_dict(spec.config_cls, load_preset("fmr-tiny")["model"])
    torch.manual_seed(0)
    G = spec.build_generator(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_model_file(path, model_name="fmr", config=cfg, generator=G.state_dict())
    return path


def generate(ckpt, out, flags: str = "") -> int:
    """`vidgan generate CKPT --out OUT FLAGS...` through the real CLI entry point."""
    return main(["generate", str(ckpt), "--out", str(out), *flags.split()])


def _frames(folder) -> np.ndarray:
    files = sorted(folder.glob("*.png"))
    return np.stack([np.asarray(Image.open(f)) for f in files])  # (T, H, W, 3)


def _u8(video: torch.Tensor) -> np.ndarray:
    return to_uint8(video).permute(1, 2, 3, 0).numpy()  # (3, T, H, W) -> (T, H, W, 3)


def test_png_output_is_the_api_output_in_the_stylegan_v_layout(model_file, tmp_path):
    out = tmp_path / "png"
    assert generate(model_file, out, "--n 3 --frames 5 --seed 7 --format png") == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 3
    G = load_checkpoint(model_file).generator
    want = sample(G, 3, n_frames=5, generator=torch.Generator().manual_seed(7)).videos
    for folder, video in zip(folders, want):
        got = _frames(folder)
        assert got.shape == (5, 16, 16, 3)
        assert np.abs(got.astype(int) - _u8(video).astype(int)).max() <= 1
    record = json.loads((out / "generate.json").read_text())
    assert record["model"] == "fmr" and record["seed"] == 7


def test_bf16_precision_is_the_api_under_autocast_and_close_to_fp32(model_file, tmp_path):
    """`--precision bf16` renders under bf16 autocast (the API's own frames under autocast),
    on average a few 8-bit levels from fp32; generate.json records the precision used."""
    out = tmp_path / "bf16"
    assert generate(model_file, out, "--n 2 --frames 4 --seed 3 --format png --precision bf16") == 0
    G = load_checkpoint(model_file).generator
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = sample(G, 2, n_frames=4, generator=torch.Generator().manual_seed(3)).videos
    fp32 = sample(G, 2, n_frames=4, generator=torch.Generator().manual_seed(3)).videos
    folders = sorted(q for q in out.iterdir() if q.is_dir())
    for folder, video, ref in zip(folders, want, fp32):
        got = _frames(folder).astype(int)
        assert np.abs(got - _u8(video).astype(int)).max() <= 1
        diff = np.abs(got - _u8(ref).astype(int))
        assert diff.mean() < 4  # measured 1-2 levels (max 12-40 on this untrained model)
    record = json.loads((out / "generate.json").read_text())
    assert record["options"]["precision"] == "bf16"
    assert record["options"]["precision_used"] == "bf16"


def test_interpolate_mode_keeps_every_fourth_frame(model_file, tmp_path):
    out = tmp_path / "interp"
    assert (
        generate(model_file, out, "--n 1 --frames 4 --mode interpolate --factor 4 --format png")
        == 0
    )
    dense = _frames(next(p for p in out.iterdir() if p.is_dir()))
    G = load_checkpoint(model_file).generator
    base = sample(G, 1, n_frames=4, generator=torch.Generator().manual_seed(0)).videos[0]
    assert dense.shape[0] == 16
    assert np.abs(dense[::4].astype(int) - _u8(base).astype(int)).max() <= 1


def test_band_edit_flags_match_the_edit_api(model_file, tmp_path):
    out = tmp_path / "low"
    assert generate(model_file, out, "--n 2 --frames 4 --freq-edges 3 --keep low --format png") == 0
    G = load_checkpoint(model_file).generator
    lat = G.sample_latents(2, generator=torch.Generator().manual_seed(0))
    low = G.with_edit(G.edit(edges=[3.0], keep=[0]))
    want = interpolate(low, lat, n_frames=4, factor=1).videos
    full = sample(G, 2, n_frames=4, latents=lat).videos
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    for folder, w in zip(folders, want):
        got = _frames(folder).astype(int)
        assert np.abs(got - _u8(w).astype(int)).max() <= 1
    assert (want - full).abs().max() > 1e-3  # removing the high band changed the videos


def test_spectrum_and_bad_flags(model_file, tmp_path, capsys):
    assert main(["generate", str(model_file), "--spectrum"]) == 0
    text = capsys.readouterr().out
    assert "band generator 0" in text and "band generator 1" in text
    assert generate(model_file, tmp_path / "x", "--freq-edges 3 --keep middle") == 2
    assert "--keep 'middle' is not a band" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert generate(model_file, busy) == 2
    assert (busy / "keep.txt").read_text() == "mine"
    assert generate(tmp_path / "nope.safetensors", tmp_path / "y") == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def digan_file(tmp_path_factory):
    spec = get_model("digan")
    cfg = from_dict(spec.config_cls, load_preset("digan-tiny")["model"])
    torch.manual_seed(0)
    G = spec.build_generator(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "digan.safetensors"
    save_model_file(path, model_name="digan", config=cfg, generator=G.state_dict())
    return path


def test_digan_space_modes_follow_the_coordinate_grid(digan_file, tmp_path):
    base_dir, up_dir, zoom_dir = tmp_path / "base", tmp_path / "up", tmp_path / "zoom"
    common = "--n 1 --frames 3 --format png --seed 2"
    assert generate(digan_file, base_dir, common) == 0
    assert generate(digan_file, up_dir, f"--mode upsample --scale 2 {common}") == 0
    assert generate(digan_file, zoom_dir, f"--mode zoomout --zoom 1.5 {common}") == 0
    base = _frames(next(p for p in base_dir.iterdir() if p.is_dir())).astype(int)
    up = _frames(next(p for p in up_dir.iterdir() if p.is_dir())).astype(int)
    zoom = _frames(next(p for p in zoom_dir.iterdir() if p.is_dir()))
    assert up.shape[1:3] == (2 * base.shape[1], 2 * base.shape[2])
    assert zoom.shape[1:3] == (24, 24)
    # one upsampling stage (8 -> 16 px): base pixel (i, j) with i odd, j even sits at
    # (2i + 1, 2j) of the 2x render, where every stage sees the same coordinates
    i, j = np.arange(1, base.shape[1], 2), np.arange(0, base.shape[2], 2)
    same = up[:, 2 * i + 1][:, :, 2 * j]
    assert np.abs(same - base[:, i][:, :, j]).max() <= 1
    assert np.abs(up[:, ::2, ::2] - base).max() > 2  # elsewhere the denser grid is new detail


def test_diverse_mode_and_model_abilities(digan_file, model_file, tmp_path, capsys):
    out = tmp_path / "div"
    flags = "--mode diverse --appearances 1 --motions 3 --frames 4 --format png"
    assert generate(digan_file, out, flags) == 0
    videos = [_frames(out / f"app0_mot{j}").astype(int) for j in range(3)]
    diffs = [_frames(out / f"app0_diff_mot{j}").astype(int) for j in range(3)]
    assert max(np.abs(videos[0] - v).max() for v in videos[1:]) > 2  # motions differ
    for d in diffs:
        assert np.abs(d[0] - 128).max() <= 1  # nothing has moved at frame 0
    assert generate(model_file, tmp_path / "x", "--mode upsample") == 2
    assert "coordinate-based generator" in capsys.readouterr().err
