import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidgan.data.pairs import (
    frame_times,
    index_to_time,
    sample_pair_indices,
    sample_pair_times,
)
from vidgan.errors import ConfigError


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 64), b=st.integers(1, 32), seed=st.integers(0, 2**31 - 1))
def test_digan_pairs_are_sorted_in_range_with_reference_dt(n, b, seed):
    g = torch.Generator().manual_seed(seed)
    i1, i2, dt = sample_pair_indices(n, "digan", generator=g, batch_size=b)
    assert i1.shape == i2.shape == dt.shape == (b,)
    assert (i1 >= 0).all() and (i1 <= i2).all() and (i2 < n).all()
    assert torch.allclose(dt, (i2 - i1).float() / (n - 1))
    # Same time convention as the generator: t_k = k / (n - 1).
    t = frame_times(n, "digan")
    assert torch.allclose(dt, t[i2] - t[i1], atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 64), b=st.integers(1, 32), seed=st.integers(0, 2**31 - 1))
def test_fmr_pairs_are_distinct_sorted_with_reference_dt(n, b, seed):
    g = torch.Generator().manual_seed(seed)
    i1, i2, dt = sample_pair_indices(n, "fmr", generator=g, batch_size=b)
    assert (i1 >= 0).all() and (i1 < i2).all() and (i2 < n).all()
    assert torch.allclose(dt, 2.0 * (i2 - i1).float() / n)  # (i2-i1)/(16*step)*2 with step folded
    t = frame_times(n, "fmr")
    assert torch.allclose(dt, t[i2] - t[i1], atol=1e-6)
    assert ((dt > 0) & (dt < 2)).all()


@settings(deadline=None)
@given(lengths=st.lists(st.integers(2, 40), min_size=1, max_size=16), seed=st.integers(0, 999))
def test_per_item_lengths(lengths, seed):
    n = torch.tensor(lengths)
    for scheme in ("digan", "fmr"):
        i1, i2, dt = sample_pair_indices(n, scheme, generator=torch.Generator().manual_seed(seed))
        assert (i2 < n).all() and (i1 <= i2).all()
        assert torch.allclose(dt, index_to_time(i2, n, scheme) - index_to_time(i1, n, scheme))


def test_digan_pair_distribution_matches_beta_floor_exactly():
    """f0 = int(n Beta(2,1)), f1 = int(n Beta(1,2)), then sorted: exact pmf vs 40k samples."""
    n, draws = 4, 40000
    cdf_a = lambda x: x**2  # Beta(2, 1)  # noqa: E731
    cdf_b = lambda x: 1 - (1 - x) ** 2  # Beta(1, 2)  # noqa: E731
    pa = [cdf_a((k + 1) / n) - cdf_a(k / n) for k in range(n)]
    pb = [cdf_b((k + 1) / n) - cdf_b(k / n) for k in range(n)]
    expected = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            expected[min(a, b), max(a, b)] += pa[a] * pb[b]
    g = torch.Generator().manual_seed(0)
    i1, i2, _ = sample_pair_indices(n, "digan", generator=g, batch_size=draws)
    got = np.zeros((n, n))
    np.add.at(got, (i1.numpy(), i2.numpy()), 1.0 / draws)
    sigma = np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(got - expected) <= 5 * sigma + 1e-9)


def test_fmr_pairs_are_uniform_over_distinct_pairs():
    n, draws = 5, 30000
    i1, i2, _ = sample_pair_indices(
        n, "fmr", generator=torch.Generator().manual_seed(1), batch_size=draws
    )
    counts = np.zeros((n, n))
    np.add.at(counts, (i1.numpy(), i2.numpy()), 1)
    p = 1 / math.comb(n, 2)
    upper = counts[np.triu_indices(n, 1)] / draws
    assert np.all(np.abs(upper - p) < 5 * math.sqrt(p * (1 - p) / draws))
    assert counts[np.tril_indices(n)].sum() == 0


def test_generated_digan_times_follow_sorted_betas():
    draws = 50000
    t1, t2, dt = sample_pair_times(draws, "digan", generator=torch.Generator().manual_seed(2))
    assert ((t1 >= 0) & (t1 <= t2) & (t2 <= 1)).all()
    assert torch.allclose(dt, t2 - t1)
    # Independent reference with numpy's Beta sampler.
    rng = np.random.default_rng(0)
    a, b = rng.beta(2, 1, draws), rng.beta(1, 2, draws)
    ref_lo, ref_hi = np.minimum(a, b), np.maximum(a, b)
    for ours, ref in ((t1, ref_lo), (t2, ref_hi)):
        se = ref.std() / math.sqrt(draws)
        assert abs(ours.double().mean().item() - ref.mean()) < 6 * se
        assert abs(np.quantile(ours.numpy(), 0.5) - np.quantile(ref, 0.5)) < 0.01


def test_generated_fmr_times_are_sorted_grid_draws_with_replacement():
    n, draws = 16, 40000
    t1, t2, dt = sample_pair_times(
        draws, "fmr", generator=torch.Generator().manual_seed(3), n_frames=n
    )
    grid = frame_times(n, "fmr")
    assert torch.allclose(grid, torch.linspace(-1, 1, n + 1)[:-1])
    for t in (t1, t2):
        k = torch.round((t + 1) * n / 2).long()
        assert torch.allclose(grid[k], t)
    assert (dt >= 0).all()
    assert abs((dt == 0).float().mean().item() - 1 / n) < 0.006  # P(same grid point) = 1/n


def test_times_follow_generator_time_conventions():
    assert torch.allclose(frame_times(16, "digan"), torch.linspace(0, 1, 16))
    assert torch.allclose(frame_times(16, "fmr"), -1 + torch.arange(16) / 8)


def test_pairs_are_reproducible_with_a_generator():
    a = sample_pair_indices(16, "digan", generator=torch.Generator().manual_seed(5), batch_size=8)
    b = sample_pair_indices(16, "digan", generator=torch.Generator().manual_seed(5), batch_size=8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_unknown_scheme_and_short_clips_are_errors():
    with pytest.raises(ConfigError, match="did you mean 'fmr'"):
        sample_pair_indices(16, "fmrr")
    with pytest.raises(ConfigError, match="at least 2 frames"):
        sample_pair_indices(1, "digan")
