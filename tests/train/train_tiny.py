"""A tiny model, recipe and dataset that drive the training loop in tests (no paper model needed).

TinyG renders 8x8 clips from two 4-d codes and the timestamp through a 2-layer MLP; there is a
clip D (Conv3d) and a pair D that sees two frames and their time gap, like DIGAN's motion D.
The recipe generates fake pairs at continuous times, so the `[B, T]` timestamp path is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vidgan.models.base import Latents, VideoGenerator, expand_times
from vidgan.models.registry import MODELS, ModelSpec, register_model
from vidgan.train.recipe import BatchRandom, DInput, DTerm, OptimSpec, TrainRecipe

NAME = "tiny-test"
OTHER = "tiny-test-other"


@dataclass(frozen=True)
class TinyConfig:
    size: int = 8  # frame side in pixels
    frames: int = 4  # clip length
    dim_z: int = 4  # content and motion code size
    hidden: int = 16  # MLP width


@dataclass(frozen=True)
class TinyClip:
    frames: int = 4
    size: int = 8


class TinyG(VideoGenerator):
    def __init__(self, *, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s = cfg.size
        self.net = nn.Sequential(
            nn.Linear(2 * cfg.dim_z + 1, cfg.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.hidden, 3 * s * s),
        )

    def sample_latents(self, batch, *, n_frames=4, generator=None, labels=None) -> Latents:
        z = torch.randn(batch, 2 * self.cfg.dim_z, generator=generator, device=self.device)
        return Latents(content=z[:, : self.cfg.dim_z], motion=z[:, self.cfg.dim_z :], labels=labels)

    def frame_times(self, n_frames: int) -> Tensor:
        return torch.linspace(0, 1, n_frames)

    def forward(self, z_content, z_motion, t, *, labels=None, noise=None) -> Tensor:
        b, s = z_content.shape[0], self.cfg.size
        t = expand_times(t.to(z_content.device, z_content.dtype), b)  # (B, T)
        n = t.shape[1]
        z = torch.cat([z_content, z_motion], dim=1).unsqueeze(1).expand(b, n, -1)
        x = self.net(torch.cat([z, t.unsqueeze(-1)], dim=-1))  # (B, T, 3*S*S)
        return torch.tanh(x.view(b, n, 3, s, s).transpose(1, 2))  # (B, 3, T, S, S)


class ClipD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1)
        self.out = nn.Linear(8 + 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = nn.functional.leaky_relu(self.conv(x), 0.2).mean(dim=(2, 3, 4))
        return self.out(torch.cat([h, x.mean(dim=(2, 3, 4))], dim=1)).squeeze(1)


class PairD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(6, 8, 3, padding=1)
        self.out = nn.Linear(9, 1)

    def forward(self, x: Tensor, dt: Tensor) -> Tensor:
        b, c, _, h, w = x.shape
        feat = self.conv(x.reshape(b, c * 2, h, w))  # (B, 8, H, W)
        h = nn.functional.leaky_relu(feat, 0.2).mean(dim=(2, 3))
        return self.out(torch.cat([h, dt.to(h.dtype).unsqueeze(1)], dim=1)).squeeze(1)


class TinyRecipe(TrainRecipe):
    r1_gamma = 1.0
    r1_interval = 2
    g_optim = OptimSpec(lr=0.01, betas=(0.0, 0.99))
    d_optim = OptimSpec(lr=0.01, betas=(0.0, 0.99))
    ema_kimg = 0.02
    ema_rampup = 0.05
    augment = "color,translation,cutout"
    terms = {"pair": DTerm(weight=0.5, r1_gamma=0.5)}  # noqa: RUF012

    @classmethod
    def default_clip_spec(cls, model_cfg: TinyConfig) -> TinyClip:
        return TinyClip(frames=model_cfg.frames, size=model_cfg.size)

    def _pair_indices(self, rand: BatchRandom) -> tuple[Tensor, Tensor]:
        f = rand.randint(0, self.n_frames, 2).sort(dim=1).values  # (B, 2)
        return f[:, 0], f[:, 1]

    def real_inputs(self, video, batch, rand) -> dict[str, DInput]:
        video = rand.augment(self.augment_pipe, video)
        f0, f1 = self._pair_indices(rand)
        rows = torch.arange(video.shape[0], device=video.device)
        pair = torch.stack([video[rows, :, f0], video[rows, :, f1]], dim=2)  # (B, 3, 2, H, W)
        dt = (f1 - f0).float() / (self.n_frames - 1)
        return {"clip": DInput(video), "pair": DInput(pair, {"dt": dt})}

    def fake_inputs(self, G, rand, labels=None) -> dict[str, DInput]:
        latents = rand.latents(G, n_frames=self.n_frames, labels=labels)
        video = G.generate(latents, G.frame_times(self.n_frames).to(G.device))
        t = rand.rand(2).sort(dim=1).values  # (B, 2) continuous times
        pair = G.generate(latents, t)  # (B, 3, 2, H, W)
        video = rand.augment(self.augment_pipe, video)
        pair = rand.augment(self.augment_pipe, pair)
        return {"clip": DInput(video), "pair": DInput(pair, {"dt": t[:, 1] - t[:, 0]})}


def build_discriminators(cfg: TinyConfig) -> dict[str, nn.Module]:
    return {"clip": ClipD(), "pair": PairD()}


def register() -> None:
    """Register the tiny model (and a second one for wrong-model resume) once per process."""
    if NAME not in MODELS:
        register_model(
            ModelSpec(
                name=NAME,
                config_cls=TinyConfig,
                build_generator=lambda cfg: TinyG(cfg=cfg),
                build_discriminators=build_discriminators,
                recipe=TinyRecipe,
            )
        )
    if OTHER not in MODELS:
        register_model(
            ModelSpec(
                name=OTHER,
                config_cls=TinyConfig,
                build_generator=lambda cfg: TinyG(cfg=cfg),
                build_discriminators=build_discriminators,
                recipe=TinyRecipe,
            )
        )


class SynthClips(torch.utils.data.Dataset):
    """Clips of brightness ~0.5 with a bar that moves down one row per frame.

    Items follow vidgan.data: {"video": [T, 3, H, W] in [-1, 1], "label": int, "index": int};
    per-epoch randomness (an x-flip) comes from (seed, epoch, index) through `set_epoch`.
    """

    def __init__(self, n: int = 24, *, frames: int = 4, size: int = 8, seed: int = 0) -> None:
        self.n, self.frames, self.size, self.seed = n, frames, size, seed
        self.epoch = 0
        gen = torch.Generator().manual_seed(seed)
        self.level = 0.5 + 0.1 * (torch.rand(n, generator=gen) - 0.5)
        self.start = torch.randint(0, size, (n,), generator=gen)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        video = torch.full((self.frames, 3, self.size, self.size), float(self.level[i]))
        for k in range(self.frames):
            row = (int(self.start[i]) + k) % self.size
            video[k, :, row, : self.size // 2] = -0.5
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 1009 + i)
        if torch.rand((), generator=gen) < 0.5:
            video = video.flip(-1)
        return {"video": video, "label": 0, "index": i}


def mean_brightness(G: VideoGenerator, n: int = 64, seed: int = 123) -> float:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lat = G.sample_latents(n, n_frames=4, generator=gen)
        return float(G.generate(lat, G.frame_times(4)).mean())


def target_brightness(ds: SynthClips) -> float:
    return float(torch.stack([ds[i]["video"] for i in range(len(ds))]).mean())


def state_close(a: dict[str, Tensor], b: dict[str, Tensor], atol: float = 1e-5) -> float:
    """Largest absolute difference over two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a) if a else 0.0


# Exact invariance tests (accumulation, DDP, reuse) compare fp32 runs: on a CPU with native bf16
# the default `train.amp` (auto) turns autocast on, and bf16 rounding differs between splits.
FP32 = "train.amp=false"

BASE = (
    "train.batch=8",
    "train.workers=0",
    "train.log_every=1",
    "train.sample_every=0",
    "train.tensorboard=false",
)


def make_trainer(outdir, *overrides: str, dataset=None, resume=None, **kwargs):
    """A Trainer of the tiny model on SynthClips with quiet, fast settings."""
    from vidgan.train.config import resolve_run_config
    from vidgan.train.loop import Trainer

    register()
    run = resolve_run_config(NAME, overrides=[*BASE, *overrides])
    kwargs.setdefault("progress", False)
    return Trainer(run, outdir=outdir, dataset=dataset or SynthClips(20), resume=resume, **kwargs)


def trained_weights(tr) -> dict[str, Tensor]:
    """Every state tensor of G, G_ema and the Ds, keyed `G.*`, `G_ema.*`, `<D name>.*`."""
    out = {}
    for name, module in [("G", tr.G), ("G_ema", tr.G_ema), *tr.Ds.items()]:
        out.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    return out


def split_gap(outdir, *overrides: str):
    """(largest weight difference after 3 fp32 steps between the whole batch and 4 micro-batches
    of it, the whole-batch trainer): 0 up to float rounding when accumulation is exact."""
    from pathlib import Path

    runs = []
    for sub, extra in (("whole", ()), ("split", ("train.accumulate=4",))):
        opts = ("train.steps=3", "train.checkpoint_every=100", *overrides, *extra)
        tr = make_trainer(Path(outdir) / sub, FP32, *opts)
        tr.fit()
        runs.append(tr)
    return state_close(trained_weights(runs[0]), trained_weights(runs[1])), runs[0]


def read_stats(outdir) -> list[dict]:
    import json
    from pathlib import Path

    return [json.loads(line) for line in (Path(outdir) / "stats.jsonl").read_text().splitlines()]
