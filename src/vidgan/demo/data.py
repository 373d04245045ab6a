"""Demo section 1: the FMR toy dataset, written, prepared as a zip and read back as clips."""

from __future__ import annotations

import torch

from vidgan.demo import DemoContext, DemoItem, section

N_TOY_VIDEOS = 64  # enough real clips for the speed statistics, a few seconds to write
TOY_SIZE = 64
TOY_FRAMES = 32


@section("Toy data")
def toy_data(ctx: DemoContext) -> list[DemoItem]:
    from vidgan.data import ClipSpec, open_dataset
    from vidgan.data.toy import write_toy_dataset
    from vidgan.io import make_grid, write_video

    root = ctx.out / "toy_data"
    write_toy_dataset(
        root, n_videos=N_TOY_VIDEOS, frames=TOY_FRAMES, size=TOY_SIZE, seed=ctx.seed, fmt="png"
    )
    ds = open_dataset(root, ClipSpec(frames=16, offset="start"), seed=ctx.seed)
    clips = torch.stack([ds[i]["video"] for i in range(len(ds))]).transpose(1, 2)  # (N,3,T,H,W)
    ctx.shared["toy_root"] = root
    ctx.shared["real_clips_all"] = clips
    ctx.shared["real_clips"] = clips[:16]
    grid = make_grid(clips[:16], nrow=8)
    write_video(ctx.out / "real_clips.mp4", grid, fps=8)
    write_video(ctx.out / "real_clips.gif", grid, fps=8)
    return [
        DemoItem(
            "Real toy clips",
            "real_clips.gif",
            f"16 of the {N_TOY_VIDEOS} toy videos written to toy_data/ (labels.json holds every "
            "object's shape, colour, speed and track): three objects bounce vertically at 2, 4 "
            "or 8 px per frame.",
        )
    ]
