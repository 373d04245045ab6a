"""Demo section 4: G3AN on the toy set - appearance and motion codes, and variable length.

Uses the bundled toy checkpoint (`vidgan/assets/g3an-toy-64.safetensors`, trained with vidgan on
a CPU; its provenance is stored inside) or, with `--train-minutes N`, a model trained now. G3AN
draws an appearance code z_a and a motion code z_m of T0 steps and renders T = 4*T0 + 12 frames,
so the section shows every appearance with every motion (labelled correctly for N != M, where
the release mislabels its files) and every appearance at every length 16..48.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from vidgan.demo import DemoContext, DemoItem, section
from vidgan.demo.common import bundled_asset, demo_generator, labelled_grid, real_vs_fake_item
from vidgan.models.base import Latents, VideoGenerator

if TYPE_CHECKING:
    from vidgan.sample import VideoOutput

BUNDLED = "g3an-toy-64.safetensors"
PRESET = "g3an-toy-64"
N_APPEARANCES = 2  # rows of the grid (and of the lengths grid)
N_MOTIONS = 3  # columns: N != M on purpose (the release's file names are wrong then)
ENDED = 0.0  # mid grey: the frames of a lengths-grid tile after its video has ended


def bundled_checkpoint() -> Path:
    return bundled_asset(BUNDLED)


def length_videos(G: VideoGenerator, latents: Latents) -> list[VideoOutput]:
    """Each video of `latents` (motion codes of the longest length) at every supported length.

    Length T uses the first T0 = (T - 12) / 4 steps of the motion code, so the lengths share
    their appearance and the start of their motion code.
    """
    from vidgan.sample import sample

    outs = []
    for n_frames in G.supported_lengths:
        t0 = (n_frames - 12) // 4
        lat = Latents(content=latents.content, motion=latents.motion[:, :, :t0])
        out = sample(G, latents.batch_size, n_frames=n_frames, latents=lat)
        out.names = [f"app{i} {n_frames}f" for i in range(latents.batch_size)]
        outs.append(out)
    return outs


def lengths_grid_videos(outs: list[VideoOutput]) -> tuple[torch.Tensor, list[str]]:
    """Row per appearance, column per length; shorter videos end in mid grey (`ENDED`)."""
    longest = max(o.videos.shape[2] for o in outs)
    padded = [
        F.pad(o.videos, (0, 0, 0, 0, 0, longest - o.videos.shape[2]), value=ENDED) for o in outs
    ]
    videos = torch.stack(padded, dim=1).flatten(0, 1)  # (A, L, 3, T, H, W) -> (A*L, ...)
    names = [outs[j].names[i] for i in range(outs[0].videos.shape[0]) for j in range(len(outs))]
    return videos, names


def section_videos(G: VideoGenerator, seed: int) -> dict[str, VideoOutput | list[VideoOutput]]:
    """What the section renders, from one seeded generator in this order: 8 samples, the
    appearance x motion grid, the lengths (the grid's appearances, each with a new motion code
    of the longest length's 9 steps)."""
    from vidgan.sample import appearance_motion_grid, sample

    gen = torch.Generator().manual_seed(seed)
    samples = sample(G, 8, n_frames=16, generator=gen)
    grid = appearance_motion_grid(G, N_APPEARANCES, N_MOTIONS, n_frames=16, generator=gen)
    grid.names = [f"app{i} mot{j}" for i in range(N_APPEARANCES) for j in range(N_MOTIONS)]
    longest = G.sample_latents(N_APPEARANCES, n_frames=max(G.supported_lengths), generator=gen)
    app = Latents(content=grid.latents.content[::N_MOTIONS], motion=longest.motion)
    lengths = length_videos(G, app)  # the grid's appearances, each with a new motion code
    return {"samples": samples, "grid": grid, "lengths": lengths}


@section("G3AN: appearance, motion and length")
def g3an_demo(ctx: DemoContext) -> list[DemoItem]:
    G, origin = demo_generator(ctx, preset=PRESET, bundled=BUNDLED, run_name="train_run_g3an")
    made = section_videos(G, ctx.seed)
    out = ctx.out
    items = []

    fake = made["samples"].videos  # (8, 3, 16, 64, 64)
    items.append(
        real_vs_fake_item(
            ctx,
            "g3an_samples",
            fake,
            f"Top row real toy clips, bottom row G3AN samples from {origin}: 16 frames at "
            "64x64 from a one-step motion code.",
        )
    )

    grid = made["grid"]
    f = labelled_grid(out, "g3an_grid", grid.videos, grid.names, nrow=N_MOTIONS)
    items.append(
        DemoItem(
            f"{N_APPEARANCES} appearances x {N_MOTIONS} motions",
            f,
            "Row i uses appearance code z_a number i, column j motion code z_m number j, for "
            "every pair (labels appI motJ); the release names these files wrongly when the "
            "two counts differ.",
        )
    )

    videos, names = lengths_grid_videos(made["lengths"])
    lengths = G.supported_lengths
    f = labelled_grid(out, "g3an_lengths", videos, names, nrow=len(lengths))
    items.append(
        DemoItem(
            f"Lengths {min(lengths)}..{max(lengths)}",
            f,
            f"Each appearance of the grid above (row) at every supported length T = 4*T0 + 12 "
            f"({', '.join(map(str, lengths))} frames) from the first T0 steps of one motion "
            "code; a tile turns mid grey when its video has ended.",
        )
    )
    return items
