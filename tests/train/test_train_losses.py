import math

import torch

from vidgan.train import losses
from vidgan.train.recipe import BatchRandom, mix_seed


def test_softplus_and_bce_are_the_same_function():
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(16, generator=gen) * 3, torch.randn(16, generator=gen) * 3
    a = losses.d_loss(real, fake, "softplus")
    b = losses.d_loss(real, fake, "bce")
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(losses.g_loss(fake, "softplus"), losses.g_loss(fake, "bce"), atol=1e-6)


def test_losses_at_zero_logits_are_log2():
    z = torch.zeros(4)
    assert math.isclose(losses.d_loss(z, z).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(losses.g_loss(z).item(), math.log(2), rel_tol=1e-6)
    # a confident, correct D has a small loss; G is then pushed hard (non-saturating)
    assert losses.d_loss(torch.full((4,), 10.0), torch.full((4,), -10.0)).item() < 1e-3
    assert losses.g_loss(torch.full((4,), -10.0)).item() > 9.9


def test_r1_of_a_linear_discriminator_is_its_weight_norm():
    w = torch.tensor([1.0, -2.0, 0.5])
    x = torch.randn(5, 3, requires_grad=True)
    logits = (x * w).sum(1) + x.square().sum(1) * 0  # gradient w.r.t. x is w for every sample
    assert math.isclose(losses.r1_penalty(logits, x).item(), float(w.square().sum()), rel_tol=1e-6)
    # quadratic D: grad = 2x, penalty = mean over samples of |2x|^2
    logits = x.square().sum(1)
    expected = (2 * x.detach()).square().sum(1).mean()
    assert torch.allclose(losses.r1_penalty(logits, x), expected)


def test_lazy_reg_factor_and_ema_half_life():
    assert losses.lazy_reg_factor(16) == 16 / 17 and losses.lazy_reg_factor(0) == 1.0
    beta = losses.ema_beta(batch=32, ema_kimg=10, rampup=0, nimg=10**6)
    steps = 10_000 / 32  # one half-life of images
    assert math.isclose(beta**steps, 0.5, rel_tol=1e-9)
    # ramp-up: early in training the half-life is rampup * images seen
    early = losses.ema_beta(batch=32, ema_kimg=10, rampup=0.05, nimg=6400)
    assert math.isclose(early, 0.5 ** (32 / 320), rel_tol=1e-9)
    assert losses.ema_beta(batch=32, ema_kimg=0, rampup=0, nimg=0) == 0.0


def test_update_ema_lerps_params_and_copies_buffers():
    a, b = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        a.weight.fill_(0.0)
        b.weight.fill_(1.0)
        b.running_mean.fill_(7.0)
    losses.update_ema(a, b, beta=0.75)
    assert torch.allclose(a.weight, torch.full((3,), 0.25))
    assert torch.equal(a.running_mean, b.running_mean)
    losses.update_ema(a, b, beta=0.0)
    assert torch.equal(a.weight, b.weight)


def test_batch_random_rows_do_not_depend_on_the_split():
    seed = mix_seed(0, 5, 1)
    whole = BatchRandom(seed=seed, global_batch=8, rows=slice(0, 8))
    parts = [BatchRandom(seed=seed, global_batch=8, rows=slice(i, i + 2)) for i in range(0, 8, 2)]
    full = (whole.randn(3), whole.rand(2), whole.randint(0, 5, 1))
    for i, p in enumerate(parts):
        got = (p.randn(3), p.rand(2), p.randint(0, 5, 1))
        for f, g in zip(full, got):
            assert torch.equal(f[2 * i : 2 * i + 2], g)
    assert mix_seed(0, 5, 1) != mix_seed(0, 6, 1) != mix_seed(1, 5, 1)


def test_batch_random_draw_wraps_cpu_samplers():
    def pairs(n, generator):
        t = torch.rand(n, 2, generator=generator).sort(dim=1).values
        return t[:, 0], t[:, 1]

    whole = BatchRandom(seed=7, global_batch=6, rows=slice(0, 6)).draw(pairs)
    half = BatchRandom(seed=7, global_batch=6, rows=slice(3, 6)).draw(pairs)
    assert torch.equal(whole[0][3:], half[0]) and torch.equal(whole[1][3:], half[1])
    assert torch.all(whole[0] <= whole[1])
