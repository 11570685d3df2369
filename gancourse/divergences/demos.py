"""Mode covering versus mode seeking: one Gaussian fitted to a mixture under four objectives.

Fitting ``q = N(mu, Sigma)`` to a mixture ``p`` by minimising

- forward ``KL(p || q)`` (maximum likelihood) *covers* every mode: its optimum matches the mean and
  covariance of ``p`` exactly (moment matching);
- reverse ``KL(q || p)`` *seeks* a mode: ``q`` is punished wherever ``p`` is small and settles on one
  component;
- ``JSD(p || q)`` sits between the two; MMD with a Gaussian kernel depends on the bandwidth.

This is the figure of Theis, van den Oord & Bethge (2016), fig. 1. KL and JSD are evaluated on a
regular 1D or 2D grid (``gancourse.divergences.discrete``); MMD between Gaussian mixtures has a
closed form (``mmd2_gaussian_mixtures``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from gancourse.divergences.discrete import cell_area, js_divergence, kl_divergence
from gancourse.errors import check_array, check_choice, check_positive

__all__ = [
    "FIT_OBJECTIVES",
    "check_mixture",
    "mixture_log_density",
    "mixture_moments",
    "mmd2_gaussian_mixtures",
    "fit_gaussian",
]

FIT_OBJECTIVES = ("kl", "reverse_kl", "jsd", "mmd")


def check_mixture(weights: Any, means: Any, covs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a Gaussian mixture: ``weights`` (K,) summing to 1, ``means`` (K, d), ``covs`` (K, d, d) SPD."""
    w = check_array("weights", weights, dtype=np.float64, ndim=1, finite=True)
    k = w.shape[0]
    if k == 0 or np.any(w < 0) or abs(w.sum() - 1) > 1e-8:
        raise ValueError(f"weights must be K >= 1 non-negative numbers summing to 1, got {w.tolist()}")
    m = check_array("means", means, dtype=np.float64, ndim=2, finite=True)
    if m.shape[0] != k:
        raise ValueError(f"means must have shape ({k}, d) (one row per weight), got shape {m.shape}")
    d = m.shape[1]
    c = check_array("covs", covs, dtype=np.float64, shape=(k, d, d), finite=True)
    for i in range(k):
        if not np.allclose(c[i], c[i].T) or np.linalg.eigvalsh(c[i]).min() <= 0:
            raise ValueError(f"covs[{i}] must be symmetric positive definite")
    return w, m, c


def mixture_log_density(x: Any, weights: Any, means: Any, covs: Any) -> np.ndarray:
    """``log p(x) = logsumexp_k (log w_k + log N(x; m_k, C_k))`` for points ``x`` (N, d) -> (N,)."""
    w, m, c = check_mixture(weights, means, covs)
    pts = check_array("x", x, dtype=np.float64, shape=(None, m.shape[1]), finite=True)
    d = m.shape[1]
    terms = []
    for wk, mk, ck in zip(w, m, c):
        chol = np.linalg.cholesky(ck)  # (d, d)
        z = np.linalg.solve(chol, (pts - mk).T)  # (d, d) \ (d, N) -> (d, N) whitened offsets
        log_det = 2 * np.log(np.diag(chol)).sum()
        with np.errstate(divide="ignore"):
            terms.append(np.log(wk) - 0.5 * (z * z).sum(0) - 0.5 * (log_det + d * np.log(2 * np.pi)))  # (N,)
    return logsumexp(np.stack(terms), axis=0)  # (K, N) -> (N,)


def mixture_moments(weights: Any, means: Any, covs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``sum_k w_k m_k`` (d,) and covariance ``sum_k w_k (C_k + m_k m_k^T) - mu mu^T`` (d, d)."""
    w, m, c = check_mixture(weights, means, covs)
    mu = w @ m  # (K,) @ (K, d) -> (d,)
    second = np.einsum("k,kij->ij", w, c + m[:, :, None] * m[:, None, :])  # (d, d)
    return mu, second - np.outer(mu, mu)


def _expected_kernel(m1: np.ndarray, c1: np.ndarray, m2: np.ndarray, c2: np.ndarray, s: float) -> float:
    """``E k(X, Y)`` for independent ``X ~ N(m1, C1)``, ``Y ~ N(m2, C2)``, ``k = exp(-|x - y|^2 / 2 s^2)``."""
    d = m1.shape[0]
    a = c1 + c2 + s**2 * np.eye(d)  # (d, d)
    diff = m1 - m2
    _, log_det = np.linalg.slogdet(a / s**2)
    return float(np.exp(-0.5 * log_det - 0.5 * diff @ np.linalg.solve(a, diff)))


def mmd2_gaussian_mixtures(
    mix1: tuple[Any, Any, Any], mix2: tuple[Any, Any, Any], bandwidth: float = 1.0
) -> float:
    """Exact ``MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y)`` between two Gaussian mixtures.

    ``mix = (weights (K,), means (K, d), covs (K, d, d))``; Gaussian kernel of width ``s = bandwidth``,
    for which ``E k(X, Y) = det(I + (C1 + C2) / s^2)^{-1/2} exp(-1/2 dm^T (C1 + C2 + s^2 I)^{-1} dm)``
    between components.
    """
    s = check_positive("bandwidth", bandwidth)
    w1, m1, c1 = check_mixture(*mix1)
    w2, m2, c2 = check_mixture(*mix2)
    if m1.shape[1] != m2.shape[1]:
        raise ValueError(f"both mixtures must live in the same dimension, got {m1.shape[1]} and {m2.shape[1]}")

    def cross(wa, ma, ca, wb, mb, cb) -> float:
        return sum(wa[i] * wb[j] * _expected_kernel(ma[i], ca[i], mb[j], cb[j], s)
                   for i in range(len(wa)) for j in range(len(wb)))

    val = cross(w1, m1, c1, w1, m1, c1) + cross(w2, m2, c2, w2, m2, c2) - 2 * cross(w1, m1, c1, w2, m2, c2)
    return max(0.0, float(val))


def _unpack(theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Parameters -> ``(mu (d,), Sigma (d, d))`` with ``Sigma = L L^T``, L lower triangular, log diagonal."""
    mu = theta[:d]
    chol = np.zeros((d, d))
    chol[np.tril_indices(d)] = theta[d:]
    chol[np.diag_indices(d)] = np.exp(np.diag(chol))
    return mu, chol @ chol.T


def _pack(mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    chol = np.linalg.cholesky(cov)
    chol[np.diag_indices(len(mu))] = np.log(np.diag(chol))
    return np.concatenate([mu, chol[np.tril_indices(len(mu))]])


def fit_gaussian(
    weights: Any,
    means: Any,
    covs: Any,
    objective: str,
    axes: Sequence[Any],
    *,
    bandwidth: float = 1.0,
) -> dict[str, Any]:
    """The Gaussian ``q = N(mu, Sigma)`` that minimises ``objective`` against the mixture ``p``.

    ``objective``: ``"kl"`` (KL(p || q)), ``"reverse_kl"`` (KL(q || p)), ``"jsd"`` or ``"mmd"``.
    ``axes``: one coordinate array per dimension (1 or 2), spanning the regular grid on which KL
    and JSD are evaluated (both densities are renormalised to mass 1 on it). Nelder-Mead is
    started from the moment-matched Gaussian and from every component; the best end point wins.
    Returns ``{"mean" (d,), "cov" (d, d), "value"}``.
    """
    check_choice("objective", objective, FIT_OBJECTIVES)
    w, m, c = check_mixture(weights, means, covs)
    d = m.shape[1]
    if len(axes) != d:
        raise ValueError(f"axes must hold one coordinate array per dimension ({d}), got {len(axes)}")
    cell = cell_area(*axes)
    mesh = np.meshgrid(*[np.asarray(a, dtype=np.float64) for a in axes], indexing="ij")
    pts = np.stack([g.ravel() for g in mesh], axis=1)  # (G, d) grid points
    p = np.exp(mixture_log_density(pts, w, m, c))  # (G,)
    if abs(p.sum() * cell - 1) > 1e-2:
        raise ValueError(f"the grid must cover the mixture: it holds mass {p.sum() * cell:.4f} of p, not about 1")
    p /= p.sum() * cell

    def value(theta: np.ndarray) -> float:
        mu, cov = _unpack(theta, d)
        if objective == "mmd":
            return mmd2_gaussian_mixtures((w, m, c), (np.ones(1), mu[None], cov[None]), bandwidth)
        chol = np.linalg.cholesky(cov)  # (d, d)
        z = np.linalg.solve(chol, (pts - mu).T)  # (d, G) whitened offsets
        q = np.exp(-0.5 * (z * z).sum(0))  # (G,) unnormalised Gaussian; normalised on the grid below
        mass = q.sum() * cell
        if not mass > 1e-6:  # q has left the grid
            return 1e6
        q /= mass
        if objective == "kl":
            return kl_divergence(p, q, cell=cell)
        if objective == "reverse_kl":
            return kl_divergence(q, p, cell=cell)
        return js_divergence(p, q, cell=cell)

    mu0, cov0 = mixture_moments(w, m, c)
    starts = [_pack(mu0, cov0)] + [_pack(mk, ck) for mk, ck in zip(m, c)]
    best = None
    for x0 in starts:
        res = minimize(value, x0, method="Nelder-Mead",
                       options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 3000, "maxfev": 3000})
        if best is None or res.fun < best.fun:
            best = res
    mu, cov = _unpack(best.x, d)
    return {"mean": mu, "cov": cov, "value": float(best.fun)}
