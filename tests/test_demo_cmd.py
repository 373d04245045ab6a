"""`vidgan demo`: the README's first command."""

import json
import zipfile

import numpy as np
import pytest

import vidgan.demo
from vidgan.cli import main
from vidgan.demo.fmr import bundled_checkpoint
from vidgan.io import read_video

FMR_FILES = ("fmr_samples", "fmr_interp4x", "fmr_extrap2x", "fmr_bands")


def test_data_section_writes_an_index_and_real_clips(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vidgan.demo, "_MODULES", ("data",))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "real_clips.gif" in page and "Real toy clips" in page
    assert zipfile.ZipFile(out / "toy_data.zip").namelist()  # clips came from the prepared zip
    grid = read_video(out / "real_clips.mp4")  # (T, H, W, 3)
    assert grid.shape[0] == 16
    # toy videos are black with bright objects: a few percent of bright pixels, not noise
    bright = (grid.max(axis=-1) > 80).mean()
    assert 0.005 < bright < 0.2
    assert str(out) in capsys.readouterr().out
    # a second run replaces its own earlier output
    assert main(["demo", "--out", str(out)]) == 0


def test_demo_never_replaces_a_folder_it_did_not_make(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    assert main(["demo", "--out", str(out)]) == 2
    assert (out / "thesis.txt").read_text() == "precious"
    assert "not made by vidgan demo" in capsys.readouterr().err


def _check_fmr_outputs(out):
    page = (out / "index.html").read_text()
    for name in FMR_FILES:
        assert f"{name}.gif" in page and (out / f"{name}.mp4").exists()
    assert "fmr_speeds.png" in page and (out / "fmr_speeds.png").stat().st_size > 10_000
    interp = read_video(out / "fmr_interp4x.mp4")
    extrap = read_video(out / "fmr_extrap2x.mp4")
    assert interp.shape[0] == 64 and extrap.shape[0] == 32
    # the band rows (all / low only / high only) are different videos
    bands = read_video(out / "fmr_bands.mp4").astype(int)
    cell = (bands.shape[1] - 2) // 3  # make_grid: 2 px padding, then 3 equal rows
    rows = [bands[:, 2 + k * cell : 2 + (k + 1) * cell] for k in range(3)]
    assert np.abs(rows[0] - rows[1]).mean() > 1 and np.abs(rows[0] - rows[2]).mean() > 1
    return page


@pytest.mark.slow
def test_full_demo_from_the_bundled_checkpoint(tmp_path):
    assert bundled_checkpoint().is_file()
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    page = _check_fmr_outputs(out)
    assert "bundled toy checkpoint" in page
    speeds = json.loads((out / "fmr_speeds.json").read_text())
    assert speeds["hist_real"]["8"] > 0.25  # the real toy set: a third of objects at 8 px/frame


@pytest.mark.slow
def test_demo_can_train_from_scratch(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--train-minutes", "0.1"]) == 0
    page = _check_fmr_outputs(out)
    assert "trained now for 0.1 minutes" in page
    assert any((out / "train_run" / "checkpoints").glob("step-*/COMPLETE"))
