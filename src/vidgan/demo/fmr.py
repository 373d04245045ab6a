"""Demo section 2: FMR on the toy set - samples, continuous time, frequency bands, speeds.

Uses the bundled toy checkpoint (`vidgan/assets/fmr-toy-32.safetensors`, trained with vidgan on
a CPU; its provenance is stored inside) or, with `--train-minutes N`, a model trained now.
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidgan.demo import DemoContext, DemoItem, section

BUNDLED = "fmr-toy-32.safetensors"
N_SPEED_VIDEOS = 48  # generated videos for the speed statistics (fast at 32 px)
BAND_EDGE = 3.0  # |w| edge between the low and high band (the preset's first band limit)


def bundled_checkpoint() -> Path:
    return Path(str(resources.files("vidgan") / "assets" / BUNDLED))


def train_now(ctx: DemoContext, minutes: float) -> Path:
    """Train fmr-toy-32 on the demo's toy data for `minutes`; return the final checkpoint."""
    from vidgan.train.config import resolve_run_config
    from vidgan.train.loop import Trainer

    run = resolve_run_config(
        None,
        preset="fmr-toy-32",
        overrides=[
            f"train.device={ctx.device}",
            "train.steps=1000000",
            "train.sample_every=0",
            "train.metrics=",  # the section measures speeds itself
            "train.best_metric=",
        ],
    )
    outdir = ctx.out / "train_run"
    trainer = Trainer(run, outdir=outdir, data_path=str(ctx.shared["toy_root"]))
    timer = threading.Timer(minutes * 60, trainer.request_stop, args=("the demo's time budget",))
    timer.start()
    try:
        trainer.fit()
    finally:
        timer.cancel()
    return outdir


def _labelled_grid(out: Path, name: str, videos: torch.Tensor, labels: list[str], nrow: int):
    from vidgan.io import make_grid, write_video

    grid = make_grid(videos.clamp(-1, 1), nrow=nrow, labels=labels)
    write_video(out / f"{name}.mp4", grid, fps=8)
    write_video(out / f"{name}.gif", grid, fps=8)
    return f"{name}.gif"


def _speed_plot(path: Path, real: np.ndarray, fake: np.ndarray, dist: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.arange(0, 13, 0.5)
    a.hist(real[np.isfinite(real)], bins=bins, alpha=0.6, density=True, label="real")
    a.hist(fake[np.isfinite(fake)], bins=bins, alpha=0.6, density=True, label="generated")
    a.set_xlabel("estimated speed (px/frame at 64 px)")
    a.set_ylabel("density")
    a.legend()
    a.set_title(f"per-object speeds (W1 = {dist['wasserstein1']:.2f})")
    keys = ["static", "2", "4", "8", "other", "lost"]
    x = np.arange(len(keys))
    b.bar(x - 0.2, [dist["hist_real"][k] for k in keys], 0.4, label="real")
    b.bar(x + 0.2, [dist["hist_fake"][k] for k in keys], 0.4, label="generated")
    b.set_xticks(x, keys)
    b.set_ylabel("share of objects")
    b.set_title("nearest speed class")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@section("FMR: frequency-based motion")
def fmr_demo(ctx: DemoContext) -> list[DemoItem]:
    from vidgan.checkpoint import load_checkpoint
    from vidgan.io import to_uint8
    from vidgan.metrics.motion import speed_distance, toy_speeds
    from vidgan.sample import extrapolate, interpolate, sample
    from vidgan.train.dist import pick_device

    device = pick_device(ctx.device)
    if ctx.train_minutes > 0:
        ckpt = train_now(ctx, ctx.train_minutes)
        origin = f"trained now for {ctx.train_minutes:g} minutes (train_run/)"
    else:
        ckpt = bundled_checkpoint()
        origin = "the bundled toy checkpoint"
    loaded = load_checkpoint(ckpt, device=device)
    G = loaded.generator
    gen = torch.Generator().manual_seed(ctx.seed)
    out = ctx.out
    items = []

    fake = sample(G, 8, n_frames=16, generator=gen).videos  # (8, 3, 16, h, w)
    real = ctx.shared["real_clips"][:8]
    real = F.adaptive_avg_pool3d(real, (real.shape[2], *fake.shape[-2:]))
    videos = torch.cat([real, fake])
    labels = ["real"] * 8 + ["fake"] * 8
    f = _labelled_grid(out, "fmr_samples", videos, labels, nrow=8)
    items.append(
        DemoItem(
            "Generated vs real",
            f,
            f"Top row real toy clips, bottom row FMR "
            f"samples from {origin}: 16 frames on the training time grid.",
        )
    )

    lat = G.sample_latents(4, generator=gen)
    dense = interpolate(G, lat, n_frames=16, factor=4)
    f = _labelled_grid(out, "fmr_interp4x", dense.videos, [f"4x #{i}" for i in range(4)], 4)
    items.append(
        DemoItem(
            "4x time interpolation",
            f,
            "The same 16-frame span rendered at 64 "
            "frames: frames are functions of continuous time t, not a sequence.",
        )
    )
    longer = extrapolate(G, lat, n_frames=16, factor=2)
    f = _labelled_grid(out, "fmr_extrap2x", longer.videos, [f"2x #{i}" for i in range(4)], 4)
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
    f = _labelled_grid(out, "fmr_bands", videos, labels, nrow=4)
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
    _speed_plot(out / "fmr_speeds.png", real_speeds, fake_speeds, dist)
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
