from vidgan.cli import main
from vidgan.io import read_video


def test_demo_writes_an_index_and_real_clips(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "real_clips.gif" in page and "Real toy clips" in page
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
