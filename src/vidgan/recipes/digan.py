"""How DIGAN trains (github:sihyun-yu/digan `src/training/loss.py`, `training_loop.py`,
`train.py`, `configs/digan.yml`, `configs/main.yml`): what its motion and image Ds see.

* Real pairs: two frames of the 16-frame clip at f0 = int(16 Beta(2,1)), f1 = int(16 Beta(1,2)),
  sorted, dt = (f1 - f0) / 15 (`vidgan.data.pairs` "digan"; the release samples them in
  `dataset.py`). Fake pairs: G renders times t1 ~ Beta(2,1), t2 ~ Beta(1,2), sorted, dt = t2 - t1.
* Motion ("video") D: `[frame t1; frame t2; dt plane]` (7 channels, `MotionDiscriminator`).
  Image D: both frames of every pair, stacked along the batch as `(b t)` (the release's
  `OurDiscriminator`), so minibatch-std groups are the release's; labels repeat per frame.
* DiffAugment color, translation with one set of parameters per pair, drawn once and shared by
  both Ds (the release augments the pair once and feeds the same frames to the image D).
  x-flip is a data augmentation (`ClipSpec.flip`, the release's `xflip=True`), not DiffAugment.
* Softplus loss; G loss = motion term + image term; R1 gamma 1.0 every 16 steps (digan.yml);
  Adam lr 0.0025, betas (0, 0.99); EMA half-life 20 kimg with ramp-up 0.05 (cfg "auto" at 8
  GPUs: ema = 64 * 10 / 32 kimg, ramp 0.05); no style mixing, no path-length reg (digan.yml).

Deliberate or structural differences from the release (all small):

* G's Adam: StyleGAN2-ADA keeps G_reg_interval = 4 and so scales G's lr and betas by c = 4/5
  even though DIGAN turns path-length regularisation off; the effective G optimiser is
  therefore Adam(lr 0.002, betas (0, 0.99^0.8)), which is what `g_optim` states.
* R1 is taken w.r.t. the real clip before augmentation (the loop's rule). The release takes the
  motion-D gradient w.r.t. its 7-channel input before augmentation (including the dt plane, and
  each frame of a pair on its own when both are the same frame; `r1_pair_input = True` gives
  exactly that) and the image-D gradient w.r.t. the augmented frames. Its image-D penalty is
  a mean over the 2B frames while the loop averages over the B clips (two frames' gradients
  each), so the image D's gamma is 0.5 here, i.e. 1.0 per frame as in the release.
* Fake labels are the batch's labels (the release draws them from the dataset's label list).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import Tensor

from vidgan.data.clips import ClipSpec
from vidgan.data.pairs import sample_pair_indices, sample_pair_times
from vidgan.errors import ConfigError
from vidgan.models.base import VideoGenerator
from vidgan.models.digan import MotionDiscriminator
from vidgan.models.registry import attach_recipe
from vidgan.train.recipe import BatchRandom, DInput, DTerm, OptimSpec, TrainRecipe

LR = 0.0025  # cfg "auto" below 1024 px (train.py spec.lrate)
G_REG_FACTOR = 4 / 5  # training_loop.py G_reg_interval = 4: mb_ratio = 4 / 5 for G's Adam


class DIGANRecipe(TrainRecipe):
    """DIGAN's training recipe (see the module docstring for the sources)."""

    loss: ClassVar[str] = "softplus"
    r1_gamma: ClassVar[float] = 1.0  # digan.yml loss_kwargs.r1_gamma
    r1_interval: ClassVar[int] = 16  # training_loop.py D_reg_interval
    g_optim: ClassVar[OptimSpec] = OptimSpec(
        lr=LR * G_REG_FACTOR, betas=(0.0, 0.99**G_REG_FACTOR)
    )  # see the module docstring: the release's effective G optimiser
    d_optim: ClassVar[OptimSpec] = OptimSpec(lr=LR, betas=(0.0, 0.99))  # lazy-R1 scaled by loop
    ema_kimg: ClassVar[float] = 20.0  # train.py cfg auto: spec.ema = 64 * 10 / 32
    ema_rampup: ClassVar[float] = 0.05  # train.py cfg auto: ramp = 0.05
    augment: ClassVar[str] = "color,translation"  # main.yml train_args.diffaugment
    terms: ClassVar[Mapping[str, DTerm]] = MappingProxyType(
        {"image": DTerm(r1_gamma=0.5)}  # 1.0 per frame (the loop averages R1 over clips)
    )

    #: R1 of the motion D w.r.t. its whole 7-channel input, dt plane included, each frame of a
    #: pair on its own (the release's penalty; see `_r1_routes`). Off by default: on the toy
    #: preset it did not bring motion (session 3 trial, see presets/digan-toy-32.yaml).
    r1_pair_input: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        frames, n = int(self.clip.frames), int(self.model_cfg.n_frames)
        if frames != n:
            raise ConfigError(
                f"DIGAN needs data.frames equal to model.n_frames (both fix the time unit "
                f"t = k / (n - 1) of real and generated pairs), got {frames} and {n}."
            )

    @classmethod
    def default_clip_spec(cls, model_cfg: Any) -> ClipSpec:
        """`n_frames` consecutive frames at the model's resolution, x-flipped with p = 0.5."""
        return ClipSpec(frames=model_cfg.n_frames, size=model_cfg.resolution, flip=True)

    def pair_inputs(
        self,
        pair: Tensor,
        dt: Tensor,
        labels: Tensor | None,
        rand: BatchRandom,
        dt_route: Tensor | None = None,
    ) -> dict[str, DInput]:
        """Both Ds' inputs from frame pairs `[B, 3, 2, H, W]` (t1 <= t2) and gaps `dt` `[B]`.

        `dt_route` (zeros `[B, 1, H, W]`, see `_r1_routes`) is added to the dt plane.
        """
        if self.augment_pipe:  # one parameter set per pair: both frames get the same op
            pair = rand.augment(self.augment_pipe, pair)
        video_x = MotionDiscriminator.pair_input(pair[:, :, 0], pair[:, :, 1], dt)  # (B, 7, H, W)
        if dt_route is not None:
            video_x = torch.cat([video_x[:, :6], video_x[:, 6:] + dt_route], dim=1)
        frames = pair.transpose(1, 2).flatten(0, 1)  # b c t h w -> (b t) c h w
        if labels is None:
            return {"video": DInput(video_x), "image": DInput(frames)}
        return {
            "video": DInput(video_x, {"labels": labels}),
            "image": DInput(frames, {"labels": labels.repeat_interleave(2)}),
        }

    def real_inputs(
        self, video: Tensor, batch: Mapping[str, Tensor], rand: BatchRandom
    ) -> dict[str, DInput]:
        n = video.shape[2]
        i1, i2, dt = rand.draw(
            lambda b, g: sample_pair_indices(n, "digan", generator=g, batch_size=b)
        )
        rows = torch.arange(video.shape[0], device=video.device)
        first, second, dt_route = video[rows, :, i1], video[rows, :, i2], None
        if self.r1_pair_input and video.requires_grad and n >= 4:
            second, dt_route = _r1_routes(video, i1, i2, second)
        pair = torch.stack([first, second], dim=2)  # (B, 3, 2, H, W)
        return self.pair_inputs(pair, dt.to(video.dtype), self.labels(batch), rand, dt_route)

    def fake_inputs(
        self, G: VideoGenerator, rand: BatchRandom, labels: Tensor | None = None
    ) -> dict[str, DInput]:
        t1, t2, dt = rand.draw(lambda b, g: sample_pair_times(b, "digan", generator=g))
        latents = rand.latents(G, n_frames=self.n_frames, labels=labels)
        pair = G.generate(latents, torch.stack([t1, t2], dim=1))  # (B, 3, 2, H, W)
        return self.pair_inputs(pair, dt, labels, rand)


def _r1_routes(video: Tensor, i1: Tensor, i2: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
    """Route the motion D's input gradients to distinct elements of `video` (R1's variable).

    The loop takes R1 w.r.t. the real clip; the release takes it w.r.t. the 7-channel pair
    input. They differ in two places, both fixed here without changing any value: the dt plane
    (not a function of the clip) gets `video[u] - video[u].detach()` added, u a frame the pair
    does not use, so its gradient lands there; and when i1 == i2 the second copy of the frame
    takes its gradient through another unused frame instead of adding to the first copy's.
    Returns (second frame, dt route `[B, 1, H, W]` of zeros).
    """
    rows = torch.arange(video.shape[0], device=video.device)
    cand = torch.arange(4, device=video.device)
    free = (cand != i1[:, None]) & (cand != i2[:, None])  # >= 2 free among 0..3
    order = torch.argsort((~free).to(torch.int8), dim=1, stable=True)
    u1, u2 = cand[order[:, 0]], cand[order[:, 1]]
    spare = video[rows, :, u1]
    routed = second.detach() + (spare - spare.detach())
    same = (i1 == i2).view(-1, 1, 1, 1)
    second = torch.where(same, routed, second)
    plane = video[rows, :1, u2]
    return second, plane - plane.detach()


attach_recipe("digan", DIGANRecipe)
