"""Demo section 2: FMR on the toy set - samples, continuous time, frequency bands, speeds.

Uses the bundled toy checkpoint (`vidgan/assets/fmr-toy-32.safetensors`, trained with vidgan on
a CPU; its provenance is stored inside) or, with `--train-minutes N`, a model trained now.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vidgan.demo import DemoContext, DemoItem, section
from vidgan.demo.common import (
    bundled_asset,
    demo_generator,
    labelled_grid,
    real_vs_fake_item,
    speed_plot,
)

BUNDLED = "fmr-toy-32.safetensors"
N_SPEED_VIDEOS = 48  # generated videos for the speed statistics (fast at 32 px)
BAND_EDGE = 3.0  # |w| edge between the low and high band (the preset's first band limit)


def bundled_checkpoint() -> Path:
    return bundled_asset(BUNDLED)


@section("FMR: frequency-based motion")
def fmr_demo(ctx: DemoContext) -> list[DemoItem]:
    from vidgan.io import to_uint8
    from vidgan.metrics.motion import speed_distance, toy_speeds
    from vidgan.sample import extrapolate, interpolate, sample

    G, origin = demo_generator(ctx, preset="fmr-toy-32", bundled=BUNDLED, run_name="train_run")
    gen = torch.Generator().manual_seed(ctx.seed)
    out = ctx.out
    items = []

    fake = sample(G, 8, n_frames=16, generator=gen).videos  # (8, 3, 16, h, w)
    items.append(
        real_vs_fake_item(
            ctx,
            "fmr_samples",
            fake,
            f"Top row real toy clips, bottom row FMR "
            f"samples from {origin}: 16 frames on the training time grid.",
        )
    )

    lat = G.sample_latents(4, generator=gen)
    dense = interpolate(G, lat, n_frames=16, factor=4)
    f = labelled_grid(out, "fmr_interp4x", dense.videos, [f"4x #{i}" for i in range(4)], 4)
    items.append(
        DemoItem(
            "4x time interpolation",
            f,
            "The same 16-frame span rendered at 64 "
            "frames: frames are functions of continuous time t, not a sequence.",
        )
    )
    longer = extrapolate(G, lat, n_frames=16, factor=2)
    f = labelled_grid(out, "fmr_extrap2x", longer.videos, [f"2x #{i}" for i in range(4)], 4)
    items.append(
        DemoItem(
            "2x extrapolation",
            f,
            "32 frames at the training frame rate: the "
            "second half lies past the time range the model was trained on.",
        )
    )

    base = sample(G, 4, n_frames=16, latents=lat).videos
    low = sample(G.with_edit(G.edit(edges=[BAND_EDGE], keep=[0])), 4, n_frames=16, latents=lat)
    high = sample(G.with_edit(G.edit(edges=[BAND_EDGE], keep=[1])), 4, n_frames=16, latents=lat)
    videos = torch.cat([base, low.videos, high.videos])
    labels = ["all bands"] * 4 + [f"|w|<{BAND_EDGE:g}"] * 4 + [f"|w|>={BAND_EDGE:g}"] * 4
    f = labelled_grid(out, "fmr_bands", videos, labels, nrow=4)
    items.append(
        DemoItem(
            "Low / high frequency band only",
            f,
            "Rows: all motion bands; only "
            f"sinusoids with |w| < {BAND_EDGE:g} (slow motion kept); only |w| >= "
            f"{BAND_EDGE:g} (fast motion kept). Same content and motion codes.",
        )
    )

    many = sample(G, N_SPEED_VIDEOS, n_frames=16, generator=gen, batch_size=16).videos
    fake_speeds = toy_speeds(to_uint8(many.clamp(-1, 1)))
    real_speeds = toy_speeds(to_uint8(ctx.shared["real_clips_all"]))
    dist = speed_distance(real_speeds, fake_speeds)
    speed_plot(out / "fmr_speeds.png", real_speeds, fake_speeds, dist)
    (out / "fmr_speeds.json").write_text(json.dumps(dist, indent=2) + "\n")
    ctx.shared["fmr_speed_distance"] = dist
    items.append(
        DemoItem(
            "Per-object speeds",
            "fmr_speeds.png",
            "Speeds of the three objects, "
            "tracked in their columns, in real clips and in generated videos: "
            f"fast (8 px/frame) objects are {dist['fast_share_real']:.0%} of real "
            f"and {dist['fast_share_fake']:.0%} of generated ones.",
        )
    )
    return items
