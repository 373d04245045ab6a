"""Demo section 1: the FMR toy dataset, written as frames, prepared into a zip of JPEG frames
(`vidgan data prepare --zip`) and read back as clips from the zip."""

from __future__ import annotations

import torch

from vidgan.demo import DemoContext, DemoItem, section

N_TOY_VIDEOS = 64  # enough real clips for the speed statistics, a few seconds to write
TOY_SIZE = 64
TOY_FRAMES = 32


@section("Toy data")
def toy_data(ctx: DemoContext) -> list[DemoItem]:
    from vidgan.data import ClipSpec, open_dataset
    from vidgan.data.prepare import prepare_dataset
    from vidgan.data.toy import write_toy_dataset
    from vidgan.io import make_grid, write_video

    root = ctx.out / "toy_data"
    write_toy_dataset(
        root, n_videos=N_TOY_VIDEOS, frames=TOY_FRAMES, size=TOY_SIZE, seed=ctx.seed, fmt="png"
    )
    prepared = ctx.out / "toy_data.zip"
    prepare_dataset(root, prepared, size=TOY_SIZE, to_zip=True, progress=False)
    ds = open_dataset(prepared, ClipSpec(frames=16, offset="start"), seed=ctx.seed)
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
            "object's shape, colour, speed and track), prepared into toy_data.zip (JPEG q95) and "
            "read back from it: three objects bounce vertically at 2, 4 or 8 px per frame.",
        )
    ]
