"""Inception Score (Salimans et al., NeurIPS 2016): exp E_x KL(p(y|x) || p(y)), over splits.

For videos (TGAN, MoCoGAN, DIGAN) the classifier is a C3D trained on UCF-101, which no package
ships: pass class logits of any classifier the user has. Not registered as a metric until a
classifier file and its exact preprocessing are available.
"""

from __future__ import annotations

import numpy as np

from vidgan.errors import VidganError


def inception_score(
    scores: np.ndarray, *, splits: int = 10, from_logits: bool = True
) -> tuple[float, float]:
    """Mean and std over `splits` equal chunks of exp(mean KL(p(y|x) || p(y))).

    `scores` is `[N, K]` logits (softmax taken here, in float64) or probabilities.
    """
    x = np.asarray(scores, np.float64)
    if x.ndim != 2 or len(x) < splits or splits < 1:
        raise VidganError(f"IS needs [N, K] scores with N >= splits={splits}, got {x.shape}.")
    if from_logits:
        x = x - x.max(axis=1, keepdims=True)
        p = np.exp(x)
        p /= p.sum(axis=1, keepdims=True)
    else:
        p = x / x.sum(axis=1, keepdims=True)
    values = []
    for chunk in np.array_split(p, splits):
        py = chunk.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(py)), 0.0).sum(axis=1)
        values.append(float(np.exp(kl.mean())))
    return float(np.mean(values)), float(np.std(values))
