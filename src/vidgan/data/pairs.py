"""Frame pairs for pair discriminators: two frames of a clip and their time gap.

Indices are positions inside a clip of `n_frames` frames produced by the clip sampler (so the
clip stride is already applied). Each scheme fixes a time convention, the same one its
generator uses, so real and generated pairs share units:

* "digan" (DIGAN, github:sihyun-yu/digan `training/dataset.py`, `training/loss.py`):
  frame k of an n-frame clip sits at t = k / (n - 1) in [0, 1]. Real pairs:
  f0 = int(n * Beta(2, 1)), f1 = int(n * Beta(1, 2)), sorted; dt = (f1 - f0) / (n - 1).
  Generated pairs: t0 ~ Beta(2, 1), t1 ~ Beta(1, 2), sorted; dt = t1 - t0.
* "fmr" (FMR, `data.py` `Dataset(delta_t=True)`, `models/generator.py` `sample_rand`):
  frame k sits at t = -1 + 2k / n (the grid linspace(-1, 1, n+1)[:-1]). Real pairs: two
  distinct clip positions, uniform without replacement, sorted; dt = 2 (i1 - i0) / n, i.e. the
  reference's (i2-i1)/(16*step)*2 with the stride folded into the clip. Generated pairs: two
  grid times drawn with replacement, sorted (dt may be 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vidgan.errors import ConfigError
from vidgan.registry import nearest

SCHEMES = ("digan", "fmr")


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ConfigError(
            f"unknown pair scheme {scheme!r}{nearest(scheme, SCHEMES)} Valid schemes: "
            f"{', '.join(SCHEMES)}."
        )


def _lengths(n_frames: int | Tensor, batch_size: int | None) -> Tensor:
    if isinstance(n_frames, Tensor) and n_frames.ndim == 1:
        n = n_frames.to(torch.int64)
    else:
        n = torch.full((batch_size or 1,), int(n_frames), dtype=torch.int64)
    if (n < 2).any():
        raise ConfigError(f"frame pairs need clips of at least 2 frames, got {n.min().item()}.")
    return n


def _beta(a: float, b: float, size: int, generator: torch.Generator | None) -> Tensor:
    """Beta(a, b) via two Gamma draws from uniforms, so a torch.Generator fixes it.

    For the shapes used here (a or b = 1) Beta(a, 1) = U^(1/a) and Beta(1, b) = 1 - U^(1/b).
    """
    u = torch.rand(size, generator=generator, dtype=torch.float64)
    if b == 1.0:
        return u.pow(1.0 / a)
    if a == 1.0:
        return 1.0 - u.pow(1.0 / b)
    raise ValueError("only Beta(a, 1) and Beta(1, b) are needed by the pair schemes")


def frame_times(n_frames: int, scheme: str) -> Tensor:
    """Time of every frame of an n-frame clip in the scheme's convention, float32 [n]."""
    _check_scheme(scheme)
    k = torch.arange(n_frames, dtype=torch.float64)
    t = k / max(n_frames - 1, 1) if scheme == "digan" else -1.0 + 2.0 * k / n_frames
    return t.float()


def index_to_time(index: Tensor, n_frames: int | Tensor, scheme: str) -> Tensor:
    """Time of clip position `index` (any shape) in the scheme's convention."""
    _check_scheme(scheme)
    i = index.to(torch.float64)
    n = torch.as_tensor(n_frames, dtype=torch.float64)
    t = i / (n - 1) if scheme == "digan" else -1.0 + 2.0 * i / n
    return t.float()


def _digan_indices(n: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    b = n.shape[0]
    f0 = (n.double() * _beta(2.0, 1.0, b, generator)).floor().long()
    f1 = (n.double() * _beta(1.0, 2.0, b, generator)).floor().long()
    f0, f1 = f0.clamp(max=n - 1), f1.clamp(max=n - 1)  # u = 1.0 exactly never happens; be safe
    return torch.minimum(f0, f1), torch.maximum(f0, f1)


def _fmr_indices(n: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    b = n.shape[0]
    # Two distinct positions uniform without replacement: first uniform over n, second
    # uniform over the other n - 1 (shift past the first).
    u = torch.rand(b, 2, generator=generator, dtype=torch.float64)
    a = (u[:, 0] * n).floor().long().clamp(max=n - 1)
    c = (u[:, 1] * (n - 1)).floor().long().clamp(max=n - 2)
    c = c + (c >= a).long()
    return torch.minimum(a, c), torch.maximum(a, c)


_INDEX_SAMPLERS: dict[str, Callable[[Tensor, torch.Generator | None], tuple[Tensor, Tensor]]] = {
    "digan": _digan_indices,
    "fmr": _fmr_indices,
}


def sample_pair_indices(
    n_frames: int | Tensor,
    scheme: str,
    *,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Two sorted clip positions per batch item and their time gap, as for real pairs.

    Args:
        n_frames: clip length (int, then `batch_size` items, default 1) or an int64 [B]
            tensor of per-item clip lengths.
        scheme: "digan" or "fmr" (see the module docstring).
        generator: torch.Generator for reproducible draws.
    Returns:
        (i1, i2, dt): int64 [B], int64 [B] with i1 <= i2 (i1 < i2 for "fmr"), float32 [B]
        with dt = time(i2) - time(i1) in the scheme's convention.
    """
    _check_scheme(scheme)
    n = _lengths(n_frames, batch_size)
    i1, i2 = _INDEX_SAMPLERS[scheme](n, generator)
    if scheme == "digan":
        dt = ((i2 - i1).double() / (n - 1)).float()  # exactly the reference's (f1-f0)/(n-1)
    else:
        dt = (2.0 * (i2 - i1).double() / n).float()  # exactly 2 (i2 - i1) / n
    return i1, i2, dt


def sample_pair_times(
    batch_size: int,
    scheme: str,
    *,
    generator: torch.Generator | None = None,
    n_frames: int = 16,
) -> tuple[Tensor, Tensor, Tensor]:
    """Two sorted times per generated video and their gap, in the same units as real pairs.

    "digan": t ~ Beta(2,1) and Beta(1,2), continuous, in [0, 1]. "fmr": two times drawn with
    replacement from the n_frames grid -1 + 2k/n (the reference's `sample_rand`).
    Returns (t1, t2, dt), float32 [B] each.
    """
    _check_scheme(scheme)
    if scheme == "digan":
        a = _beta(2.0, 1.0, batch_size, generator)
        b = _beta(1.0, 2.0, batch_size, generator)
        t1, t2 = torch.minimum(a, b).float(), torch.maximum(a, b).float()
    else:
        k = torch.randint(n_frames, (batch_size, 2), generator=generator)
        k1, k2 = k.min(dim=1).values, k.max(dim=1).values
        t1, t2 = index_to_time(k1, n_frames, scheme), index_to_time(k2, n_frames, scheme)
    return t1, t2, t2 - t1
