"""DiffAugment for videos: one set of random parameters per clip, applied to every frame.

Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training" (arXiv:2006.10738):
the same differentiable transforms are applied to real and fake inputs of the discriminator, so
G still gets gradients through them. For video the parameters are drawn once per clip and used
for every frame (and for both frames of a pair), so the augmentation never creates motion
(DIGAN and FMR, REFERENCES.md). A video augmented here equals each of its frames augmented as an
image with the same parameters.

Parameters are drawn explicitly (`DiffAugment.draw`) and applied separately (`__call__`), so a
training loop can draw them for a whole global batch and give each rank its rows.

Policy names: `color` (brightness, saturation, contrast), `translation` (shift by up to 1/8 of the
size, zero fill), `cutout` (a zeroed square of half the size), `flip` (x-flip with p = 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from vidgan.errors import ConfigError

POLICIES: tuple[str, ...] = ("color", "translation", "cutout", "flip")


@dataclass(frozen=True)
class AugmentParams:
    """The random draws for a batch of clips; a field is None when its op is off."""

    brightness: Tensor | None = None  # [B] added, U(-0.5, 0.5)
    saturation: Tensor | None = None  # [B] factor, U(0, 2)
    contrast: Tensor | None = None  # [B] factor, U(0.5, 1.5)
    shift: Tensor | None = None  # [B, 2] int (dy, dx) in [-s, s], s = round(size / 8)
    cutout: Tensor | None = None  # [B, 2] int (cy, cx), centre of the zeroed square
    flip: Tensor | None = None  # [B] bool

    def select(self, rows: slice | Tensor) -> AugmentParams:
        """The parameters of a subset of clips (e.g. this rank's rows of a global batch)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: None if v is None else v[rows] for k, v in values.items()})


def parse_policy(policy: str | tuple[str, ...]) -> tuple[str, ...]:
    """ "color,translation" -> ("color", "translation"), checked against POLICIES."""
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [n.strip() for n in names if n.strip()]
    for n in names:
        if n not in POLICIES:
            raise ConfigError(f"unknown DiffAugment op {n!r}; valid ops: {', '.join(POLICIES)}.")
    return tuple(names)


class DiffAugment:
    """Differentiable augmentation of `[B, C, T, H, W]` videos (or `[B, C, H, W]` images)."""

    def __init__(
        self,
        *,
        policy: str | tuple[str, ...] = "color,translation,cutout",
        translation_ratio: float = 0.125,  # max shift as a fraction of H and W (DiffAugment)
        cutout_ratio: float = 0.5,  # side of the cutout square as a fraction of H and W
    ) -> None:
        self.policy = parse_policy(policy)
        self.translation_ratio = translation_ratio
        self.cutout_ratio = cutout_ratio

    def __bool__(self) -> bool:
        return bool(self.policy)

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policy)!r})"

    def draw(
        self,
        batch: int,
        size: tuple[int, int],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> AugmentParams:
        """Draw parameters for `batch` clips of frame size (H, W); the draw order is fixed."""
        h, w = size
        kw = {"generator": generator, "device": device}
        out: dict[str, Tensor] = {}
        if "color" in self.policy:
            out["brightness"] = torch.rand(batch, **kw) - 0.5
            out["saturation"] = torch.rand(batch, **kw) * 2.0
            out["contrast"] = torch.rand(batch, **kw) + 0.5
        if "translation" in self.policy:
            sy, sx = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
            dy = torch.randint(-sy, sy + 1, (batch,), **kw)
            dx = torch.randint(-sx, sx + 1, (batch,), **kw)
            out["shift"] = torch.stack([dy, dx], dim=1)
        if "cutout" in self.policy:
            ch, cw = self._cutout_size(h, w)
            cy = torch.randint(0, h + (1 - ch % 2), (batch,), **kw)
            cx = torch.randint(0, w + (1 - cw % 2), (batch,), **kw)
            out["cutout"] = torch.stack([cy, cx], dim=1)
        if "flip" in self.policy:
            out["flip"] = torch.rand(batch, **kw) < 0.5
        return AugmentParams(**out)

    def _cutout_size(self, h: int, w: int) -> tuple[int, int]:
        return int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)

    def __call__(self, x: Tensor, params: AugmentParams) -> Tensor:
        """Apply `params` to `x` `[B, C, T, H, W]` or `[B, C, H, W]`; same op on every frame."""
        image = x.ndim == 4
        if image:
            x = x.unsqueeze(2)  # (B, C, 1, H, W)
        if params.brightness is not None:
            x = adjust_brightness(x, params.brightness)
        if params.saturation is not None:
            x = adjust_saturation(x, params.saturation)
        if params.contrast is not None:
            x = adjust_contrast(x, params.contrast)
        if params.shift is not None:
            x = translate(x, params.shift)
        if params.cutout is not None:
            x = cutout(x, params.cutout, self._cutout_size(x.shape[-2], x.shape[-1]))
        if params.flip is not None:
            x = torch.where(_per_clip(params.flip, x), x.flip(-1), x)
        return x.squeeze(2) if image else x


def _per_clip(v: Tensor, x: Tensor) -> Tensor:
    """[B] -> [B, 1, 1, 1, 1] in x's dtype (bool stays bool)."""
    v = v if v.dtype == torch.bool else v.to(x.dtype)
    return v.view(-1, 1, 1, 1, 1)


def adjust_brightness(x: Tensor, delta: Tensor) -> Tensor:
    """x + delta per clip (DiffAugment rand_brightness)."""
    return x + _per_clip(delta, x)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Scale each pixel's deviation from its channel mean (DiffAugment rand_saturation)."""
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, T, H, W)
    return (x - mean) * _per_clip(factor, x) + mean


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Scale each frame's deviation from its mean over C, H, W (DiffAugment rand_contrast)."""
    mean = x.mean(dim=(1, 3, 4), keepdim=True)  # (B, 1, T, 1, 1): per frame, as for an image
    return (x - mean) * _per_clip(factor, x) + mean


def translate(x: Tensor, shift: Tensor) -> Tensor:
    """out[..., i, j] = x[..., i - dy, j - dx], zero where that falls outside the frame."""
    b, _, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h) - shift[:, 0:1].to(x.device)  # (B, H)
    cols = torch.arange(w, device=x.device).view(1, w) - shift[:, 1:2].to(x.device)  # (B, W)
    valid = ((rows >= 0) & (rows < h)).view(b, 1, 1, h, 1) & ((cols >= 0) & (cols < w)).view(
        b, 1, 1, 1, w
    )
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    # advanced indices separated by slices go first: (B, H, W, C, T)
    out = x[batch, :, :, rows.clamp(0, h - 1).view(b, h, 1), cols.clamp(0, w - 1).view(b, 1, w)]
    out = out.permute(0, 3, 4, 1, 2)  # (B, C, T, H, W)
    return out * valid.to(x.dtype)


def cutout(x: Tensor, centre: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero a size[0] x size[1] square whose centre is (cy, cx), clipped to the frame."""
    b, _, _, h, w = x.shape
    y0 = (centre[:, 0] - size[0] // 2).to(x.device).view(b, 1)
    x0 = (centre[:, 1] - size[1] // 2).to(x.device).view(b, 1)
    ys = torch.arange(h, device=x.device).view(1, h)
    xs = torch.arange(w, device=x.device).view(1, w)
    in_y = ((ys >= y0) & (ys < y0 + size[0])).view(b, 1, 1, h, 1)
    in_x = ((xs >= x0) & (xs < x0 + size[1])).view(b, 1, 1, 1, w)
    return x * (~(in_y & in_x)).to(x.dtype)
