"""How FMR trains (official `trainers.py`, run.sh): what its image and video discriminators see.

* Image D: one random frame of each real clip; for fakes, single frames rendered at random
  on-grid times (the release's `sample_images(on_grid=True)`) from their own latents.
* Video D: whole 16-frame clips average-pooled to `vd_resize_ratio` of the size (run.sh 0.5),
  pooled *before* D so R1 acts on the pooled input as in the release; or, with the delta video D,
  two frames of the clip and their time gap (`vidgan.data.pairs` "fmr" scheme).
* Non-saturating logistic loss, G loss = image term + video term; R1 gamma 10 every 16 steps;
  Adam lr 0.002, betas (0, 0.99); EMA half-life 10 kimg; DiffAugment color, translation, cutout
  (x-flip as `flip`), with one set of parameters per clip.

Fakes are rendered once per step and judged by the G update and (detached) by the D update, as
in the release (`reuse_fakes`); the shared loop runs the G update first, so the D update sees the
fakes of G before its update, as the release's does, while the G update is judged by D before
its update (the release's by D after).

One deliberate difference: the release gives the image D 4 and the video D 2 samples per GPU;
here both see the step's batch (set `train.batch`), which keeps the loop model-agnostic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vidgan.data.clips import ClipSpec
from vidgan.data.pairs import sample_pair_indices, sample_pair_times
from vidgan.models.base import VideoGenerator
from vidgan.models.registry import attach_recipe
from vidgan.train.recipe import BatchRandom, DInput, OptimSpec, TrainRecipe


class FMRRecipe(TrainRecipe):
    """FMR's training recipe (see the module docstring for the sources)."""

    loss: ClassVar[str] = "softplus"
    r1_gamma: ClassVar[float] = 10.0  # cfg.py --r1 10
    r1_interval: ClassVar[int] = 16  # cfg.py --d_reg_every 16
    g_optim: ClassVar[OptimSpec] = OptimSpec(lr=0.002, betas=(0.0, 0.99))  # train.py
    d_optim: ClassVar[OptimSpec] = OptimSpec(lr=0.002, betas=(0.0, 0.99))  # train.py
    ema_kimg: ClassVar[float] = 10.0  # cfg.py --ema_kimg 10
    augment: ClassVar[str] = "color,translation,cutout,flip"  # run.sh --DiffAugment
    reuse_fakes: ClassVar[bool] = True  # trainers.py: one batch of fakes for the D and G updates

    @classmethod
    def default_clip_spec(cls, model_cfg: Any) -> ClipSpec:
        return ClipSpec(frames=model_cfg.video_length, size=model_cfg.image_size)

    @property
    def pair_mode(self) -> bool:
        return self.model_cfg.video_discriminator == "delta"

    def _pool(self, video: Tensor) -> Tensor:
        """Video-D input size: avg_pool3d(1, k, k) with k = 1 / vd_resize_ratio (run.sh 2)."""
        k = round(video.shape[-1] / self.model_cfg.video_d_size)
        return video if k == 1 else F.avg_pool3d(video, (1, k, k))

    def _aug(self, rand: BatchRandom, x: Tensor) -> Tensor:
        return rand.augment(self.augment_pipe, x) if self.augment_pipe else x

    def real_inputs(
        self, video: Tensor, batch: Mapping[str, Tensor], rand: BatchRandom
    ) -> dict[str, DInput]:
        n = video.shape[2]
        k = rand.randint(0, n).to(video.device)  # one random frame per clip for the image D
        frames = video[torch.arange(video.shape[0], device=video.device), :, k]  # (B, 3, H, W)
        out = {"image": DInput(self._aug(rand, frames))}
        if self.pair_mode:
            i1, i2, dt = rand.draw(
                lambda b, g: sample_pair_indices(n, "fmr", generator=g, batch_size=b)
            )
            rows = torch.arange(video.shape[0], device=video.device)
            pair = torch.stack([video[rows, :, i1], video[rows, :, i2]], dim=2)  # (B, 3, 2, H, W)
            out["video"] = DInput(self._aug(rand, self._pool(pair)), {"delta": dt})
        else:
            out["video"] = DInput(self._aug(rand, self._pool(video)))
        return out

    def fake_inputs(
        self, G: VideoGenerator, rand: BatchRandom, labels: Tensor | None = None
    ) -> dict[str, DInput]:
        n = self.n_frames
        lat_img = rand.latents(G, n_frames=1)
        t_img = G.frame_times(n).to(G.device)[rand.randint(0, n).to(G.device)][:, None]  # (B, 1)
        frames = G.generate(lat_img, t_img)[:, :, 0]  # (B, 3, H, W)
        out = {"image": DInput(self._aug(rand, frames))}
        lat_vid = rand.latents(G, n_frames=n)
        if self.pair_mode:
            t1, t2, dt = rand.draw(
                lambda b, g: sample_pair_times(b, "fmr", generator=g, n_frames=n)
            )
            pair = G.generate(lat_vid, torch.stack([t1, t2], dim=1))  # (B, 3, 2, H, W)
            out["video"] = DInput(self._aug(rand, self._pool(pair)), {"delta": dt})
        else:
            video = G.generate(lat_vid, G.frame_times(n).to(G.device))
            out["video"] = DInput(self._aug(rand, self._pool(video)))
        return out


attach_recipe("fmr", FMRRecipe)
