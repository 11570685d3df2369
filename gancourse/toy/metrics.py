"""Sample-quality metrics for the toy distributions.

- ``mode_metrics``: modes captured, high-quality fraction and reverse KL over modes, the
  definitions of PacGAN (Lin et al. 2018) and VEEGAN (Srivastava et al. 2017);
- ``wasserstein1_1d``: exact 1D Wasserstein-1 between two empirical samples;
- ``energy_distance``: Székely's energy distance (V-statistic);
- ``sliced_wasserstein1``: mean 1D W1 over random projections;
- ``toy_metrics``: picks the right ones for a dataset from ``gancourse.toy.distributions``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gancourse.divergences.wasserstein import sliced_wasserstein, wasserstein_1d
from gancourse.errors import check_array, check_positive, check_samples
from gancourse.rng import RngLike
from gancourse.toy.distributions import GaussianMixture, ToyDistribution, get_dataset

__all__ = [
    "mode_metrics",
    "wasserstein1_1d",
    "energy_distance",
    "sliced_wasserstein1",
    "toy_metrics",
]

_MAX_ELEMS = 1 << 21  # largest temporary (rows x cols [x dim]) array built at once (16 MiB of float64)


def _as_1d(name: str, x: Any) -> np.ndarray:
    """Finite non-empty 1D float64 array; (N, 1) is accepted and flattened."""
    arr = check_samples(name, x)
    if arr.shape[1] != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got shape {arr.shape}")
    return arr[:, 0]


def _nearest(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and Euclidean distance to the nearest row of ``c`` (K, d) for each row of ``x`` (N, d)."""
    n, (k, d) = len(x), c.shape
    idx, dist = np.empty(n, dtype=np.intp), np.empty(n)
    block = max(1, _MAX_ELEMS // (k * d))
    for i in range(0, n, block):
        sq = ((x[i:i + block, None, :] - c[None, :, :]) ** 2).sum(-1)  # (B, 1, d) - (1, K, d) -> (B, K)
        j = sq.argmin(1)  # (B,)
        idx[i:i + block] = j
        dist[i:i + block] = np.sqrt(sq[np.arange(len(j)), j])
    return idx, dist


def mode_metrics(samples: Any, centers: Any, std: Any, n_std: float = 3.0) -> dict[str, Any]:
    """Mode coverage of ``samples`` (N, d) for a mixture with ``centers`` (K, d) (PacGAN / VEEGAN).

    A sample is *high quality* (HQ) if its Euclidean distance to its nearest centre ``k`` is at
    most ``n_std * std_k`` (``std`` is one number or one per centre, shape (K,); ties go to the
    lower centre index). Returns

    - ``modes``: number of centres that are the nearest centre of at least one HQ sample;
    - ``hq``: fraction of HQ samples;
    - ``reverse_kl``: ``KL(q || U_K) = sum_k q_k log(K q_k) = log K - H(q)`` where ``q`` is the
      histogram of the HQ samples' nearest centres (``0 log 0 = 0``); ``inf`` if no sample is HQ;
    - ``counts``: list of the K per-centre HQ counts.
    """
    c = check_array("centers", centers, dtype=np.float64, finite=True)
    if c.ndim != 2 or c.shape[0] == 0:
        raise ValueError(f"centers must have shape (K, d) with K >= 1, got shape {c.shape}")
    k, d = c.shape
    x = check_samples("samples", samples, d)
    s = check_array("std", std, dtype=np.float64, finite=True)
    if s.ndim == 0:
        s = np.full(k, float(s))  # one std shared by all centres
    s = check_array("std", s, shape=(k,))
    if np.any(s <= 0):
        raise ValueError(f"std must be > 0, got {std!r}")
    n_std = check_positive("n_std", n_std)

    idx, dist = _nearest(x, c)
    hq = dist <= n_std * s[idx]  # (N,)
    counts = np.bincount(idx[hq], minlength=k)  # (K,)
    n_hq = int(counts.sum())
    if n_hq == 0:
        rkl = float("inf")
    else:
        q = counts[counts > 0] / n_hq
        rkl = max(0.0, float(np.log(k) + np.sum(q * np.log(q))))
    return {
        "modes": int(np.count_nonzero(counts)),
        "hq": n_hq / len(x),
        "reverse_kl": rkl,
        "counts": [int(v) for v in counts],
    }


def wasserstein1_1d(a: Any, b: Any) -> float:
    """Exact W1 between the empirical distributions of 1D samples ``a`` (N,) and ``b`` (M,).

    ``W1 = integral_0^1 |F_a^{-1}(t) - F_b^{-1}(t)| dt``; for N == M this equals
    ``mean |sort(a) - sort(b)|``. Computed by ``gancourse.divergences.wasserstein_1d`` with p = 1.
    Matches ``scipy.stats.wasserstein_distance`` (unweighted).
    """
    return wasserstein_1d(_as_1d("a", a), _as_1d("b", b))


def _mean_distance(x: np.ndarray, y: np.ndarray) -> float:
    """``mean_{i,j} ||x_i - y_j||`` for x (N, d), y (M, d), in row blocks to bound memory."""
    m, d = y.shape
    yt = np.ascontiguousarray(y.T)  # (d, M)
    block = max(1, _MAX_ELEMS // m)
    total = 0.0
    for i in range(0, len(x), block):
        xb = x[i:i + block]
        sq = np.zeros((len(xb), m))  # (B, M) squared distances, one coordinate at a time
        for k in range(d):
            diff = xb[:, k, None] - yt[k][None, :]  # (B, 1) - (1, M) -> (B, M)
            diff *= diff
            sq += diff
        total += float(np.sqrt(sq, out=sq).sum())
    return total / (len(x) * m)


def energy_distance(x: Any, y: Any) -> float:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Székely & Rizzo 2013), V-statistic.

    ``x`` (N, d) and ``y`` (M, d) (or 1D arrays); every mean runs over all pairs, i = j
    included, so this is the exact energy distance between the two empirical distributions:
    >= 0 (tiny rounding negatives are clipped) and 0 for identical samples. It is the *square*
    of ``scipy.stats.energy_distance`` in 1D. Cost O(N M d) time, bounded memory.
    """
    x = check_samples("x", x)
    y = check_samples("y", y, x.shape[1])
    return max(0.0, 2 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y))


def sliced_wasserstein1(x: Any, y: Any, n_projections: int = 128, seed: RngLike = 0) -> float:
    """Sliced W1: ``mean_l W1(<x, theta_l>, <y, theta_l>)`` over seeded random unit directions.

    ``theta_l = random_directions(n_projections, d, seed)``; each 1D W1 is exact. ``x`` (N, d),
    ``y`` (M, d). Computed by ``gancourse.divergences.sliced_wasserstein`` with p = 1.
    (Rabin et al. 2011; Deshpande et al. 2018.)
    """
    return sliced_wasserstein(x, y, n_projections, p=1.0, seed=seed)


def toy_metrics(
    dataset: ToyDistribution | str,
    samples: Any,
    *,
    n_reference: int | None = None,
    seed: RngLike = 0,
    n_std: float = 3.0,
    n_projections: int = 128,
) -> dict[str, Any]:
    """The metrics that suit ``dataset`` (an instance or a registered name) for ``samples`` (N, dim).

    - Gaussian mixtures (``mixture1d``, ``ring8``, ``grid25``): ``mode_metrics`` keys
      (``modes``, ``hq``, ``reverse_kl``, ``counts``);
    - 1D datasets: ``w1`` = ``wasserstein1_1d`` against ``n_reference`` (default 100,000) target
      samples drawn with ``seed``;
    - other 2D datasets: ``energy`` (``energy_distance``) and ``sliced_w1``
      (``sliced_wasserstein1``) against ``n_reference`` (default N) target samples drawn with
      ``seed``. Both are biased upwards by finite samples (O(1/sqrt(N)) for sliced W1).
    """
    ds = get_dataset(dataset) if isinstance(dataset, str) else dataset
    if not isinstance(ds, ToyDistribution):
        raise TypeError(f"dataset must be a ToyDistribution or a dataset name, got {type(dataset).__name__}")
    x = check_samples("samples", samples, ds.dim)
    out: dict[str, Any] = {}
    if isinstance(ds, GaussianMixture):
        out.update(mode_metrics(x, ds.centers, ds.component_stds, n_std=n_std))
    if ds.dim == 1:
        ref = ds.sample(100_000 if n_reference is None else n_reference, seed)
        out["w1"] = wasserstein1_1d(x, ref)
    elif not isinstance(ds, GaussianMixture):
        ref = ds.sample(len(x) if n_reference is None else n_reference, seed)
        out["energy"] = energy_distance(x, ref)
        out["sliced_w1"] = sliced_wasserstein1(x, ref, n_projections=n_projections, seed=seed)
    return out
