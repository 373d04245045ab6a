"""Learned Fourier features (LFF) of a scalar such as time.

Anokhin et al. 2021 (CIPS, arXiv:2011.13775, sec. 3.2) map coordinates through sin(W x + b) with a
trainable W; FMR (Hyun et al. 2023, TIP) uses the same layer on time, with the initial angular
frequencies of each band drawn from a range so a band generator starts in its frequency band.
The submodule names (`ffm.linear`) follow the FMR release so its state dicts load as they are.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn


class FrequencyMap(nn.Module):
    """x -> W x + b with W initialised inside +-[lo, hi] / in_features (rows = sinusoids)."""

    def __init__(
        self, in_features: int, n_features: int, *, freq_range: tuple[float, float] = (0.0, 3.0)
    ) -> None:
        """freq_range: (lo, hi) initial |angular frequency| range; first half +, second half -."""
        super().__init__()
        self.linear = nn.Linear(in_features, n_features)
        lo, hi = freq_range
        half = n_features // 2
        with torch.no_grad():
            self.linear.weight[:half].uniform_(lo / in_features, hi / in_features)
            self.linear.weight[half:].uniform_(-hi / in_features, -lo / in_features)
            # phases keep nn.Linear's default init U(-1/sqrt(in), 1/sqrt(in))
            bound = 1 / math.sqrt(in_features)
            self.linear.bias.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class LearnedFourierFeatures(nn.Module):
    """Eq. (FMR sec. 3.1): x_i(t) = sin(w_i t + p_i) with learned frequencies w and phases p."""

    def __init__(
        self, in_features: int, n_features: int, *, freq_range: tuple[float, float] = (0.0, 3.0)
    ) -> None:
        super().__init__()
        self.ffm = FrequencyMap(in_features, n_features, freq_range=freq_range)

    @property
    def frequencies(self) -> Tensor:
        """Learned angular frequencies `[n_features]` (for a scalar input)."""
        return self.ffm.linear.weight[:, 0]

    @property
    def phases(self) -> Tensor:
        return self.ffm.linear.bias

    def forward(self, x: Tensor) -> Tensor:
        """x: [..., in_features] -> [..., n_features]."""
        return torch.sin(self.ffm(x))

    def band_masks(self, edges: tuple[float, ...] | list[float], *, ratio: bool = False) -> Tensor:
        """Boolean `[len(edges)+1, n]`: row k marks sinusoids with e_{k-1} <= |w| < e_k.

        e_{-1} = 0 and the last band is open-ended, so every sinusoid is in exactly one band.
        With `ratio`, edges are fractions of the largest learned |w|.
        """
        mag = self.frequencies.detach().abs()
        scale = float(mag.max()) if ratio else 1.0
        bounds = [0.0, *[float(e) * scale for e in edges], math.inf]
        return torch.stack([(mag >= lo) & (mag < hi) for lo, hi in itertools.pairwise(bounds)])
