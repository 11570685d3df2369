"""Sample-based estimates, where they make sense.

- categorical samples: the empirical pmf on a known support, then the exact discrete formulas;
- continuous 1D samples: histograms on common bins (a plug-in estimate, biased by the binning);
- continuous samples in any dimension: the k-nearest-neighbour KL estimator of Wang, Kulkarni &
  Verdú (2009), consistent without density estimation;
- the squared maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2012), a
  distance that, unlike KL and JSD, is computed directly from samples.

JSD and TV between continuous distributions have no good sample estimate without densities;
the course estimates them through a trained discriminator instead (``optimal_discriminator``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from gancourse.errors import check_array, check_positive, check_positive_int, check_samples

__all__ = ["empirical_pmf", "histogram_pmfs", "kl_divergence_knn", "mmd2"]


def empirical_pmf(samples: Any, support: Any) -> np.ndarray:
    """``p_k = #{i : x_i = s_k} / N`` for categorical ``samples`` (N,) on ``support`` (K,) -> (K,)."""
    x = check_array("samples", samples, ndim=1)
    s = check_array("support", support, ndim=1)
    if x.size == 0:
        raise ValueError("samples is empty: at least one sample is needed")
    if s.size == 0 or np.unique(s).size != s.size:
        raise ValueError(f"support must be a non-empty list of distinct values, got {s.tolist()}")
    idx = np.searchsorted(np.sort(s), x)
    order = np.argsort(s)
    sorted_s = s[order]
    idx = np.minimum(idx, s.size - 1)
    outside = sorted_s[idx] != x
    if outside.any():
        raise ValueError(f"samples must take values in the support {s.tolist()}; found {x[outside][0]!r}")
    counts = np.bincount(order[idx], minlength=s.size)  # (K,) in the order of `support`
    return counts / x.size


def histogram_pmfs(x: Any, y: Any, bins: int = 50, range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of 1D samples ``x`` (N,) and ``y`` (M,) on the same ``bins`` equal bins -> ``(p, q, edges)``.

    ``p, q`` (bins,) sum to 1; ``range`` defaults to the joint min and max. Plug-in divergences of
    ``p, q`` estimate those of the underlying densities, with a bias that depends on the binning.
    """
    a = check_samples("x", x)
    b = check_samples("y", y)
    if a.shape[1] != 1 or b.shape[1] != 1:
        raise ValueError(f"x and y must be 1D samples, got shapes {np.shape(x)} and {np.shape(y)}")
    check_positive_int("bins", bins)
    lo_hi = (min(a.min(), b.min()), max(a.max(), b.max())) if range is None else tuple(map(float, range))
    if not lo_hi[0] < lo_hi[1]:
        raise ValueError(f"range must be an interval (lo, hi) with lo < hi, got {lo_hi}")
    edges = np.linspace(lo_hi[0], lo_hi[1], int(bins) + 1)
    ca, _ = np.histogram(a[:, 0], edges)
    cb, _ = np.histogram(b[:, 0], edges)
    if ca.sum() == 0 or cb.sum() == 0:
        raise ValueError(f"no samples fall inside range {lo_hi}")
    return ca / ca.sum(), cb / cb.sum(), edges


def kl_divergence_knn(x: Any, y: Any, k: int = 1) -> float:
    """k-NN estimate of ``KL(p || q)`` from samples ``x ~ p`` (N, d) and ``y ~ q`` (M, d).

    ``KL ~ (d / N) sum_i log(nu_k(i) / rho_k(i)) + log(M / (N - 1))``, where ``rho_k(i)`` is the
    distance from ``x_i`` to its k-th nearest neighbour among the other ``x`` and ``nu_k(i)`` the
    distance to its k-th nearest neighbour among ``y`` (Wang, Kulkarni & Verdú 2009, eq. 5).
    Needs ``N > k``, ``M >= k`` and no duplicate points.
    """
    a = check_samples("x", x)
    b = check_samples("y", y, a.shape[1])
    check_positive_int("k", k)
    n, m, d = len(a), len(b), a.shape[1]
    if n <= k or m < k:
        raise ValueError(f"need more than k={k} samples in x and at least k in y, got {n} and {m}")
    rho = cKDTree(a).query(a, k=k + 1)[0][:, k]  # (N,) the nearest point is x_i itself
    nu = cKDTree(b).query(a, k=k)[0]
    nu = nu if k == 1 else nu[:, k - 1]  # (N,)
    if np.any(rho == 0) or np.any(nu == 0):
        raise ValueError("x and y must not contain duplicate points (a k-NN distance is 0)")
    return float(d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1)))


def _gauss_kernel_mean(a: np.ndarray, b: np.ndarray, bandwidth: float) -> float:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T  # (N, 1) + (1, M) - (N, M)
    return float(np.exp(-np.maximum(sq, 0) / (2 * bandwidth**2)).mean())


def mmd2(x: Any, y: Any, bandwidth: float = 1.0) -> float:
    """``MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)`` with ``k(u, v) = exp(-|u - v|^2 / (2 s^2))``.

    The biased (V-statistic) estimate from ``x`` (N, d) and ``y`` (M, d): every mean runs over all
    pairs, so it is >= 0 and is the exact MMD between the two empirical distributions
    (Gretton et al. 2012, eq. 5). Cost O((N + M)^2 d).
    """
    a = check_samples("x", x)
    b = check_samples("y", y, a.shape[1])
    s = check_positive("bandwidth", bandwidth)
    return max(0.0, _gauss_kernel_mean(a, a, s) + _gauss_kernel_mean(b, b, s) - 2 * _gauss_kernel_mean(a, b, s))
