"""Gaussian feature statistics, the Fréchet distance (FID/FVD) and polynomial-kernel MMD (KID/KVD).

Fréchet distance (Heusel et al., NeurIPS 2017, Eq. 6; FVD: Unterthiner et al., arXiv 1812.01717):
    d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)),
computed in float64 with scipy.linalg.sqrtm as the reference codes do; when the product is near
singular and sqrtm returns non-finite values, pytorch-fid's fallback adds eps*I to both
covariances. The covariance estimator is explicit: StyleGAN-V uses the biased E[xx^T] - mu mu^T,
pytorch-fid (np.cov) the unbiased one; the choice is recorded with every result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vidgan.errors import ConfigError, VidganError

Estimator = Literal["biased", "unbiased"]
ESTIMATORS: tuple[str, ...] = ("biased", "unbiased")


@dataclass(frozen=True)
class FeatureStats:
    """Mean, covariance and count of a feature set (float64), with the estimator used."""

    mu: np.ndarray  # [D]
    sigma: np.ndarray  # [D, D]
    num: int
    estimator: str = "biased"
    meta: dict = field(default_factory=dict, compare=False)

    @staticmethod
    def from_features(features: np.ndarray, estimator: str = "biased") -> FeatureStats:
        """Statistics of `features` `[N, D]` in float64 with the chosen covariance estimator."""
        if estimator not in ESTIMATORS:
            raise ConfigError(
                f"covariance estimator must be one of {ESTIMATORS}, got {estimator!r}."
            )
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise VidganError(f"need at least 2 feature vectors [N, D], got shape {x.shape}.")
        n = x.shape[0]
        mu = x.mean(axis=0)
        centred = x - mu
        sigma = centred.T @ centred / (n if estimator == "biased" else n - 1)
        return FeatureStats(mu=mu, sigma=sigma, num=n, estimator=estimator)

    def save(self, path) -> None:
        np.savez(path, mu=self.mu, sigma=self.sigma, num=self.num, estimator=self.estimator)

    @staticmethod
    def load(path) -> FeatureStats:
        with np.load(path, allow_pickle=False) as z:
            return FeatureStats(
                mu=z["mu"], sigma=z["sigma"], num=int(z["num"]), estimator=str(z["estimator"])
            )


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    eps: float = 1e-6,
    method: str = "sqrtm",
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64, real part.

    method "sqrtm" is the reference (scipy.linalg.sqrtm, as StyleGAN-V and pytorch-fid);
    "eigh" computes Tr sqrtm(S1 S2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)) with symmetric
    eigensolvers: the same number to ~1e-8 relative, several times faster (periodic evaluation).
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise VidganError(
            f"feature statistics do not match: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {s1.shape} vs {s2.shape}."
        )
    diff = mu1 - mu2
    if method == "eigh":
        w, v = np.linalg.eigh(s1)
        root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = np.linalg.eigvalsh(root @ s2 @ root)
        tr_covmean = float(np.sqrt(np.clip(inner, 0, None)).sum())
        return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    if method != "sqrtm":
        raise ConfigError(f"Fréchet method must be 'sqrtm' or 'eigh', got {method!r}.")
    import scipy.linalg  # slow to import; only needed here

    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        # Near-singular product: regularise both covariances (pytorch-fid's fallback).
        offset = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = np.real(covmean)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def stats_distance(a: FeatureStats, b: FeatureStats, *, method: str = "sqrtm") -> float:
    """Fréchet distance of two `FeatureStats` made with the same estimator."""
    if a.estimator != b.estimator:
        raise VidganError(
            f"real and fake statistics use different covariance estimators "
            f"({a.estimator} vs {b.estimator})."
        )
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, method=method)


def polynomial_mmd(
    x: np.ndarray,
    y: np.ndarray,
    *,
    degree: int = 3,
    coef0: float = 1.0,
    gamma: float | None = None,
    num_subsets: int = 1,
    subset_size: int | None = None,
    seed: int = 0,
) -> float:
    """Unbiased MMD^2 with k(a, b) = (gamma a.b + coef0)^degree, gamma = 1/D (KID, KVD).

    With `subset_size`, the mean over `num_subsets` random subsets of that size (KID's
    protocol); without, one estimate on all samples.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise VidganError(f"MMD needs [N, D] and [M, D] features, got {x.shape} and {y.shape}.")
    d = x.shape[1]
    g = 1.0 / d if gamma is None else gamma
    if min(len(x), len(y)) < 2:
        raise VidganError(f"MMD needs at least 2 samples per set, got {len(x)} and {len(y)}.")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets if subset_size is not None else 1):
        if subset_size is None:  # every sample of both sets
            xs, ys = x, y
        else:
            m = max(2, min(subset_size, len(x), len(y)))
            xs = x[rng.choice(len(x), m, replace=False)]
            ys = y[rng.choice(len(y), m, replace=False)]
        kxx = (g * xs @ xs.T + coef0) ** degree
        kyy = (g * ys @ ys.T + coef0) ** degree
        kxy = (g * xs @ ys.T + coef0) ** degree
        nx, ny = len(xs), len(ys)
        term_x = (kxx.sum() - np.trace(kxx)) / (nx * (nx - 1))
        term_y = (kyy.sum() - np.trace(kyy)) / (ny * (ny - 1))
        values.append(term_x + term_y - 2.0 * kxy.mean())
    return float(np.mean(values))
