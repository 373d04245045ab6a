"""`vidgan demo`'s DIGAN section: its files exist and their content has the promised properties.

Checks on the written mp4s (lossy, so with tolerances measured against a wrong-answer baseline):
the 4x up-sampled render holds the 32 px render on its shared grid points and, averaged back to
32 px, matches it much better than the other video; the wide (zoom-out) view holds the training
view in its centre; the diverse-motion videos share their first frame (the motion code only
enters through t), differ later, and their difference videos are non-zero.
"""

from __future__ import annotations

import numpy as np
import pytest

import vidgan.demo
from vidgan.cli import main
from vidgan.demo.digan import bundled_checkpoint
from vidgan.io import read_video
from vidgan.io.grid import LABEL_HEIGHT

PAD = 2


def tile(grid: np.ndarray, k: int, *, size: int, ncol: int, labelled: bool) -> np.ndarray:
    """Tile `k` `[T, size, size, 3]` (float) of a `make_grid` video read back as `[T, H, W, 3]`."""
    strip = LABEL_HEIGHT if labelled else 0
    r, q = divmod(k, ncol)
    y0, x0 = PAD + r * (size + strip + PAD) + strip, PAD + q * (size + PAD)
    return grid[:, y0 : y0 + size, x0 : x0 + size].astype(np.float64)


def pool(v: np.ndarray, s: int) -> np.ndarray:
    t, h, w, c = v.shape
    return v.reshape(t, h // s, s, w // s, s, c).mean(axis=(2, 4))


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    assert bundled_checkpoint().is_file()
    out = tmp_path_factory.mktemp("demo") / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(vidgan.demo, "_MODULES", ("data", "digan"))
    try:
        assert main(["demo", "--out", str(out)]) == 0
    finally:
        mp.undo()
    return out


@pytest.mark.slow
def test_digan_section_files_and_frame_counts(demo_out):
    page = (demo_out / "index.html").read_text()
    names = ("digan_samples", "digan_interp8x", "digan_extrap2x", "digan_up4x", "digan_zoomout")
    for name in (*names, "digan_diverse"):
        assert f"{name}.gif" in page and (demo_out / f"{name}.mp4").stat().st_size > 1000
    assert read_video(demo_out / "digan_interp8x.mp4").shape[0] == 16 * 8
    assert read_video(demo_out / "digan_extrap2x.mp4").shape[0] == 32
    # the 8x video holds the 16-frame video: every 8th dense frame is a training-grid frame
    grid = read_video(demo_out / "digan_interp8x.mp4")
    held, dense = (tile(grid, k, size=32, ncol=2, labelled=True) for k in (0, 1))
    on_grid = np.abs(held[::8] - dense[::8]).mean()
    between = np.abs(held[4::8] - dense[4::8]).mean()
    assert on_grid < 6 and on_grid < between


@pytest.mark.slow
def test_upsampled_video_matches_the_base_video(demo_out):
    grid = read_video(demo_out / "digan_up4x.mp4")  # rows: (base enlarged 4x, 4x render) x 2
    big = [tile(grid, 2 * i, size=128, ncol=2, labelled=False) for i in range(2)]
    fine = [tile(grid, 2 * i + 1, size=128, ncol=2, labelled=False) for i in range(2)]

    def on_grid(i: int, j: int) -> float:
        # with one upsampling stage, fine pixel (4i+3, 4j) = base pixel (i, j) for odd i, even
        # j (DIGANGenerator.upsampled); base pixel (i, j) is the centre of its enlarged block
        return np.abs(fine[i][:, 7::8, 0::8] - big[j][:, 6::8, 2::8]).mean()

    def pooled(i: int, j: int) -> float:  # everywhere: the 4x render averaged back to 32 px
        return np.abs(pool(fine[i], 4) - pool(big[j], 4)).mean()

    for dist, ratio in ((on_grid, 0.25), (pooled, 0.5)):
        same = max(dist(i, i) for i in range(2))
        other = min(dist(i, 1 - i) for i in range(2))
        print(f"{dist.__name__}: same video {same:.1f}, other video {other:.1f} (uint8 levels)")
        assert same < ratio * other
    assert max(on_grid(i, i) for i in range(2)) < 6  # equal before mp4 coding


@pytest.mark.slow
def test_zoomed_out_view_holds_the_training_view(demo_out):
    grid = read_video(demo_out / "digan_zoomout.mp4")  # pairs (framed base, 1.5x view) x 4
    same, shifted = [], []
    for i in range(4):
        base = tile(grid, 2 * i, size=48, ncol=4, labelled=False)[:, 8:40, 8:40]
        wide = tile(grid, 2 * i + 1, size=48, ncol=4, labelled=False)
        same.append(np.abs(wide[:, 8:40, 8:40] - base).mean())
        shifted.append(np.abs(wide[:, 4:36, 4:36] - base).mean())  # a wrong placement
    print(f"centre vs base {np.round(same, 1)}, shifted by 4 px {np.round(shifted, 1)}")
    assert max(same) < 6  # equal before mp4 coding
    # per video, far closer than a wrong placement (+1 level: some samples are nearly black)
    assert all(a < 0.5 * b + 1 for a, b in zip(same, shifted))


@pytest.mark.slow
def test_diverse_motion_shares_the_first_frame_and_moves_differently(demo_out):
    grid = read_video(demo_out / "digan_diverse.mp4")  # 4 motions, then 4 difference videos
    videos = [tile(grid, k, size=32, ncol=4, labelled=True) for k in range(4)]
    diffs = [tile(grid, 4 + k, size=32, ncol=4, labelled=True) for k in range(4)]
    first = max(np.abs(videos[0][0] - v[0]).mean() for v in videos[1:])
    last = min(np.abs(videos[0][-1] - v[-1]).mean() for v in videos[1:])
    print(f"first frames differ by {first:.1f}, last frames by {last:.1f}")
    assert first < 4 and last > 2 * first + 1
    grey = diffs[0][0]  # x_0 - x_0 = 0 is mid grey
    assert np.abs(grey - 127.5).mean() < 4
    assert min(np.abs(d[-1] - d[0]).mean() for d in diffs) > 1
