"""Gradient penalties on the discriminator's input gradient ``g_i = grad_x D(x_i)``.

Each penalty is a function of ``g`` (shape (N, d)) returning ``(P, dP/dg)``;
:func:`penalty_from_grad` picks it by name (the one dispatch, shared by
:func:`apply_penalty` and the toy trainer), and :func:`apply_penalty` runs it on
a network with hand-written double backprop (see :class:`gancourse.nn.MLP`) so
that ``dP/dtheta`` lands in ``net.grads``.

- R1 (Mescheder et al. 2018), on real data: ``P = gamma/2 E||g||^2``;
- R2, the same on generated data;
- R1 + R2 together, the same gamma on both (R3GAN, Huang et al. 2024): ``g`` holds the reals' gradients
  then the fakes', two halves of equal size, and ``P = R1(g_real) + R2(g_fake)``;
- WGAN-GP (Gulrajani et al. 2017), on random interpolates
  ``xhat = eps x + (1 - eps) G(z)``: ``P = lambda E(||g|| - 1)^2``.
"""
from __future__ import annotations

import numpy as np

from gancourse.errors import check_array, check_choice, check_positive
from gancourse.nn._checks import positive

__all__ = ["r1_penalty", "r1_r2_penalty", "wgan_gp_penalty", "penalty_from_grad", "interpolate", "apply_penalty", "PENALTIES",
           "PENALTY_POINTS"]

PENALTIES = ("none", "r1", "r2", "wgan-gp", "r1+r2")

#: where each penalty is taken: on the real samples, on the generated ones, or on random interpolates
PENALTY_POINTS = {"r1": "real", "r2": "fake", "wgan-gp": "interpolates", "r1+r2": "real+fake"}


def _check_g(g: np.ndarray) -> np.ndarray:
    """``g`` as a non-empty batch of input gradients (N, d); O(1) for an array (no pass over the data)."""
    if not isinstance(g, np.ndarray):
        g = check_array("g", g, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"g must be a batch of input gradients of shape (N, d), got shape {g.shape}")
    if g.shape[0] == 0:
        raise ValueError(f"g is empty (shape {g.shape}): a penalty is a mean over at least one sample")
    return g


def r1_penalty(g: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    """``P = gamma/2 * mean_i ||g_i||^2``, ``dP/dg = gamma * g / N`` (R1 on reals, R2 on fakes).

    ``g`` (N, d) with N >= 1; ``gamma`` a finite number > 0.
    """
    g = _check_g(g)
    positive("gamma", gamma)
    n = g.shape[0]
    return float(0.5 * gamma * np.einsum("ij,ij->", g, g) / n), (gamma / n) * g


def r1_r2_penalty(g: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    """R1 on the reals plus R2 on the fakes with one ``gamma`` (Huang et al. 2024, eq. 4):

        P = gamma/2 mean_i ||g_real_i||^2 + gamma/2 mean_i ||g_fake_i||^2,   dP/dg_half = gamma * g_half / (N/2).

    ``g`` (N, d) stacks the reals' input gradients (first N/2 rows) over the fakes' (last N/2), N even
    and >= 2, as the rows of a ``[real; fake]`` batch. Each half is averaged on its own, so this is
    ``r1_penalty(g_real) + r1_penalty(g_fake)`` (not ``r1_penalty`` of all N rows, which is half of it).
    """
    g = _check_g(g)
    positive("gamma", gamma)
    n = g.shape[0]
    if n % 2:
        raise ValueError(f"r1+r2 needs the reals' and the fakes' gradients in two halves of equal size, got "
                         f"{n} rows (an odd number)")
    h = n // 2
    p_real, d_real = r1_penalty(g[:h], gamma)
    p_fake, d_fake = r1_penalty(g[h:], gamma)
    return p_real + p_fake, np.concatenate([d_real, d_fake])  # (N, d)


def wgan_gp_penalty(g: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """``P = lambda * mean_i (||g_i|| - 1)^2`` and ``dP/dg`` (Gulrajani et al. 2017).

    ``g`` (N, d) with N >= 1; ``lam`` a finite number > 0. By the chain rule

        dP/dg_i = (2 lambda / N) (||g_i|| - 1) d||g_i||/dg_i,   d||g||/dg = g / ||g||  (g != 0).

    At ``g_i = 0`` (a critic that is flat around ``x_i``, say a dead ReLU region) the norm is not
    differentiable; its subdifferential is the unit ball, and we take its minimum-norm element 0
    (as torch's norm backward does), so there

        dP/dg_i = (2 lambda / N) (0 - 1) * 0 = 0.

    This is also what centred differences give: ``||+-eps e_j|| = eps``, so ``P`` changes by the same
    amount both ways. A row whose squared norm underflows to 0 is treated the same way. (The row
    still adds ``lambda / N`` to ``P``; no infinitesimal change of ``g_i`` alone can lower it.)
    """
    g = _check_g(g)
    positive("lam", lam)
    n = g.shape[0]
    norm = np.sqrt(np.einsum("ij,ij->i", g, g))[:, None]  # (N, 1)
    gap = norm - 1
    live = norm > 0  # (N, 1); a computed norm is either 0 or >= sqrt(smallest subnormal) >> tiny
    coef = 2 * lam * gap / (np.where(live, norm, 1) * n)  # (N, 1)
    return float(lam * (gap * gap).mean()), np.where(live, coef, 0) * g


def penalty_from_grad(kind: str, g: np.ndarray, weight: float) -> tuple[float, np.ndarray]:
    """``(P, dP/dg)`` of penalty ``kind`` at the input gradients ``g`` (N, d), with weight ``weight``.

    ``"r1"`` and ``"r2"`` are :func:`r1_penalty` (zero-centred, weight gamma; they differ only in where
    ``g`` is taken, see ``PENALTY_POINTS``), ``"r1+r2"`` is :func:`r1_r2_penalty` (``g`` = the reals'
    gradients over the fakes'), ``"wgan-gp"`` is :func:`wgan_gp_penalty` (weight lambda).
    """
    check_choice("penalty", kind, PENALTY_POINTS)
    if kind == "wgan-gp":
        return wgan_gp_penalty(g, weight)
    return r1_r2_penalty(g, weight) if kind == "r1+r2" else r1_penalty(g, weight)


def interpolate(real: np.ndarray, fake: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random points on the segments between paired real and fake samples (WGAN-GP)."""
    eps = rng.random((real.shape[0], 1)).astype(real.dtype)
    return eps * real + (1 - eps) * fake


def apply_penalty(net, x: np.ndarray, kind: str, weight: float) -> float:
    """Evaluate penalty ``kind`` at points ``x`` and add ``dP/dtheta`` into ``net.grads``.

    ``kind`` is ``"r1"``/``"r2"``/``"r1+r2"`` (zero-centred, weight gamma) or ``"wgan-gp"``
    (weight lambda); ``x`` are the points where the penalty is taken (reals for
    R1, fakes for R2, the reals stacked over as many fakes for R1 + R2, interpolates
    for WGAN-GP). Runs its own forward pass.
    """
    check_choice("penalty", kind, PENALTY_POINTS)
    check_positive("penalty weight", weight)
    net.forward(x)
    value, dg = penalty_from_grad(kind, net.input_grad(), weight)
    net.backward(None, d_input_grad=dg)
    return value
