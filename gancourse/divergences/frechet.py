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

A covariance with a *clearly* negative eigenvalue, ``w_min < -PSD_RTOL max|w|`` (``PSD_RTOL`` = 1e3
float32 epsilons, about 1.2e-4: the round-off of a covariance computed in float32), is not a
covariance: it raises instead of being clipped to a wrong answer. The FD is homogeneous: scaling every
mean by ``s`` and every covariance by ``s^2`` scales it by ``s^2``; inputs far from 1 in magnitude (where
``C1^{1/2} C2 C1^{1/2}`` would overflow or underflow) are rescaled by a power of two, which is exact, and
a result beyond the float64 range raises an ``OverflowError``.
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
    return 0.5 * c + 0.5 * c.T  # (not 0.5 (c + c^T): that sum overflows for entries near the float64 limit)


def _clip_roundoff(w: np.ndarray) -> np.ndarray:
    """Eigenvalues ``w`` (D,) of a symmetric PSD matrix with round-off set to 0.

    ``eigh`` returns the zero eigenvalues of a singular matrix as +-(D eps max|w|) noise; their
    square roots would be of order sqrt(eps) ~ 1e-8 each, so every eigenvalue below
    ``D * eps * max|w|`` is treated as an exact 0 (the rank tolerance of ``numpy.linalg.matrix_rank``).
    """
    tol = w.shape[0] * np.finfo(np.float64).eps * max(float(np.max(np.abs(w), initial=0.0)), 0.0)
    return np.where(w > tol, w, 0.0)


#: relative tolerance on negative eigenvalues of a covariance: ``min(w) >= -PSD_RTOL * max|w|``. It is
#: ``1e3`` float32 epsilons (scipy.stats.multivariate_normal's value for float32) whatever the dtype given,
#: because covariances are often computed from float32 features (``torch.cov``) and cast to float64 later,
#: so they carry float32 round-off (about ``1e-7 sqrt(N)`` relative) in a float64 array.
PSD_RTOL = 1e3 * float(np.finfo(np.float32).eps)


def _check_psd(name: str, w: np.ndarray) -> None:
    """Raise unless the eigenvalues ``w`` (D,) are >= 0 up to round-off: ``min(w) >= -PSD_RTOL * max|w|``."""
    lo, top = float(np.min(w, initial=0.0)), float(np.max(np.abs(w), initial=0.0))
    if lo < -PSD_RTOL * top:
        raise ValueError(
            f"{name} must be a positive semi-definite covariance matrix, but it has the eigenvalue {lo:.6g} "
            f"(largest |eigenvalue| {top:.6g}); a covariance has no negative variance along any direction"
        )


def _eigh_psd(name: str, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``eigh`` of a symmetric ``c`` (D, D) that must be PSD up to round-off: ``(w (D,), V (D, D))``."""
    w, v = np.linalg.eigh(c)  # (D,), (D, D)
    _check_psd(name, w)
    return w, v


def psd_sqrtm(c: Any) -> np.ndarray:
    """Square root ``S = V diag(sqrt(max(w, 0))) V^T`` of a symmetric PSD matrix ``c = V diag(w) V^T``.

    ``c`` (D, D) -> ``S`` (D, D), symmetric PSD with ``S @ S = c`` (up to the clipped negative
    round-off eigenvalues). Uses ``numpy.linalg.eigh``, which is stable for singular ``c``. A clearly
    negative eigenvalue (below ``-PSD_RTOL max|w|``) raises a ValueError.
    """
    c = check_array("c", c, dtype=np.float64, finite=True)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"c must be a square matrix (D, D), got shape {c.shape}")
    c = _symmetric("c", c)
    w, v = _eigh_psd("c", c)
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


#: magnitudes in [2^-SAFE_EXP, 2^SAFE_EXP] are used as given; others are rescaled by a power of two first.
#: The trace term squares the covariance scale (C1^{1/2} C2 C1^{1/2}) and the mean term squares the
#: mean scale, so 2^250 keeps every intermediate within about 2^+-500 of 1, far from over- and underflow.
SAFE_EXP = 250


def _pow2_exponent(magnitude: float) -> int:
    """``e`` such that ``magnitude * 2^-e`` lies in [0.5, 1), or 0 when ``magnitude`` is already safe (or 0)."""
    if magnitude == 0.0 or 2.0**-SAFE_EXP <= magnitude <= 2.0**SAFE_EXP:
        return 0
    return int(np.frexp(magnitude)[1])


def _mean_term(m1: np.ndarray, m2: np.ndarray) -> float:
    """``||mu1 - mu2||^2``, computed on ``(mu1 - mu2) 2^-e`` and scaled back by ``2^2e`` when large or small."""
    with np.errstate(over="ignore"):
        diff = m1 - m2  # (D,)
    if not np.all(np.isfinite(diff)):
        raise OverflowError("mu1 - mu2 overflows float64: the means are too far apart for a float64 Fréchet distance")
    e = _pow2_exponent(float(np.max(np.abs(diff))))
    if e == 0:
        return float(diff @ diff)
    d = np.ldexp(diff, -e)  # exact: a power-of-two scaling
    return float(np.ldexp(d @ d, 2 * e))


def _trace_term(c1: np.ndarray, c2: np.ndarray) -> float:
    """``tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})`` >= 0 (round-off negatives set to 0).

    Homogeneous of degree 1 in the covariances: computed on ``C 2^-e`` and scaled back by ``2^e``
    when the covariances are too large or small for the product ``C1^{1/2} C2 C1^{1/2}``.
    """
    e = _pow2_exponent(max(float(np.max(np.abs(c1))), float(np.max(np.abs(c2)))))
    if e != 0:
        c1, c2 = np.ldexp(c1, -e), np.ldexp(c2, -e)  # exact
    w1, v1 = _eigh_psd("cov1", c1)
    _check_psd("cov2", np.linalg.eigvalsh(c2))
    s1 = (v1 * np.sqrt(_clip_roundoff(w1))) @ v1.T  # C1^{1/2}: (D, D) * (D,) @ (D, D) -> (D, D)
    inner = s1 @ c2 @ s1  # (D, D) @ (D, D) @ (D, D) -> (D, D), symmetric PSD
    w = np.linalg.eigvalsh(0.5 * (inner + inner.T))  # (D,)
    tr_covmean = float(np.sum(np.sqrt(_clip_roundoff(w))))
    term = max(0.0, float(np.trace(c1) + np.trace(c2)) - 2.0 * tr_covmean)
    return term if e == 0 else float(np.ldexp(term, e))


def frechet_distance(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    """``||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})``: W2^2 between two Gaussians.

    ``mu1, mu2`` (D,); ``cov1, cov2`` (D, D) symmetric PSD (rank-deficient is fine; a clearly negative
    eigenvalue raises a ValueError). The trace term uses ``tr((C1 C2)^{1/2}) = tr((C1^{1/2} C2
    C1^{1/2})^{1/2})``, where the inner matrix is symmetric PSD, so both roots are symmetric
    eigendecompositions. It is >= 0 in exact arithmetic; its round-off negatives are set to 0 *before*
    the mean term is added, so the mean term is never lost. Returns a float >= 0; a value beyond
    float64 raises an OverflowError. Dowson & Landau (1982); Heusel et al. (2017), eq. (6).
    """
    m1, c1, m2, c2 = _check_moments(mu1, cov1, mu2, cov2)
    with np.errstate(over="ignore"):
        fd = _mean_term(m1, m2) + _trace_term(c1, c2)
    if not np.isfinite(fd):
        raise OverflowError(
            "the Fréchet distance exceeds the float64 range (about 1.8e308); rescale the features (the distance "
            "scales with the square of their unit)"
        )
    return fd


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
