"""The loss math of the training loop, and nothing else: GAN losses, R1, EMA, lazy-reg scaling.

Every loss is a mean over the batch, so averaging gradients over ranks and accumulation rounds
gives the gradient of the global-batch loss. Logits are cast to float32 before the loss, so bf16
autocast never reaches the reductions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import ConfigError
from vidgan.train.recipe import LOSS_KINDS


def _check(kind: str) -> None:
    if kind not in LOSS_KINDS:
        raise ConfigError(f"unknown loss kind {kind!r}; valid kinds: {', '.join(LOSS_KINDS)}.")


def d_loss(real_logits: Tensor, fake_logits: Tensor, kind: str = "softplus") -> Tensor:
    """D loss: -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), batch mean (GAN, Eq. 1).

    "softplus" writes it as softplus(-D(x)) + softplus(D(G(z))) (StyleGAN2, DIGAN, FMR); "bce"
    as binary cross-entropy with targets 1 / 0 (G3AN). The two are the same function.
    """
    _check(kind)
    real, fake = real_logits.float(), fake_logits.float()
    if kind == "softplus":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    return F.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def g_loss(fake_logits: Tensor, kind: str = "softplus") -> Tensor:
    """Non-saturating G loss: -log sigmoid(D(G(z))), batch mean (Goodfellow et al. 2014, sec. 3)."""
    _check(kind)
    fake = fake_logits.float()
    if kind == "softplus":
        return F.softplus(-fake).mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """E ||grad_x D(x)||^2 over real x (Mescheder et al. 2018, Eq. 9, without gamma / 2).

    `real` must require grad and `real_logits` be computed from it; the graph is kept
    (create_graph) so the penalty can be back-propagated into D.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def lazy_reg_factor(interval: int) -> float:
    """c = k / (k + 1): Adam lr -> lr * c and betas -> betas ** c when R1 runs every k steps.

    StyleGAN2 (Karras et al. 2020, appendix B): this keeps the optimiser's effective step the
    same as if the regulariser ran every step. k = 0 (no R1) gives 1.
    """
    return interval / (interval + 1) if interval > 0 else 1.0


def ema_beta(*, batch: int, ema_kimg: float, rampup: float, nimg: int) -> float:
    """Per-step EMA decay for a half-life of `ema_kimg` thousand images (StyleGAN2-ADA).

    beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(1000 ema_kimg, rampup * nimg) when rampup
    is on, so G_ema follows G closely at the start. ema_kimg = 0 gives 0 (G_ema = G).
    """
    if ema_kimg <= 0:
        return 0.0
    ema_nimg = ema_kimg * 1000.0
    if rampup > 0:
        ema_nimg = min(ema_nimg, nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema = beta * ema + (1 - beta) * model for parameters; buffers are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)
