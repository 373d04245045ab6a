"""Inception Score (Salimans et al., NeurIPS 2016): exp E_x KL(p(y|x) || p(y)), over splits.

For videos (TGAN, TGAN-v2, DIGAN, StyleGAN-V's `isv2048_ucf`) the classifier is a C3D fine-tuned
on UCF-101 (`vidgan.metrics.c3d`); any classifier's logits or probabilities work here. Splits are
rows [i*N//S, (i+1)*N//S) as in TGAN-v2's and StyleGAN-V's code; StyleGAN-V first shuffles the
rows with numpy's RandomState(42) (`shuffle_seed=42`), TGAN-v2 adds eps=1e-20 to the
probabilities.
"""

from __future__ import annotations

import numpy as np

from vidgan.errors import VidganError


def softmax64(logits: np.ndarray) -> np.ndarray:
    """Row softmax in float64 (max subtracted first)."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(axis=1, keepdims=True)
    p = np.exp(x)
    return p / p.sum(axis=1, keepdims=True)


def inception_score(
    scores: np.ndarray,
    *,
    splits: int = 10,
    from_logits: bool = True,
    shuffle_seed: int | None = None,
    eps: float = 0.0,
) -> tuple[float, float]:
    """Mean and std over `splits` chunks of exp(mean_x KL(p(y|x) || mean_x p(y|x))).

    `scores` is `[N, K]` logits (softmax taken here, in float64) or probabilities
    (`from_logits=False`). Uniform predictions give 1; confident predictions spread evenly
    over K classes give K.
    """
    x = np.asarray(scores, np.float64)
    if x.ndim != 2 or len(x) < splits or splits < 1:
        raise VidganError(f"IS needs [N, K] scores with N >= splits={splits}, got {x.shape}.")
    p = softmax64(x) if from_logits else x / x.sum(axis=1, keepdims=True)
    if shuffle_seed is not None:
        p = p.copy()
        np.random.RandomState(shuffle_seed).shuffle(p)
    p = p + eps
    n = len(p)
    values = []
    for i in range(splits):
        chunk = p[i * n // splits : (i + 1) * n // splits]
        py = chunk.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(py)), 0.0).sum(axis=1)
        values.append(float(np.exp(kl.mean())))
    return float(np.mean(values)), float(np.std(values))
