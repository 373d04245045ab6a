"""Run logging on rank 0: a tqdm status line, `stats.jsonl`, TensorBoard scalars and grids.

Sample grids use only the Generator contract (`sample_latents`, `frame_times`, `generate`) and
are written as `<outdir>/samples/step-XXXXXXXX.mp4` (vidgan.io) and, in TensorBoard, as one
image per grid with time running left to right (TensorBoard's video panel needs moviepy).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidgan.models.base import Latents, VideoGenerator


class RunLogger:
    """Progress bar, JSONL and TensorBoard; every method is a no-op when `enabled` is False."""

    def __init__(
        self,
        outdir: Path,
        *,
        enabled: bool,
        total_steps: int,
        start_step: int,
        tensorboard: bool = True,
        progress: bool = True,
    ) -> None:
        self.enabled = enabled
        self.outdir = outdir
        self.total = total_steps
        self.bar = None
        self.tb = None
        self._jsonl = None
        self._t0 = time.perf_counter()
        if not enabled:
            return
        self._jsonl = open(outdir / "stats.jsonl", "a")  # noqa: SIM115 (closed in close())
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(outdir / "tb"))
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total_steps,
                initial=start_step,
                unit="step",
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def step(
        self,
        step: int,
        kimg: float,
        losses: Mapping[str, float],
        *,
        sec_per_kimg: float | None = None,
        peak_gb: float | None = None,
    ) -> None:
        """Advance the bar by one step; show kimg, sec/kimg, peak memory and the losses."""
        if self.bar is not None:
            self.bar.update(1)
            info = {"kimg": f"{kimg:.2f}"}
            if sec_per_kimg is not None:
                info["s/kimg"] = f"{sec_per_kimg:.1f}"
            if peak_gb is not None:
                info["mem"] = f"{peak_gb:.1f}G"
            for k, v in losses.items():
                if k.count("/") == 1:
                    info[k.split("/")[-1]] = f"{v:.3f}"
            self.bar.set_postfix(info, refresh=False)

    def stats(self, step: int, kimg: float, values: Mapping[str, float]) -> None:
        """One JSONL line and the TensorBoard scalars."""
        if not self.enabled:
            return
        row = {
            "step": step,
            "kimg": round(kimg, 4),
            "time": round(time.perf_counter() - self._t0, 3),
        }
        row.update({k: float(v) for k, v in values.items()})
        assert self._jsonl is not None
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, float(v), global_step=step)

    def write(self, text: str) -> None:
        """A message that does not break the progress bar."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def grid(self, step: int, videos: Tensor) -> Path | None:
        """Write a sample grid `[N, 3, T, H, W]` as mp4 and to TensorBoard."""
        if not self.enabled:
            return None
        from vidgan.io import make_grid, write_video

        nrow = max(1, round(videos.shape[0] ** 0.5))
        grid = make_grid(videos.float().clamp(-1, 1).cpu(), nrow=nrow)  # (3, T, H', W')
        path = write_video(self.outdir / "samples" / f"step-{step:08d}.mp4", grid)
        if self.tb is not None:
            strip = torch.cat(list(grid.unbind(1)), dim=-1)  # (3, H', T*W')
            self.tb.add_image("samples", (strip + 1) / 2, global_step=step)
        return path

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self._jsonl is not None:
            self._jsonl.close()


def fixed_latents(G: VideoGenerator, *, count: int, n_frames: int, seed: int) -> Latents:
    """The latents of the sample grid: the same for a given seed, also after resume."""
    gen = torch.Generator(device=G.device)
    gen.manual_seed(seed)
    return G.sample_latents(count, n_frames=n_frames, generator=gen)


@torch.no_grad()
def sample_videos(G: VideoGenerator, latents: Latents, n_frames: int, chunk: int = 8) -> Tensor:
    """`G.generate` on the fixed latents in chunks, frames at `G.frame_times(n_frames)`."""
    t = G.frame_times(n_frames).to(G.device)
    outs = []
    for i in range(0, latents.batch_size, chunk):
        outs.append(G.generate(latents.select(slice(i, i + chunk)), t).cpu())
    return torch.cat(outs)


def format_profile(times: Mapping[str, list[float]]) -> str:
    """A table of mean milliseconds per step for each phase."""
    steps = max((len(v) for v in times.values()), default=0)
    total = sum(sum(v) for v in times.values())
    lines = [f"per-step time over {steps} steps (mean ms, share):"]
    for name, vals in times.items():
        ms = 1000 * sum(vals) / max(1, steps)
        share = 100 * sum(vals) / total if total else 0.0
        lines.append(f"  {name:<10} {ms:10.2f} ms {share:6.1f} %")
    lines.append(f"  {'total':<10} {1000 * total / max(1, steps):10.2f} ms")
    return "\n".join(lines)


def json_default(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON-able: {type(v).__name__}")
