"""Numeric Jacobians, eigenvalues and convergence verdicts (Mescheder et al. 2017, Prop. 3 and 4).

- Continuous flow ``dz/dt = v(z)``: locally convergent if every eigenvalue of
  ``v'(z*)`` has a negative real part; not convergent if one has a positive
  real part; purely imaginary eigenvalues decide nothing by themselves (the
  linear flow then cycles).
- Discrete update ``z <- F_h(z)``: locally convergent if the spectral radius of
  ``F_h'(z*)`` is below 1, not convergent above 1; on the unit circle the
  linear iteration cycles.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gancourse.errors import check_array, check_positive

__all__ = [
    "numeric_jacobian",
    "eigenvalues",
    "spectral_radius",
    "max_real_part",
    "continuous_verdict",
    "discrete_verdict",
    "trajectory_verdict",
    "critical_step_size",
    "eigenvalue_mismatch",
    "VERDICTS",
    "SHRINK",
    "GROW",
]

VERDICTS = ("converges", "cycles", "diverges")
#: a simulated run "converges" once its distance to the equilibrium is below SHRINK times the start ...
SHRINK = 1e-3
#: ... and "diverges" once it is above GROW times the start (see :func:`trajectory_verdict`)
GROW = 10.0


def numeric_jacobian(fn: Callable[[np.ndarray], np.ndarray], z: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Centred differences ``J[:, j] = (fn(z + eps e_j) - fn(z - eps e_j)) / (2 eps)``; shape (m, n)."""
    z = check_array("z", z, ndim=1, dtype=float, finite=True)
    check_positive("eps", eps)
    cols = []
    for j in range(z.size):
        dz = np.zeros_like(z)
        dz[j] = eps
        cols.append((np.asarray(fn(z + dz), float) - np.asarray(fn(z - dz), float)) / (2 * eps))
    return np.stack(cols, axis=1)


def eigenvalues(J: np.ndarray) -> np.ndarray:
    """Eigenvalues of a square matrix, sorted by (real part, imaginary part)."""
    J = check_array("J", J, ndim=2, finite=True)
    if J.shape[0] != J.shape[1]:
        raise ValueError(f"J must be square, got shape {J.shape}")
    lam = np.linalg.eigvals(J).astype(complex)
    return lam[np.lexsort((lam.imag, lam.real))]


def spectral_radius(lam: np.ndarray) -> float:
    """``max_k |lambda_k|``."""
    return float(np.max(np.abs(np.asarray(lam))))


def max_real_part(lam: np.ndarray) -> float:
    """``max_k Re lambda_k``."""
    return float(np.max(np.real(np.asarray(lam))))


def continuous_verdict(lam: np.ndarray, tol: float = 1e-9) -> str:
    """``"converges"`` if max Re < 0, ``"diverges"`` if > 0, ``"cycles"`` if the largest real part is 0."""
    m = max_real_part(lam)
    return "converges" if m < -tol else "diverges" if m > tol else "cycles"


def discrete_verdict(lam: np.ndarray, tol: float = 1e-9) -> str:
    """``"converges"`` if the spectral radius is < 1, ``"diverges"`` if > 1, ``"cycles"`` if it is 1."""
    rho = spectral_radius(lam)
    return "converges" if rho < 1 - tol else "diverges" if rho > 1 + tol else "cycles"


def trajectory_verdict(distances: np.ndarray, shrink: float = SHRINK, grow: float = GROW) -> str:
    """Verdict of a simulated run from its distances to the equilibrium.

    ``"converges"`` if the final distance is below ``shrink`` times the start;
    ``"diverges"`` if it is above ``grow`` times the start (or not finite);
    ``"slow"`` if it has at least halved but not reached ``shrink`` (sublinear
    convergence, e.g. the non-saturating Dirac-GAN); ``"cycles"`` otherwise
    (neither reaching nor leaving the equilibrium).
    """
    d = np.asarray(distances, dtype=float)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"distances must be a 1D array of at least 2 values, got shape {d.shape}")
    d0, d1 = d[0], d[-1]
    if not d0 > 0:
        raise ValueError("the run starts at the equilibrium; start elsewhere to see the dynamics")
    if not np.isfinite(d1) or d1 > grow * d0:
        return "diverges"
    if d1 < shrink * d0:
        return "converges"
    return "slow" if d1 < 0.5 * d0 else "cycles"


def critical_step_size(lam: np.ndarray) -> float:
    """Largest ``h`` with ``|1 + h lambda| < 1`` for every eigenvalue of ``v'`` (simultaneous GD).

    ``|1 + h lambda|^2 < 1  <=>  h < -2 Re(lambda) / |lambda|^2``; ``0`` when some
    ``Re(lambda) >= 0`` (no step size converges), ``inf`` if every lambda is 0-free and
    the bound is vacuous.
    """
    lam = np.asarray(lam, dtype=complex)
    lam = lam[np.abs(lam) > 0]
    if lam.size == 0:
        return float("inf")
    if np.any(lam.real >= 0):
        return 0.0
    return float(np.min(-2 * lam.real / np.abs(lam) ** 2))


def eigenvalue_mismatch(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a_i - b_pi(i)|`` under the best one-to-one matching ``pi`` (order-free comparison)."""
    from scipy.optimize import linear_sum_assignment

    a, b = np.asarray(a, dtype=complex).ravel(), np.asarray(b, dtype=complex).ravel()
    if a.size != b.size:
        raise ValueError(f"cannot match {a.size} eigenvalues with {b.size}")
    cost = np.abs(a[:, None] - b[None, :])  # (n, n)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].max()) if a.size else 0.0
