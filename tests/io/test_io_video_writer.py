"""VideoWriter: a video written in pieces is the video `write_video` writes in one go."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidgan.errors import DataError
from vidgan.io import read_video, write_video
from vidgan.io.video import VideoWriter


def _video(n_t: int = 7, h: int = 10, w: int = 14) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, n_t, h, w, generator=g) * 2 - 1  # float [3, T, H, W]


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ""])
def test_pieces_give_the_same_frames_as_one_shot(tmp_path, suffix):
    video = _video()
    whole = write_video(tmp_path / f"whole{suffix}", video, fps=5)
    with VideoWriter(tmp_path / f"parts{suffix}", fps=5) as writer:
        for s in range(0, 7, 3):  # pieces of 3, 3 and 1 frames
            writer.write(video[:, s : s + 3])
    assert writer.count == 7
    a, b = read_video(whole), read_video(tmp_path / f"parts{suffix}")
    assert a.shape[0] == 7 and np.array_equal(a, b)


def test_png_folder_drops_frames_of_an_older_longer_video(tmp_path):
    write_video(tmp_path / "v", _video(9), fps=5)
    with VideoWriter(tmp_path / "v") as writer:
        writer.write(_video(4))
    assert len(list((tmp_path / "v").glob("*.png"))) == 4


def test_bad_suffix_and_changing_frame_size_are_refused(tmp_path):
    with pytest.raises(DataError, match="unknown suffix"):
        VideoWriter(tmp_path / "v.avi")
    with VideoWriter(tmp_path / "v.mp4") as writer:
        writer.write(_video(2))
        with pytest.raises(DataError, match="frame size changed"):
            writer.write(_video(2, h=12))
