"""`vidgan demo`'s G3AN section: its grid cells and lengths are what their labels say.

The section's tensors (`section_videos`, same seed as the demo) are checked against videos made
one at a time from the codes the labels name; the written gifs (palette-quantised, ~2 levels off;
the mp4s' H.264 is ~5.5 levels off, as much as two cells of a weak model differ) are checked
against those tensors, each tile against every cell as the wrong-answer baseline.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidgan.demo
from vidgan.checkpoint import load_checkpoint
from vidgan.cli import main
from vidgan.demo.g3an import N_APPEARANCES, N_MOTIONS, bundled_checkpoint, section_videos
from vidgan.io import read_video, to_uint8
from vidgan.io.grid import LABEL_HEIGHT

PAD = 2
SIZE = 64
SEED = 0  # `vidgan demo`'s default --seed


def tiles(path, n: int, ncol: int) -> list[np.ndarray]:
    """The `n` labelled tiles `[T, 64, 64, 3]` (float) of a `make_grid` video file, row-major."""
    grid = read_video(path)
    out = []
    for k in range(n):
        r, q = divmod(k, ncol)
        y0, x0 = PAD + r * (SIZE + LABEL_HEIGHT + PAD) + LABEL_HEIGHT, PAD + q * (SIZE + PAD)
        out.append(grid[:, y0 : y0 + SIZE, x0 : x0 + SIZE].astype(np.float64))
    return out


def as_u8(video: torch.Tensor) -> np.ndarray:
    """`[3, T, H, W]` in [-1, 1] -> `[T, H, W, 3]` float of the uint8 values written."""
    return to_uint8(video.clamp(-1, 1)[None])[0].permute(1, 2, 3, 0).numpy().astype(np.float64)


@pytest.fixture(scope="module")
def made():
    G = load_checkpoint(bundled_checkpoint()).generator
    return G, section_videos(G, SEED)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(vidgan.demo, "_MODULES", ("data", "g3an"))
    try:
        assert main(["demo", "--out", str(out), "--seed", str(SEED)]) == 0
    finally:
        mp.undo()
    return out


def test_grid_cells_are_the_labelled_appearance_and_motion(made):
    G, m = made
    grid = m["grid"]
    lat = grid.latents
    app, mot = lat.content[::N_MOTIONS], lat.motion[:N_MOTIONS]  # rows i * M + j
    t = G.frame_times(16)
    for i in range(N_APPEARANCES):
        for j in range(N_MOTIONS):
            k = i * N_MOTIONS + j
            assert grid.names[k] == f"app{i} mot{j}"
            assert torch.equal(lat.content[k], app[i]) and torch.equal(lat.motion[k], mot[j])
            with torch.no_grad():
                alone = G(app[i : i + 1], mot[j : j + 1], t)[0]  # rendered on its own
            torch.testing.assert_close(grid.videos[k], alone, atol=1e-5, rtol=0)
    # motion and appearance codes both change the video (else the labels would mean nothing)
    v = grid.videos
    assert (v[0] - v[1]).abs().mean() > 1e-3 and (v[0] - v[N_MOTIONS]).abs().mean() > 1e-3


def test_lengths_are_every_supported_length_of_the_grid_appearances(made):
    G, m = made
    outs = m["lengths"]
    assert [o.videos.shape[2] for o in outs] == list(range(16, 49, 4))
    assert tuple(range(16, 49, 4)) == G.supported_lengths
    grid_app = m["grid"].latents.content[::N_MOTIONS]
    for o in outs:
        n = o.videos.shape[2]
        assert torch.equal(o.latents.content, grid_app)
        assert o.latents.motion.shape[2] == (n - 12) // 4  # T = 4 * T0 + 12
        torch.testing.assert_close(o.latents.motion, outs[-1].latents.motion[:, :, : (n - 12) // 4])


@pytest.mark.slow
def test_grid_file_holds_each_cell_in_its_labelled_place(demo_out, made):
    page = (demo_out / "index.html").read_text()
    for name in ("g3an_samples", "g3an_grid", "g3an_lengths"):
        assert f"{name}.gif" in page and (demo_out / f"{name}.mp4").stat().st_size > 1000
    n = N_APPEARANCES * N_MOTIONS
    written = tiles(demo_out / "g3an_grid.gif", n, N_MOTIONS)
    want = [as_u8(v) for v in made[1]["grid"].videos]
    err = np.array([[np.abs(w - x).mean() for x in want] for w in written])  # file x tensor
    print(f"own cell {err.diagonal().max():.1f}, nearest other cell ", end="")
    print(f"{min(np.delete(err[k], k).min() for k in range(n)):.1f} (uint8 levels)")
    assert err.diagonal().max() < 3
    assert list(err.argmin(axis=1)) == list(range(n))  # every tile is nearest its own cell


@pytest.mark.slow
def test_lengths_file_ends_each_video_after_its_length(demo_out, made):
    outs = made[1]["lengths"]
    n_len = len(outs)
    written = tiles(demo_out / "g3an_lengths.gif", N_APPEARANCES * n_len, n_len)
    assert written[0].shape[0] == 48
    for i in range(N_APPEARANCES):
        for j, o in enumerate(outs):
            tile, n = written[i * n_len + j], o.videos.shape[2]
            assert np.abs(tile[:n] - as_u8(o.videos[i])).mean() < 3  # the video, then
            assert n == 48 or np.abs(tile[n:] - 127.5).mean() < 2  # mid grey
            # the last real frame is not grey (the toy videos are dark with bright objects)
            assert np.abs(tile[n - 1] - 127.5).mean() > 20
