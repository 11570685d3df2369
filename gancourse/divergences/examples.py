"""Worked examples from the lectures, as data plus the closed forms they are checked against.

- the earth mover's distance between ``Categorical(3, 2, 1, 4) / 10`` and ``Categorical(1, 2, 4, 3) / 10``
  on the points 1..4, which is 5/10;
- Example 1 of the WGAN paper (Arjovsky, Chintala & Bottou 2017): two parallel segments
  ``P_0 = (0, Z)`` and ``P_theta = (theta, Z)``, ``Z ~ U[0, 1]``. For ``theta != 0`` the supports are
  disjoint, so ``JSD = log 2``, ``KL = +inf``, ``TV = 1`` whatever ``theta``, while ``W1 = |theta|``.
"""
from __future__ import annotations

import numpy as np

from gancourse.divergences.discrete import js_divergence, kl_divergence, total_variation
from gancourse.divergences.wasserstein import ot_exact
from gancourse.errors import check_positive_int

__all__ = ["earth_mover_example", "parallel_lines", "parallel_lines_closed_form", "parallel_lines_divergences"]


def earth_mover_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lecture's categorical pair: ``(p, q, support)`` with p = (3,2,1,4)/10, q = (1,2,4,3)/10 on 1..4."""
    return np.array([3.0, 2.0, 1.0, 4.0]) / 10, np.array([1.0, 2.0, 4.0, 3.0]) / 10, np.arange(1.0, 5.0)


def _check_theta(theta: float) -> float:
    t = float(theta)
    if not np.isfinite(t):
        raise ValueError(f"theta must be a finite number, got {theta!r}")
    return t


def parallel_lines(theta: float, n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of ``P_0 = (0, Z)`` and of ``P_theta = (theta, Z)``, sharing ``Z`` (midpoint rule on [0, 1]).

    Returns two (n, 2) arrays; each point carries mass 1/n.
    """
    t = _check_theta(theta)
    check_positive_int("n", n)
    z = (np.arange(n) + 0.5) / n  # (n,) midpoints of [0, 1]
    return np.column_stack([np.zeros(n), z]), np.column_stack([np.full(n, t), z])


def parallel_lines_closed_form(theta: float) -> dict[str, float]:
    """Closed forms for the parallel lines: ``jsd, kl, tv, w`` = (log 2, inf, 1, |theta|) for theta != 0, else all 0."""
    t = _check_theta(theta)
    if t == 0.0:
        return {"jsd": 0.0, "kl": 0.0, "tv": 0.0, "w": 0.0}
    return {"jsd": float(np.log(2.0)), "kl": float(np.inf), "tv": 1.0, "w": abs(t)}


def parallel_lines_divergences(theta: float, n: int = 50) -> dict[str, float]:
    """The same four numbers computed with the library's discrete machinery on ``parallel_lines(theta, n)``.

    Both point sets become distributions on the union of their points (``np.unique`` rows), the
    discrete ``js_divergence``, ``kl_divergence`` and ``total_variation`` are evaluated there, and W1
    is the exact transport cost (``ot_exact``) with Euclidean ground cost.
    """
    x0, xt = parallel_lines(theta, n)
    support, inverse = np.unique(np.vstack([x0, xt]), axis=0, return_inverse=True)  # (S, 2), (2n,)
    inverse = inverse.ravel()
    p = np.bincount(inverse[:n], minlength=len(support)) / n  # (S,) mass of P_0 on the union
    q = np.bincount(inverse[n:], minlength=len(support)) / n  # (S,) mass of P_theta
    cost = np.linalg.norm(x0[:, None, :] - xt[None, :, :], axis=-1)  # (n, 1, 2) - (1, n, 2) -> (n, n)
    w, _ = ot_exact(np.full(n, 1.0 / n), np.full(n, 1.0 / n), cost)
    return {"jsd": js_divergence(p, q), "kl": kl_divergence(p, q), "tv": total_variation(p, q), "w": w}
