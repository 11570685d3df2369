"""The optimal discriminator and the value of the GAN game (Goodfellow et al. 2014, Prop. 1 and Thm. 1).

For a fixed generator with density ``q`` and data density ``p``, the discriminator maximises

    V(D, G) = E_p[log D(x)] + E_q[log(1 - D(x))]

pointwise, at ``D*(x) = p(x) / (p(x) + q(x))``, where ``V(D*, G) = 2 JSD(p || q) - log 4``.
With target labels ``alpha`` for real and ``beta`` for fake points (label smoothing, Salimans et al.
2016), the maximiser becomes ``D*(x) = (alpha p(x) + beta q(x)) / (p(x) + q(x))``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from gancourse.divergences._checks import as_pair
from gancourse.divergences.discrete import js_divergence
from gancourse.errors import check_array

__all__ = ["optimal_discriminator", "gan_value", "optimal_gan_value"]


def _check_label(name: str, v: float) -> float:
    v = float(v)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} is a target label in [0, 1], got {v!r}")
    return v


def optimal_discriminator(p: Any, q: Any, *, alpha: float = 1.0, beta: float = 0.0, fill: float = 0.5) -> np.ndarray:
    """``D*(x) = (alpha p(x) + beta q(x)) / (p(x) + q(x))``, elementwise.

    ``p, q``: non-negative densities or probabilities of the same shape (evaluated on the same
    points; they need not sum to 1). ``alpha, beta``: real and fake labels (default 1 and 0, the
    plain GAN: ``D* = p / (p + q)``). Where ``p = q = 0`` every value of D is optimal; ``fill`` is
    returned there. Output: same shape as ``p``.
    """
    a = check_array("p", p, dtype=np.float64, finite=True)
    b = check_array("q", q, dtype=np.float64, finite=True)
    if a.shape != b.shape:
        raise ValueError(f"p and q must be evaluated on the same points (same shape), got shapes {a.shape} and {b.shape}")
    for name, arr in (("p", a), ("q", b)):
        if np.any(arr < 0):
            raise ValueError(f"{name} must be non-negative (a density), got minimum {arr.min():.6g}")
    alpha, beta = _check_label("alpha", alpha), _check_label("beta", beta)
    s = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (alpha * a + beta * b) / s
    return np.where(s > 0, d, float(fill))


def gan_value(d: Any, p: Any, q: Any, *, alpha: float = 1.0, beta: float = 0.0, cell: float | None = None) -> float:
    """``V(D, G) = sum_x p(x) [a log D + (1-a) log(1-D)] + q(x) [b log D + (1-b) log(1-D)]``.

    With the default labels ``a = alpha = 1``, ``b = beta = 0`` this is the GAN value
    ``E_p[log D] + E_q[log(1 - D)]``. ``d``: discriminator outputs in [0, 1] on the support of
    ``p, q`` (same shape). ``p, q``: distributions (sum to 1) or, with ``cell``, densities on a grid.
    ``0 log 0 = 0``; ``-inf`` if ``D = 0`` where the real term has mass (or ``D = 1`` on a fake one).
    """
    a, b, w = as_pair(p, q, cell)
    dd = check_array("d", d, dtype=np.float64, finite=True)
    if dd.shape != a.shape:
        raise ValueError(f"d must be given on the support of p and q, shape {a.shape}, got shape {dd.shape}")
    if np.any((dd < 0) | (dd > 1)):
        raise ValueError(f"d holds probabilities in [0, 1], got values from {dd.min():.6g} to {dd.max():.6g}")
    alpha, beta = _check_label("alpha", alpha), _check_label("beta", beta)
    # xlogy(c, D) = c log D with 0 log 0 = 0; the weights are the label-weighted masses
    real = xlogy(alpha * a + beta * b, dd)  # mass that wants D -> 1
    fake = xlogy((1 - alpha) * a + (1 - beta) * b, 1 - dd)  # mass that wants D -> 0
    return w * float(real.sum() + fake.sum())


def optimal_gan_value(p: Any, q: Any, *, cell: float | None = None) -> float:
    """``V(D*, G) = 2 JSD(p || q) - log 4``, in ``[-log 4, 0]`` (Goodfellow et al. 2014, Thm. 1)."""
    return 2.0 * js_divergence(p, q, cell=cell) - np.log(4.0)
