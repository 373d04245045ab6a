"""Fréchet distance, covariance estimators and polynomial MMD against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from vidgan.errors import ConfigError, VidganError
from vidgan.metrics.frechet import (
    FeatureStats,
    frechet_distance,
    polynomial_mmd,
    stats_distance,
)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_diagonal_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.random(6) + 0.1, rng.random(6) + 0.1
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_frechet_matches_symmetric_form_for_full_covariances():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(50, 8)) @ rng.normal(size=(8, 8))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    # Tr sqrtm(S1 S2) = Tr sqrtm(S1^1/2 S2 S1^1/2), the latter symmetric PSD
    r = _sqrtm_psd(s1)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(_sqrtm_psd(r @ s2 @ r))
    got = frechet_distance(np.zeros(8), s1, np.zeros(8), s2)
    assert got == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(np.ones(8), s1, np.ones(8), s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_near_singular_stays_finite_and_small():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 32))  # rank 9 covariance in 32 dims
    s = FeatureStats.from_features(x)
    d_same = stats_distance(s, s)
    assert np.isfinite(d_same) and abs(d_same) < 1e-4
    y = rng.normal(size=(10, 32)) + 3.0
    d = stats_distance(s, FeatureStats.from_features(y))
    assert np.isfinite(d) and d > 32 * 9 * 0.8  # mean shift alone is 9 per dim


def test_covariance_estimators_are_recorded_and_exact():
    x = np.random.default_rng(3).normal(size=(30, 5))
    biased = FeatureStats.from_features(x, "biased")
    unbiased = FeatureStats.from_features(x, "unbiased")
    np.testing.assert_allclose(biased.sigma, np.cov(x, rowvar=False, ddof=0), atol=1e-12)
    np.testing.assert_allclose(unbiased.sigma, np.cov(x, rowvar=False), atol=1e-12)
    assert (biased.estimator, unbiased.estimator) == ("biased", "unbiased")
    with pytest.raises(VidganError, match="estimators"):
        stats_distance(biased, unbiased)
    with pytest.raises(ConfigError):
        FeatureStats.from_features(x, "ledoit")


def test_stats_save_load_round_trip(tmp_path):
    s = FeatureStats.from_features(np.random.default_rng(4).normal(size=(9, 3)), "unbiased")
    s.save(tmp_path / "s.npz")
    t = FeatureStats.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(s.sigma, t.sigma)
    assert (t.num, t.estimator) == (9, "unbiased")


def test_polynomial_mmd_matches_brute_force():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(7, 3)) + 0.5

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    yy = sum(k(y[i], y[j]) for i in range(7) for j in range(7) if i != j) / 42
    xy = sum(k(a, b) for a in x for b in y) / 42
    assert polynomial_mmd(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_polynomial_mmd_separates_distributions():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    c = rng.normal(size=(200, 4)) + 1.0
    same, shifted = polynomial_mmd(a, b), polynomial_mmd(a, c)
    assert abs(same) < 0.1 * shifted
    sub = polynomial_mmd(a, c, num_subsets=5, subset_size=50)
    assert sub == pytest.approx(shifted, rel=0.5)


def test_inception_score_known_answers():
    from vidgan.metrics.inception_score import inception_score

    k = 5
    confident = np.eye(k)[np.arange(100) % k]  # sharp and evenly spread over k classes
    mean, std = inception_score(confident, splits=4, from_logits=False)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-12)
    uniform = np.zeros((40, k))  # logits: every prediction uniform
    assert inception_score(uniform, splits=2)[0] == pytest.approx(1.0)
    one_class = np.tile([10.0, 0, 0, 0, 0], (30, 1))
    assert inception_score(one_class, splits=3)[0] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(VidganError):
        inception_score(np.zeros((3, k)), splits=10)


def test_eigh_method_matches_the_sqrtm_reference():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(80, 20))
    y = rng.normal(size=(90, 20)) @ rng.normal(size=(20, 20)) * 0.3 + 0.2
    a, b = FeatureStats.from_features(x), FeatureStats.from_features(y)
    ref = stats_distance(a, b)
    assert stats_distance(a, b, method="eigh") == pytest.approx(ref, rel=1e-8)
    with pytest.raises(ConfigError):
        stats_distance(a, b, method="newton")


def test_frechet_equals_the_scipy_sqrtm_reference_in_float64():
    import scipy.linalg

    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, 24)).astype(np.float32)
    y = (rng.normal(size=(280, 24)) @ rng.normal(size=(24, 24)) * 0.5 + 0.3).astype(np.float32)
    a, b = FeatureStats.from_features(x), FeatureStats.from_features(y)
    assert a.sigma.dtype == np.float64 and a.mu.dtype == np.float64
    # StyleGAN-V / pytorch-fid: scipy.linalg.sqrtm of the product, real part of the trace
    s, _ = scipy.linalg.sqrtm(b.sigma.dot(a.sigma), disp=False)
    ref = np.real(np.square(a.mu - b.mu).sum() + np.trace(a.sigma + b.sigma - 2 * s))
    assert stats_distance(a, b) == pytest.approx(float(ref), rel=1e-10)


def test_frechet_is_float64_for_large_offset_features():
    rng = np.random.default_rng(12)
    x = (1e4 + rng.normal(size=(500, 16))).astype(np.float32)  # float32 input, large offset
    y = x + np.float32(0.25)  # same covariance, mean shifted by 0.25 per dim (exact in float32)
    d = stats_distance(FeatureStats.from_features(x), FeatureStats.from_features(y))
    assert d == pytest.approx(16 * 0.25**2, rel=1e-6)


def test_frechet_rank_deficient_like_fvd_with_few_clips():
    # 40 samples in 64 dims (FVD's 400-d logits from 256 clips is the same situation)
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(40, 64)), rng.normal(size=(40, 64)) * 1.5 + 0.2
    a, b = FeatureStats.from_features(x), FeatureStats.from_features(y)
    d_sqrtm, d_eigh = stats_distance(a, b), stats_distance(a, b, method="eigh")
    assert np.isfinite(d_sqrtm) and d_sqrtm > 0
    assert d_sqrtm == pytest.approx(d_eigh, rel=1e-6)
    assert abs(stats_distance(a, a)) < 1e-6
