"""GAN losses on discriminator outputs (logits), each returning the loss and its gradient.

Discriminator losses: ``d_loss_*(real, fake) -> (loss, d_real, d_fake)``.
Generator losses: ``g_loss_*(fake, real) -> (loss, d_fake)`` (``real`` is only
used by the relativistic loss; the others ignore it).
All inputs are logits of shape (N, 1) or (N,) with N >= 1 (an empty batch raises a ValueError: its
mean would be NaN); means are over the batch.
Log-sigmoids use the stable ``softplus(x) = max(x, 0) + log1p(exp(-|x|))``:
``-log sigmoid(x) = softplus(-x)``, ``-log(1 - sigmoid(x)) = softplus(x)``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from gancourse.errors import check_array, check_choice

__all__ = [
    "softplus",
    "sigmoid",
    "d_loss_bce",
    "g_loss_saturating",
    "g_loss_nonsaturating",
    "d_loss_wgan",
    "g_loss_wgan",
    "d_loss_hinge",
    "g_loss_hinge",
    "d_loss_lsgan",
    "g_loss_lsgan",
    "d_loss_rpgan",
    "g_loss_rpgan",
    "GANLoss",
    "LOSSES",
    "get_loss",
]


def _logits(name: str, x: np.ndarray) -> np.ndarray:
    """``x`` as a non-empty array of logits; O(1) for an array (no pass over the data)."""
    if not isinstance(x, np.ndarray):
        x = check_array(name, x, dtype=np.float64)
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}): a loss is a mean over at least one sample")
    return x


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def d_loss_bce(real: np.ndarray, fake: np.ndarray, real_label: float = 1.0):
    """Discriminator cross-entropy (Goodfellow et al. 2014), with one-sided label smoothing.

    ``L_D = -E[a log D(x) + (1 - a) log(1 - D(x))] - E[log(1 - D(G(z)))]``, ``D = sigmoid(logit)``,
    real target ``a = real_label`` (Salimans et al. 2016 use a = 0.9; fake targets stay 0).
    Gradients: ``dL/dr = (sigmoid(r) - a) / N_r``, ``dL/df = sigmoid(f) / N_f``.
    """
    real, fake = _logits("real", real), _logits("fake", fake)
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1], got {real_label}")
    a = real_label
    real_term = softplus(-real) if a == 1.0 else a * softplus(-real) + (1 - a) * softplus(real)
    loss = real_term.mean() + softplus(fake).mean()
    return float(loss), (sigmoid(real) - a) / real.size, sigmoid(fake) / fake.size


def g_loss_saturating(fake: np.ndarray, real: np.ndarray | None = None):
    """Minimax generator loss ``E[log(1 - D(G(z)))]``; gradient ``-sigmoid(f) / N`` vanishes as D(G(z)) -> 0."""
    fake = _logits("fake", fake)
    return float(-softplus(fake).mean()), -sigmoid(fake) / fake.size


def g_loss_nonsaturating(fake: np.ndarray, real: np.ndarray | None = None):
    """Non-saturating generator loss ``-E[log D(G(z))]``; gradient ``-sigmoid(-f) / N``."""
    fake = _logits("fake", fake)
    return float(softplus(-fake).mean()), -sigmoid(-fake) / fake.size


def d_loss_wgan(real: np.ndarray, fake: np.ndarray):
    """WGAN critic loss ``E[f(G(z))] - E[f(x)]`` (Arjovsky et al. 2017)."""
    real, fake = _logits("real", real), _logits("fake", fake)
    return float(fake.mean() - real.mean()), np.full_like(real, -1 / real.size), np.full_like(fake, 1 / fake.size)


def g_loss_wgan(fake: np.ndarray, real: np.ndarray | None = None):
    """WGAN generator loss ``-E[f(G(z))]``."""
    fake = _logits("fake", fake)
    return float(-fake.mean()), np.full_like(fake, -1 / fake.size)


def d_loss_hinge(real: np.ndarray, fake: np.ndarray):
    """Hinge loss ``E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]`` (Lim & Ye 2017; Miyato et al. 2018)."""
    real, fake = _logits("real", real), _logits("fake", fake)
    lr, lf = 1 - real, 1 + fake
    loss = np.maximum(lr, 0).mean() + np.maximum(lf, 0).mean()
    return float(loss), -(lr > 0).astype(real.dtype) / real.size, (lf > 0).astype(fake.dtype) / fake.size


g_loss_hinge = g_loss_wgan  # the hinge generator loss is -E[D(G(z))], as in WGAN


def d_loss_lsgan(real: np.ndarray, fake: np.ndarray):
    """Least-squares loss ``1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]`` (Mao et al. 2017, a=0, b=c=1)."""
    real, fake = _logits("real", real), _logits("fake", fake)
    loss = 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    return float(loss), (real - 1) / real.size, fake / fake.size


def g_loss_lsgan(fake: np.ndarray, real: np.ndarray | None = None):
    """Least-squares generator loss ``1/2 E[(D(G(z)) - 1)^2]``."""
    fake = _logits("fake", fake)
    return float(0.5 * ((fake - 1) ** 2).mean()), (fake - 1) / fake.size


def d_loss_rpgan(real: np.ndarray, fake: np.ndarray):
    """Relativistic pairing loss ``E[softplus(D(G(z_i)) - D(x_i))]`` over pairs (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024)."""
    real, fake = _logits("real", real), _logits("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(f"rpgan pairs real and fake samples: shapes must match, got {real.shape} and {fake.shape}")
    t = fake - real
    s = sigmoid(t) / t.size
    return float(softplus(t).mean()), -s, s


def g_loss_rpgan(fake: np.ndarray, real: np.ndarray | None = None):
    """Relativistic pairing generator loss ``E[softplus(D(x_i) - D(G(z_i)))]``."""
    fake = _logits("fake", fake)
    real = None if real is None else _logits("real", real)
    if real is None or real.shape != fake.shape:
        raise ValueError("rpgan's generator loss needs the real logits, paired with the fake ones (same shape)")
    t = real - fake
    return float(softplus(t).mean()), -sigmoid(t) / t.size


class GANLoss(NamedTuple):
    """A discriminator loss and its generator loss."""

    d: Callable
    g: Callable
    needs_real_in_g: bool = False


LOSSES: dict[str, GANLoss] = {
    "gan": GANLoss(d_loss_bce, g_loss_saturating),
    "ns": GANLoss(d_loss_bce, g_loss_nonsaturating),
    "wgan": GANLoss(d_loss_wgan, g_loss_wgan),
    "hinge": GANLoss(d_loss_hinge, g_loss_hinge),
    "lsgan": GANLoss(d_loss_lsgan, g_loss_lsgan),
    "rpgan": GANLoss(d_loss_rpgan, g_loss_rpgan, needs_real_in_g=True),
}


def get_loss(name: str) -> GANLoss:
    """The pair of losses called ``name`` (one of ``LOSSES``)."""
    return LOSSES[check_choice("loss", name, LOSSES)]
