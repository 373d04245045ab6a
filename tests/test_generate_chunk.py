"""`vidgan generate --chunk`: long videos written chunk by chunk equal one-shot generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vidgan.checkpoint import save_model_file
from vidgan.cli import main
from vidgan.config import from_dict, load_preset
from vidgan.io import read_video
from vidgan.models.registry import get_model


def _model_file(tmp_path_factory, name: str, preset: str):
    spec = get_model(name)
    cfg = from_dict(spec.config_cls, load_preset(preset)["model"])
    torch.manual_seed(0)
    G = spec.build_generator(cfg)
    path = tmp_path_factory.mktemp("ckpt") / f"{name}.safetensors"
    save_model_file(path, model_name=name, config=cfg, generator=G.state_dict())
    return path


@pytest.fixture(scope="module")
def digan_file(tmp_path_factory):
    return _model_file(tmp_path_factory, "digan", "digan-tiny")


def generate(ckpt, out, flags: str) -> int:
    return main(["generate", str(ckpt), "--out", str(out), *flags.split()])


def _frames(folder) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f)) for f in sorted(folder.glob("*.png"))]).astype(int)


@pytest.mark.parametrize(
    "mode", ["random", "extrapolate --factor 5", "interpolate --factor 3", "upsample --scale 2"]
)
def test_chunked_png_frames_equal_one_shot(digan_file, tmp_path, mode):
    flags = f"--n 3 --batch 2 --frames 4 --seed 3 --format png --mode {mode}"
    assert generate(digan_file, tmp_path / "one", flags) == 0
    assert generate(digan_file, tmp_path / "chunk", f"{flags} --chunk 3") == 0
    folders = sorted(p.name for p in (tmp_path / "one").iterdir() if p.is_dir())
    assert len(folders) == 3
    assert folders == sorted(p.name for p in (tmp_path / "chunk").iterdir() if p.is_dir())
    for name in folders:
        a, b = _frames(tmp_path / "one" / name), _frames(tmp_path / "chunk" / name)
        assert a.shape == b.shape and a.shape[0] >= 4
        assert np.abs(a - b).max() <= 1  # floats agree to 1e-5; uint8 rounding may flip once
        assert (a != b).mean() < 1e-3


def test_chunked_mp4_grid_and_diverse_streams(digan_file, tmp_path):
    flags = "--mode diverse --appearances 1 --motions 2 --frames 4 --seed 1 --grid"
    assert generate(digan_file, tmp_path / "one", flags) == 0
    assert generate(digan_file, tmp_path / "chunk", f"{flags} --chunk 3") == 0
    names = sorted(p.name for p in (tmp_path / "one").glob("*.mp4"))
    assert names == sorted(p.name for p in (tmp_path / "chunk").glob("*.mp4"))
    assert "app0_diff_mot1.mp4" in names and "app0_grid.mp4" in names
    for name in names:
        a, b = read_video(tmp_path / "one" / name), read_video(tmp_path / "chunk" / name)
        assert a.shape == b.shape and a.shape[0] == 4
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 0.5  # same frames, same encoder
    diff = read_video(tmp_path / "chunk" / "app0_diff_mot0.mp4").astype(int)
    assert np.abs(diff[0] - 128).max() <= 3  # x_0 comes from the first chunk


def test_chunk_needs_a_continuous_time_model(tmp_path_factory, tmp_path, capsys):
    g3an = _model_file(tmp_path_factory, "g3an", "g3an-tiny")
    assert generate(g3an, tmp_path / "x", "--n 1 --chunk 4") == 2
    err = capsys.readouterr().err
    assert "--chunk needs a continuous-time model" in err and "G3AN" in err
    assert not (tmp_path / "x").exists()
    assert generate(g3an, tmp_path / "y", "--n 1 --chunk -1") == 2
    assert "--chunk must be" in capsys.readouterr().err
