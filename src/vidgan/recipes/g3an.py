"""How G3AN trains (github:wyhsirius/g3an-project `trainer.py`, `train.py`, `cfg.py`,
`dataset.py`): what its image and video discriminators see.

* Video D: the whole 16-frame clip (real: stride 2 or 3 at random, random start, 64x64).
* Image D: one random frame of each clip, real and fake alike.
* BCE-with-logits loss, non-saturating G (targets 1 for fakes); G loss = video + image term.
* Adam lr 2e-4, betas (0.5, 0.999) for G and both Ds; no R1, no EMA, no augmentation (the
  release has none of them). Labels go to G and both Ds when the model is conditional (ours).

Fakes are rendered twice per step by default, as the shared loop does for every model (G step
with gradients, then D step without, as StyleGAN2-ADA does), where the release renders one batch
and uses it for both updates. A deliberate, harmless choice: the D step sees fakes of the updated
G, and the generator's BatchNorm running statistics update twice per step from two batches of
codes (they only matter in eval mode and converge to the same averages). `train.reuse_fakes=true`
gives the release's behaviour: the D step then judges the G step's clips and frames, detached
(one generator forward less per step, BatchNorm updated once, the D step sees fakes of G before
its update, like the release's). The paper preset `g3an-paper-64` turns it on (the release's
settings); the recipe default stays off because the toy learning test
(`tests/recipes/test_recipes_g3an_learns.py`, calibrated with two renders) learns less with it:
session 3 (60 steps, seed 1) pixel W1 132.8 -> 73.2 with reuse, 63.9 without (limit 66.4);
session 5 (70 steps, batch 4, the loop-level option) W1 ratios 0.379 / 0.478 on seeds 0 / 1
with reuse against 0.339 / 0.388 without (limit 0.5).

Differences from the release: it picks one frame index per batch (`random.randint`) where we
pick one per clip (the same marginal, less correlated); the two renders per step (above; one in
the paper preset); and it runs the D step before the G step.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from vidgan.data.clips import ClipSpec
from vidgan.errors import ConfigError
from vidgan.models.g3an import RESOLUTION, SUPPORTED_LENGTHS
from vidgan.models.registry import attach_recipe
from vidgan.train.recipe import BatchRandom, DInput, OptimSpec, TrainRecipe


class G3ANRecipe(TrainRecipe):
    """G3AN's training recipe (see the module docstring for the sources)."""

    loss: ClassVar[str] = "bce"  # trainer.py nn.BCEWithLogitsLoss
    r1_gamma: ClassVar[float] = 0.0  # no gradient penalty in the release
    r1_interval: ClassVar[int] = 0
    g_optim: ClassVar[OptimSpec] = OptimSpec(lr=2e-4, betas=(0.5, 0.999))  # cfg.py, train.py
    d_optim: ClassVar[OptimSpec] = OptimSpec(lr=2e-4, betas=(0.5, 0.999))  # both Ds
    ema_kimg: ClassVar[float] = 0.0  # no EMA: G_ema follows G
    ema_rampup: ClassVar[float] = 0.0
    augment: ClassVar[str] = ""
    reuse_fakes: ClassVar[bool] = False  # True (train.reuse_fakes): the release's one render

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        frames, size = int(self.clip.frames), self.clip.size
        if frames not in SUPPORTED_LENGTHS:
            raise ConfigError(
                f"G3AN trains on clips of {', '.join(map(str, SUPPORTED_LENGTHS))} frames "
                f"(T = 4*T0 + 12), but data.frames is {frames}."
            )
        if size is not None and size != RESOLUTION:
            raise ConfigError(f"G3AN works at {RESOLUTION}x{RESOLUTION}, but data.size is {size}.")

    @classmethod
    def default_clip_spec(cls, model_cfg: Any) -> ClipSpec:
        """16 frames, stride 2 or 3 at random per clip, random start, 64x64 (dataset.py)."""
        return ClipSpec(frames=16, stride=(2, 3), size=RESOLUTION)

    def split(self, video: Tensor, labels: Tensor | None, rand: BatchRandom) -> dict[str, DInput]:
        """Video D: the clip `[B, 3, T, H, W]`; image D: one random frame of each clip."""
        k = rand.randint(0, video.shape[2]).to(video.device)  # (B,)
        frames = video[torch.arange(video.shape[0], device=video.device), :, k]  # (B, 3, H, W)
        cond = {} if labels is None else {"labels": labels}
        return {"video": DInput(video, cond), "image": DInput(frames, cond)}


attach_recipe("g3an", G3ANRecipe)
