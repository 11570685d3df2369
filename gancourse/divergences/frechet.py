"""The Fréchet distance: W2 between Gaussians, from moments or from features.

For ``N(mu1, C1)`` and ``N(mu2, C2)`` the squared 2-Wasserstein distance has the closed form
(Dowson & Landau 1982; Olkin & Pukelsheim 1982)

    FD = ||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2}).

Image metrics (FID, Heusel et al. 2017; here FD on the course's own features) use it on the mean
and covariance of network features. Every matrix square root here is taken of a *symmetric*
positive semi-definite matrix with ``numpy.linalg.eigh``, setting round-off eigenvalues (negative,
or below the rank tolerance) to 0, so rank-deficient covariances (features in a subspace, fewer samples than dimensions) give a
finite, correct value instead of the complex or NaN results that ``scipy.linalg.sqrtm`` of the
non-symmetric product ``C1 C2`` can produce.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gancourse.errors import check_array

__all__ = ["psd_sqrtm", "gaussian_stats", "frechet_distance", "frechet_distance_from_features"]


def _symmetric(name: str, c: np.ndarray) -> np.ndarray:
    """Check that ``c`` (D, D) is symmetric up to round-off and return ``(c + c^T) / 2``."""
    scale = max(1.0, float(np.max(np.abs(c)))) if c.size else 1.0
    if not np.allclose(c, c.T, rtol=0.0, atol=1e-8 * scale):
        raise ValueError(f"{name} must be a symmetric covariance matrix; max |C - C^T| = {np.max(np.abs(c - c.T)):.3g}")
    return 0.5 * (c + c.T)


def _clip_roundoff(w: np.ndarray) -> np.ndarray:
    """Eigenvalues ``w`` (D,) of a symmetric PSD matrix with round-off set to 0.

    ``eigh`` returns the zero eigenvalues of a singular matrix as +-(D eps max|w|) noise; their
    square roots would be of order sqrt(eps) ~ 1e-8 each, so every eigenvalue below
    ``D * eps * max|w|`` is treated as an exact 0 (the rank tolerance of ``numpy.linalg.matrix_rank``).
    """
    tol = w.shape[0] * np.finfo(np.float64).eps * max(float(np.max(np.abs(w), initial=0.0)), 0.0)
    return np.where(w > tol, w, 0.0)


def psd_sqrtm(c: Any) -> np.ndarray:
    """Square root ``S = V diag(sqrt(max(w, 0))) V^T`` of a symmetric PSD matrix ``c = V diag(w) V^T``.

    ``c`` (D, D) -> ``S`` (D, D), symmetric PSD with ``S @ S = c`` (up to the clipped negative
    round-off eigenvalues). Uses ``numpy.linalg.eigh``, which is stable for singular ``c``.
    """
    c = check_array("c", c, dtype=np.float64, finite=True)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"c must be a square matrix (D, D), got shape {c.shape}")
    c = _symmetric("c", c)
    w, v = np.linalg.eigh(c)  # (D,), (D, D)
    return (v * np.sqrt(_clip_roundoff(w))) @ v.T  # (D, D) * (D,) @ (D, D) -> (D, D)


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``mu = mean_i x_i`` (D,) and unbiased covariance ``C = sum_i (x_i - mu)(x_i - mu)^T / (N - 1)`` (D, D).

    ``features`` has shape (N, D) with N >= 2 (a 1D array is read as N scalar features, D = 1).
    """
    x = check_array("features", features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]  # (N,) -> (N, 1)
    x = check_array("features", x, ndim=2, finite=True)
    if x.shape[0] < 2:
        raise ValueError(f"features must hold at least 2 samples (rows) to estimate a covariance, got shape {x.shape}")
    if x.shape[1] < 1:
        raise ValueError(f"features must have at least one column, got shape {x.shape}")
    mu = x.mean(axis=0)  # (D,)
    xc = x - mu  # (N, D)
    cov = xc.T @ xc / (x.shape[0] - 1)  # (D, N) @ (N, D) -> (D, D)
    return mu, cov


def _check_moments(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> tuple[np.ndarray, ...]:
    m1 = check_array("mu1", mu1, dtype=np.float64, ndim=1, finite=True)
    d = m1.shape[0]
    if d == 0:
        raise ValueError("mu1 must have at least one entry, got shape (0,)")
    m2 = check_array("mu2", mu2, dtype=np.float64, shape=(d,), finite=True)
    c1 = _symmetric("cov1", check_array("cov1", cov1, dtype=np.float64, shape=(d, d), finite=True))
    c2 = _symmetric("cov2", check_array("cov2", cov2, dtype=np.float64, shape=(d, d), finite=True))
    return m1, c1, m2, c2


def frechet_distance(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    """``||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})``: W2^2 between two Gaussians.

    ``mu1, mu2`` (D,); ``cov1, cov2`` (D, D) symmetric PSD (rank-deficient is fine). The trace
    term uses ``tr((C1 C2)^{1/2}) = tr((C1^{1/2} C2 C1^{1/2})^{1/2})``, where the inner matrix is
    symmetric PSD, so both roots are symmetric eigendecompositions. Returns a float >= 0 (round-off
    negatives are clipped to 0). Dowson & Landau (1982); Heusel et al. (2017), eq. (6).
    """
    m1, c1, m2, c2 = _check_moments(mu1, cov1, mu2, cov2)
    s1 = psd_sqrtm(c1)  # (D, D)
    inner = s1 @ c2 @ s1  # (D, D) @ (D, D) @ (D, D) -> (D, D), symmetric PSD
    w = np.linalg.eigvalsh(0.5 * (inner + inner.T))  # (D,)
    tr_covmean = float(np.sum(np.sqrt(_clip_roundoff(w))))
    diff = m1 - m2  # (D,)
    fd = float(diff @ diff) + float(np.trace(c1) + np.trace(c2)) - 2.0 * tr_covmean
    return max(0.0, fd)


def frechet_distance_from_features(x: Any, y: Any) -> float:
    """Fréchet distance between Gaussians fitted to features ``x`` (N, D) and ``y`` (M, D).

    ``frechet_distance(*gaussian_stats(x), *gaussian_stats(y))``; the columns of ``x`` and ``y``
    must match.
    """
    mu1, c1 = gaussian_stats(x)
    x_arr = np.asarray(x)
    y_arr = check_array("y", y, dtype=np.float64)
    d = 1 if x_arr.ndim == 1 else x_arr.shape[1]
    dy = 1 if y_arr.ndim == 1 else (y_arr.shape[1] if y_arr.ndim == 2 else None)
    if dy != d:
        raise ValueError(f"y must have the same number of feature columns as x ({d}), got shape {y_arr.shape}")
    mu2, c2 = gaussian_stats(y_arr)
    return frechet_distance(mu1, c1, mu2, c2)
