"""What a model tells the training loop: `TrainRecipe` and the `DInput` each discriminator sees.

The loop (vidgan.train.loop) owns the schedule and names no model. A model subclasses
`TrainRecipe` and says, for a real batch and for the generator, what each of its discriminators
judges (`real_inputs`, `fake_inputs`), and sets its hyper-parameters as attributes: loss kind,
R1 gamma and interval, Adam settings per network, EMA half-life, DiffAugment policy, per-D
weights. The defaults are StyleGAN2's; see `vidgan.train` for the whole contract.

All randomness inside a step goes through a `BatchRandom`: it draws for the *global* batch from a
generator seeded by (run seed, step, phase) and hands back this rank's rows, so a run on N ranks
(or with gradient accumulation) sees exactly the draws of a 1-process run, and resume is exact
without saving any generator state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from vidgan.models.base import Latents, VideoGenerator
from vidgan.nn.augment import DiffAugment

LOSS_KINDS: tuple[str, ...] = ("softplus", "bce")


@dataclass(frozen=True)
class DInput:
    """One discriminator's input: `D(x, **cond)`; R1 differentiates w.r.t. the real video."""

    x: Tensor  # what D judges: a clip [B, 3, T, H, W], frames, a frame pair ...
    cond: Mapping[str, Tensor] = field(default_factory=dict)  # keyword inputs (dt, labels)


@dataclass(frozen=True)
class OptimSpec:
    """Adam settings of one network (before lazy-regularisation scaling)."""

    lr: float = 0.002  # StyleGAN2
    betas: tuple[float, float] = (0.0, 0.99)  # StyleGAN2
    eps: float = 1e-8


@dataclass(frozen=True)
class DTerm:
    """How one discriminator counts: its weight in the G and D losses and its R1 gamma."""

    weight: float = 1.0  # multiplies this D's term in both the G loss and the D loss
    r1_gamma: float | None = None  # None: the recipe's `r1_gamma`


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), so nearby steps get unrelated streams."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


class BatchRandom:
    """Random draws for one phase of one step: made for the global batch, sliced to `rows`.

    Every rank (and every accumulation round) builds the same generator and makes the same
    draws in the same order, then keeps its own rows; draws therefore never depend on how the
    global batch is split. Recipes must draw only through this object (never the global RNG).
    """

    def __init__(
        self, *, seed: int, global_batch: int, rows: slice, device: torch.device | str = "cpu"
    ) -> None:
        self.global_batch = global_batch  # rows of the whole step (all ranks)
        self.rows = rows  # this call's rows of the global batch
        self.device = torch.device(device)
        self.seed = seed
        self.generator = torch.Generator(device=self.device)  # draws on the training device
        self.generator.manual_seed(seed)
        self._cpu: torch.Generator | None = None  # for CPU samplers, see `draw`

    @property
    def size(self) -> int:
        """Number of rows this call works on (the local micro-batch)."""
        return len(range(*self.rows.indices(self.global_batch)))

    def _kw(self) -> dict[str, Any]:
        return {"generator": self.generator, "device": self.device}

    def rand(self, *shape: int) -> Tensor:
        """U[0, 1) of shape [size, *shape]."""
        return torch.rand((self.global_batch, *shape), **self._kw())[self.rows]

    def randn(self, *shape: int) -> Tensor:
        """N(0, 1) of shape [size, *shape]."""
        return torch.randn((self.global_batch, *shape), **self._kw())[self.rows]

    def randint(self, low: int, high: int, *shape: int) -> Tensor:
        """Integers in [low, high) of shape [size, *shape]."""
        return torch.randint(low, high, (self.global_batch, *shape), **self._kw())[self.rows]

    def draw(self, fn: Callable[[int, torch.Generator], Any]) -> Any:
        """Any other sampler, e.g. `vidgan.data.pairs.sample_pair_times`: rows of its output.

        `fn(global_batch, generator)` runs with a CPU generator (its own seeded stream) and
        must return a tensor or a tuple of tensors with the batch first; this call's rows are
        returned on the training device.
        """
        if self._cpu is None:
            self._cpu = torch.Generator().manual_seed(mix_seed(self.seed, 0xC0FFEE))
        out = fn(self.global_batch, self._cpu)
        if isinstance(out, tuple):
            return tuple(o[self.rows].to(self.device) for o in out)
        return out[self.rows].to(self.device)

    def latents(self, G: VideoGenerator, *, n_frames: int, labels: Tensor | None = None) -> Latents:
        """`G.sample_latents` for the global batch, this call's rows; `labels` are local rows."""
        lat = G.sample_latents(self.global_batch, n_frames=n_frames, generator=self.generator)
        lat = lat.select(self.rows)
        return dataclasses.replace(lat, labels=labels) if labels is not None else lat

    def augment(self, pipe: DiffAugment, x: Tensor) -> Tensor:
        """Apply `pipe` with parameters drawn for the global batch (one set per clip)."""
        params = pipe.draw(
            self.global_batch, (x.shape[-2], x.shape[-1]), generator=self.generator, device=x.device
        )
        return pipe(x, params.select(self.rows))


class TrainRecipe:
    """Base class of a model's training recipe; the defaults train one D on whole clips.

    The loop constructs it with `recipe_cls(model_cfg=, clip=, d_names=, num_classes=,
    augment=)`. Override the class attributes (or set them in `__init__` from the model
    config) and, for anything but "every D sees the whole clip", `real_inputs` / `fake_inputs`.
    """

    loss: str = "softplus"  # "softplus" (non-saturating logistic) or "bce" (G3AN)
    r1_gamma: float = 10.0  # R1 weight (StyleGAN2 default for 256 px; 0 = off)
    r1_interval: int = 16  # lazy R1 every k steps, lr/betas scaled by k/(k+1); 0 = off
    g_optim: OptimSpec = OptimSpec()
    d_optim: OptimSpec = OptimSpec()
    ema_kimg: float = 10.0  # G_ema half-life in thousands of images (0 = G_ema = G)
    ema_rampup: float = 0.0  # half-life <= rampup * images seen (StyleGAN2-ADA 0.05; 0 = off)
    augment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"
    # True: the D step judges the G step's fakes, detached (one G forward per step, as releases
    # that render one batch for both updates do); False: it renders its own (StyleGAN2-ADA)
    reuse_fakes: bool = False
    terms: Mapping[str, DTerm] = MappingProxyType({})  # per-D weight / gamma (default DTerm())

    def __init__(
        self,
        *,
        model_cfg: Any,  # the model's config dataclass
        clip: Any,  # the resolved clip spec (RunConfig.data)
        d_names: tuple[str, ...],  # keys of ModelSpec.build_discriminators(model_cfg)
        num_classes: int = 0,  # G.num_classes: > 0 passes labels to G and the Ds
        augment: str | None = None,  # DiffAugment policy override (None: the class attribute)
    ) -> None:
        self.model_cfg = model_cfg
        self.clip = clip
        self.d_names = tuple(d_names)
        self.num_classes = num_classes
        self.augment_pipe = DiffAugment(policy=self.augment if augment is None else augment)

    # --- what the data must provide ---------------------------------------------------------
    @classmethod
    def default_clip_spec(cls, model_cfg: Any) -> Any:
        """The clip spec (vidgan.data.ClipSpec) the data loader must produce for this model."""
        raise NotImplementedError(f"{cls.__name__} must define default_clip_spec")

    @property
    def n_frames(self) -> int:
        """Frames per training clip (the clip spec's `frames`)."""
        return int(self.clip.frames)

    def term(self, name: str) -> DTerm:
        return self.terms.get(name, DTerm())

    # --- what each D sees ---------------------------------------------------------------------
    def real_video(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The real clips `[B, 3, T, H, W]` from a collated batch (`video` is `[B, T, 3, H, W]`).

        R1 differentiates w.r.t. this tensor, i.e. before augmentation (as StyleGAN2-ADA).
        uint8 clips (ClipSpec dtype "uint8") are mapped to [-1, 1] as x / 127.5 - 1.
        """
        video = batch["video"]
        if video.dtype == torch.uint8:
            video = video.float() / 127.5 - 1.0
        return video.transpose(1, 2)  # (B, 3, T, H, W)

    def labels(self, batch: Mapping[str, Tensor]) -> Tensor | None:
        """The batch's class labels (also used for its fakes), None when unconditional."""
        return batch["label"] if self.num_classes > 0 else None

    def split(self, video: Tensor, labels: Tensor | None, rand: BatchRandom) -> dict[str, DInput]:
        """Default: every D judges the whole (augmented) clip, with labels when conditional."""
        cond = {} if labels is None else {"labels": labels}
        return {name: DInput(video, cond) for name in self.d_names}

    def real_inputs(
        self, video: Tensor, batch: Mapping[str, Tensor], rand: BatchRandom
    ) -> dict[str, DInput]:
        """Inputs of every D for real clips `video` (from `real_video`) of this batch."""
        if self.augment_pipe:
            video = rand.augment(self.augment_pipe, video)
        return self.split(video, self.labels(batch), rand)

    def fake_inputs(
        self, G: VideoGenerator, rand: BatchRandom, labels: Tensor | None = None
    ) -> dict[str, DInput]:
        """Inputs of every D for `rand.size` generated clips (differentiable w.r.t. G)."""
        latents = rand.latents(G, n_frames=self.n_frames, labels=labels)
        video = G.generate(latents, G.frame_times(self.n_frames).to(G.device))
        if self.augment_pipe:
            video = rand.augment(self.augment_pipe, video)
        return self.split(video, labels, rand)
