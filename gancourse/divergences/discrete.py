"""KL, reverse KL, Jensen-Shannon and total variation on discrete distributions and on grid densities.

Every function takes two distributions ``p, q`` of the same shape. Without ``cell`` they are
probability vectors (or tables) that sum to 1. With ``cell`` they are *density values* on a
regular 1D or 2D grid whose cells have length / area ``cell``, and each integral is the Riemann
sum ``sum_i f(p_i, q_i) * cell``. Units are nats. Conventions: ``0 log 0 = 0`` and
``p log(p / 0) = +inf`` for ``p > 0`` (returned as ``np.inf`` without a warning).
Reference: Cover & Thomas, *Elements of Information Theory*, ch. 2 and 11.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import rel_entr

from gancourse.divergences._checks import as_pair

__all__ = ["kl_divergence", "reverse_kl_divergence", "js_divergence", "total_variation", "cell_area"]


def kl_divergence(p: Any, q: Any, *, cell: float | None = None) -> float:
    """``KL(p || q) = sum_i p_i log(p_i / q_i)`` (times ``cell`` for densities on a grid).

    ``p, q``: same shape, any rank. ``+inf`` when some ``p_i > 0`` has ``q_i = 0``.
    """
    a, b, w = as_pair(p, q, cell)
    terms = rel_entr(a, b)  # p log(p / q) elementwise, 0 where p = 0, inf where p > 0 = q
    total = float(terms.sum()) * w
    return max(total, 0.0) if cell is None else total  # a Riemann sum may dip a hair below 0


def reverse_kl_divergence(p: Any, q: Any, *, cell: float | None = None) -> float:
    """``KL(q || p) = sum_i q_i log(q_i / p_i)``: the "reverse" KL with the model ``q`` first."""
    return kl_divergence(q, p, cell=cell)


def js_divergence(p: Any, q: Any, *, cell: float | None = None) -> float:
    """``JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m)`` with ``m = (p + q) / 2``; in ``[0, log 2]``.

    Always finite (``m > 0`` wherever ``p`` or ``q`` is); equals ``log 2`` exactly when the supports
    of ``p`` and ``q`` are disjoint (Lin 1991).
    """
    a, b, w = as_pair(p, q, cell)
    m = 0.5 * (a + b)
    total = 0.5 * w * float(rel_entr(a, m).sum() + rel_entr(b, m).sum())
    return float(np.clip(total, 0.0, np.log(2.0))) if cell is None else total


def total_variation(p: Any, q: Any, *, cell: float | None = None) -> float:
    """``TV(p, q) = 1/2 sum_i |p_i - q_i| = sup_A |p(A) - q(A)|``; in ``[0, 1]``."""
    a, b, w = as_pair(p, q, cell)
    return 0.5 * w * float(np.abs(a - b).sum())


def cell_area(*axes: Any) -> float:
    """The size of one cell of the regular grid spanned by 1D coordinate ``axes``: ``prod_k dx_k``.

    ``cell_area(xs)`` is ``xs[1] - xs[0]``; ``cell_area(xs, ys)`` is ``dx * dy`` for a 2D grid.
    Each axis must be increasing and evenly spaced.
    """
    if not axes:
        raise ValueError("cell_area needs at least one coordinate axis")
    area = 1.0
    for k, ax in enumerate(axes):
        x = np.asarray(ax, dtype=np.float64)
        if x.ndim != 1 or x.size < 2:
            raise ValueError(f"axis {k} must be a 1D array of at least 2 coordinates, got shape {x.shape}")
        d = np.diff(x)
        if np.any(d <= 0) or not np.allclose(d, d[0], rtol=1e-6, atol=0.0):
            raise ValueError(f"axis {k} must be increasing and evenly spaced (steps from {d.min():.6g} to {d.max():.6g})")
        area *= float(d.mean())
    return area
