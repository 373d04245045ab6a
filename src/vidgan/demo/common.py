"""Helpers the model sections share: bundled checkpoints, training now, grids and speed plots."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidgan.demo import DemoContext, DemoItem
from vidgan.models.base import VideoGenerator


def bundled_asset(name: str) -> Path:
    """Path of a file shipped in `vidgan/assets` (the bundled toy checkpoints)."""
    return Path(str(resources.files("vidgan") / "assets" / name))


def demo_generator(
    ctx: DemoContext, *, preset: str, bundled: str, run_name: str
) -> tuple[VideoGenerator, str]:
    """(G, where it came from): trained now under `--train-minutes`, else the bundled file."""
    from vidgan.checkpoint import load_checkpoint
    from vidgan.train.dist import pick_device

    if ctx.train_minutes > 0:
        ckpt = train_preset_now(ctx, preset, ctx.train_minutes, run_name=run_name)
        origin = f"trained now for {ctx.train_minutes:g} minutes ({run_name}/)"
    else:
        ckpt = bundled_asset(bundled)
        origin = "the bundled toy checkpoint"
    return load_checkpoint(ckpt, device=pick_device(ctx.device)).generator, origin


def train_preset_now(
    ctx: DemoContext,
    preset: str,
    minutes: float,
    *,
    run_name: str,
    overrides: Sequence[str] = (),
) -> Path:
    """Train `preset` on the demo's toy data for `minutes`; return the run folder `run_name`.

    The run stops through `Trainer.request_stop` (a clean stop that writes a checkpoint), so
    the folder always holds a final checkpoint `load_checkpoint` reads.
    """
    from vidgan.train.config import resolve_run_config
    from vidgan.train.loop import Trainer

    run = resolve_run_config(
        None,
        preset=preset,
        overrides=[
            f"train.device={ctx.device}",
            "train.steps=1000000",
            "train.sample_every=0",
            "train.metrics=",  # the sections measure speeds themselves
            "train.best_metric=",
            *overrides,
        ],
    )
    outdir = ctx.out / run_name
    trainer = Trainer(run, outdir=outdir, data_path=str(ctx.shared["toy_root"]))
    timer = threading.Timer(minutes * 60, trainer.request_stop, args=("the demo's time budget",))
    timer.start()
    try:
        trainer.fit()
    finally:
        timer.cancel()
    return outdir


def labelled_grid(
    out: Path,
    name: str,
    videos: torch.Tensor,
    labels: list[str] | None,
    nrow: int,
    fps: int = 8,
) -> str:
    """Write `<name>.mp4` and `<name>.gif` of a captioned grid; return the gif's file name."""
    from vidgan.io import make_grid, write_video

    grid = make_grid(videos.clamp(-1, 1), nrow=nrow, labels=labels)
    write_video(out / f"{name}.mp4", grid, fps=fps)
    write_video(out / f"{name}.gif", grid, fps=fps)
    return f"{name}.gif"


def real_vs_fake_item(ctx: DemoContext, name: str, fake: torch.Tensor, text: str) -> DemoItem:
    """The "Generated vs real" item: 8 real toy clips (pooled to the fakes' size) over 8 fakes."""
    import torch.nn.functional as F

    real = ctx.shared["real_clips"][:8]
    real = F.adaptive_avg_pool3d(real, (real.shape[2], *fake.shape[-2:]))
    labels = ["real"] * len(real) + ["fake"] * len(fake)
    f = labelled_grid(ctx.out, name, torch.cat([real, fake]), labels, nrow=8)
    return DemoItem("Generated vs real", f, text)


def speed_plot(path: Path, real: np.ndarray, fake: np.ndarray, dist: dict[str, Any]) -> None:
    """Per-object toy speeds of real and generated clips: histogram and nearest-class bars."""
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
