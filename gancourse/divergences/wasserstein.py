"""Wasserstein distances: exact 1D formulas, discrete optimal transport (LP and Sinkhorn), sliced W.

- ``wasserstein_1d``: W_p between weighted 1D samples through quantile functions,
  ``W_p^p = int_0^1 |F^{-1}(t) - G^{-1}(t)|^p dt`` (exact, by sorting);
- ``wasserstein_1d_hist``: W1 between histograms on one sorted support through CDFs,
  ``W1 = sum_i |F_i - G_i| (x_{i+1} - x_i)``;
- ``ot_exact``: the Kantorovich linear program ``min_P <P, M>`` s.t. ``P 1 = a, P^T 1 = b, P >= 0``
  solved by ``scipy.optimize.linprog`` (HiGHS);
- ``ot_sinkhorn``: entropic OT ``min_P <P, M> + reg sum P log P`` by Sinkhorn iterations in the log
  domain (Cuturi 2013; Peyré & Cuturi 2019, Computational Optimal Transport, sec. 4.4);
- ``sliced_wasserstein``: the mean over random directions of 1D W_p^p, to the power 1/p
  (Rabin et al. 2011), with the directions from ``random_directions`` (uniform on the unit sphere).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.special import logsumexp

from gancourse.divergences._checks import as_distribution
from gancourse.errors import check_array, check_positive, check_positive_int, check_samples
from gancourse.rng import RngLike, make_rng

__all__ = [
    "wasserstein_1d", "wasserstein_1d_hist", "ot_exact", "ot_sinkhorn", "SinkhornResult", "SinkhornConvergenceWarning",
    "random_directions", "sliced_wasserstein",
]


def _check_p(p: float) -> float:
    p = check_positive("p", p)
    if p < 1:
        raise ValueError(f"p must be >= 1 for W_p to be a distance, got {p!r}")
    return p


def _weights(name: str, w: Any, n: int) -> np.ndarray:
    """Non-negative weights (n,) with a positive sum, normalised to sum to 1 (None: uniform)."""
    if w is None:
        return np.full(n, 1.0 / n)
    arr = check_array(name, w, dtype=np.float64, shape=(n,), finite=True)
    if np.any(arr < 0) or arr.sum() <= 0:
        raise ValueError(f"{name} must be non-negative with a positive sum, got minimum {arr.min():.6g} and sum {arr.sum():.6g}")
    return arr / arr.sum()


def _quantile_steps(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and their cumulative weights (the step function F), last one exactly 1."""
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    cw[-1] = 1.0
    return x[order], cw


def wasserstein_1d(
    u: Any, v: Any, u_weights: Any = None, v_weights: Any = None, *, p: float = 1.0
) -> float:
    """``W_p(mu, nu) = (int_0^1 |F_mu^{-1}(t) - F_nu^{-1}(t)|^p dt)^{1/p}`` for 1D samples.

    ``u`` (N,) and ``v`` (M,) are samples (or support points), with optional non-negative
    weights (N,) and (M,) (normalised here; default uniform). Exact: both quantile functions
    are step functions, so the integral is a finite sum over the merged cumulative weights.
    For N = M and uniform weights, ``W_p^p = mean |sort(u) - sort(v)|^p``.
    Agrees with ``scipy.stats.wasserstein_distance`` for ``p = 1`` (Villani 2003, thm. 2.18).
    """
    p = _check_p(p)
    x = check_samples("u", u)
    y = check_samples("v", v)
    if x.shape[1] != 1 or y.shape[1] != 1:
        raise ValueError(f"u and v must be 1D samples (N,), got shapes {np.shape(u)} and {np.shape(v)}")
    x, y = x[:, 0], y[:, 0]
    if u_weights is None and v_weights is None and len(x) == len(y):
        return float(np.mean(np.abs(np.sort(x) - np.sort(y)) ** p) ** (1.0 / p))
    xs, cu = _quantile_steps(x, _weights("u_weights", u_weights, len(x)))
    ys, cv = _quantile_steps(y, _weights("v_weights", v_weights, len(y)))
    t = np.union1d(cu, cv)  # (K,) breakpoints of both quantile functions, ending at 1
    dt = np.diff(t, prepend=0.0)  # (K,) interval lengths
    # on (t_{k-1}, t_k] the quantile of u is the first sorted value whose cumulative weight reaches t_k
    qu = xs[np.minimum(np.searchsorted(cu, t, side="left"), len(xs) - 1)]  # (K,)
    qv = ys[np.minimum(np.searchsorted(cv, t, side="left"), len(ys) - 1)]  # (K,)
    return float(np.sum(dt * np.abs(qu - qv) ** p) ** (1.0 / p))


def wasserstein_1d_hist(p: Any, q: Any, support: Any) -> float:
    """``W1 = sum_{i<n} |F_p(x_i) - F_q(x_i)| (x_{i+1} - x_i)`` for histograms on a sorted support.

    ``p, q`` (n,): probabilities that sum to 1 on the points ``support`` (n,), strictly
    increasing. This is the area between the two CDFs (Vallender 1973).
    """
    a = as_distribution("p", p)
    b = as_distribution("q", q)
    x = check_array("support", support, dtype=np.float64, ndim=1, finite=True)
    if a.ndim != 1 or a.shape != b.shape or a.shape != x.shape:
        raise ValueError(
            f"p, q and support must be 1D arrays of the same length (one probability per support point), "
            f"got shapes {a.shape}, {b.shape} and {x.shape}"
        )
    if np.any(np.diff(x) <= 0):
        raise ValueError("support must be strictly increasing")
    cdf_gap = np.cumsum(a - b)[:-1]  # (n-1,) F_p - F_q on each interval [x_i, x_{i+1})
    return float(np.sum(np.abs(cdf_gap) * np.diff(x)))


def _check_ot(a: Any, b: Any, cost: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = check_array("cost", cost, dtype=np.float64, ndim=2, finite=True)
    aa = as_distribution("a", a)
    bb = as_distribution("b", b)
    if aa.ndim != 1 or bb.ndim != 1 or m.shape != (aa.size, bb.size):
        raise ValueError(
            f"the marginals must be 1D with cost of shape (len(a), len(b)); got a {aa.shape}, b {bb.shape}, "
            f"cost {m.shape}"
        )
    return aa, bb, m


def ot_exact(a: Any, b: Any, cost: Any) -> tuple[float, np.ndarray]:
    """Exact discrete optimal transport ``min_P sum_ij P_ij M_ij`` s.t. ``P 1 = a``, ``P^T 1 = b``, ``P >= 0``.

    ``a`` (n,), ``b`` (m,): probability vectors; ``cost`` (n, m). Returns ``(cost, plan)`` with
    ``plan`` (n, m). Solved as a linear program by ``scipy.optimize.linprog`` (HiGHS). With
    ``M_ij = |x_i - y_j|`` this is the earth mover's distance W1.
    """
    aa, bb, m = _check_ot(a, b, cost)
    n, k = m.shape
    # equality constraints on the row-major flattened plan P.ravel() (n*k,)
    rows = sparse.kron(sparse.eye(n), np.ones((1, k)))  # (n, n*k): sum_j P_ij = a_i
    cols = sparse.kron(np.ones((1, n)), sparse.eye(k))  # (k, n*k): sum_i P_ij = b_j
    a_eq = sparse.vstack([rows, cols]).tocsr()
    b_eq = np.concatenate([aa, bb])
    res = linprog(m.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"the transport linear program failed: {res.message}")
    plan = np.clip(res.x.reshape(n, k), 0.0, None)
    return float(np.sum(plan * m)), plan


class SinkhornConvergenceWarning(UserWarning):
    """``ot_sinkhorn`` stopped after ``max_iter`` sweeps with a marginal error still above ``tol``.

    A ``UserWarning``, as POT's ``ot.sinkhorn`` warns; select it with ``warnings.filterwarnings``.
    """


class SinkhornResult(tuple):
    """``(cost, plan)``, unpacked and indexed like a pair, with the run's diagnostics as attributes.

    Attributes: ``cost`` (float), ``plan`` (n, m), ``marginal_error`` (``sum_i |P 1 - a|_i`` of the
    returned plan), ``n_iter`` (sweeps run) and ``converged`` (``marginal_error < tol``).
    """

    cost: float
    plan: np.ndarray
    marginal_error: float
    n_iter: int
    converged: bool

    def __new__(cls, cost: float, plan: np.ndarray, marginal_error: float, n_iter: int, converged: bool):
        self = super().__new__(cls, (cost, plan))
        self.cost, self.plan = cost, plan
        self.marginal_error, self.n_iter, self.converged = marginal_error, n_iter, converged
        return self

    def __getnewargs__(self) -> tuple:  # copy and pickle rebuild it through __new__
        return (self.cost, self.plan, self.marginal_error, self.n_iter, self.converged)


def ot_sinkhorn(
    a: Any, b: Any, cost: Any, reg: float, *, max_iter: int = 10_000, tol: float = 1e-9
) -> SinkhornResult:
    """Entropic OT ``P = argmin <P, M> + reg sum_ij P_ij log P_ij`` by log-domain Sinkhorn.

    Potentials ``f`` (n,), ``g`` (m,) are updated alternately,

        f_i = reg log a_i - reg logsumexp_j((g_j - M_ij) / reg),
        g_j = reg log b_j - reg logsumexp_i((f_i - M_ij) / reg),

    and ``P_ij = exp((f_i + g_j - M_ij) / reg)``, so no kernel ``exp(-M / reg)`` is formed and a
    small ``reg`` does not underflow. Stops when the row marginal error ``sum_i |P 1 - a|``
    (the column marginals are exact after each g-update) is below ``tol``, or after ``max_iter``
    sweeps; stopping there warns (``SinkhornConvergenceWarning``), since the plan is then not yet
    a transport plan between ``a`` and ``b``, and its cost can be far from the entropic optimum.
    Returns ``(<P, M>, P)``: the same convention as POT's ``ot.sinkhorn2`` (the linear cost of the
    entropic plan, without the entropy term), as a ``SinkhornResult`` that also carries
    ``marginal_error``, ``n_iter`` and ``converged``.
    """
    aa, bb, m = _check_ot(a, b, cost)
    reg = check_positive("reg", reg)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    with np.errstate(divide="ignore"):
        log_a, log_b = np.log(aa), np.log(bb)  # -inf on zero mass: those rows / columns get no transport
    f, g = np.zeros(aa.size), np.zeros(bb.size)
    for it in range(1, int(max_iter) + 1):
        f = reg * (log_a - logsumexp((g[None, :] - m) / reg, axis=1))  # (n,) from (1, m) - (n, m)
        g = reg * (log_b - logsumexp((f[:, None] - m) / reg, axis=0))  # (m,) from (n, 1) - (n, m)
        log_plan = (f[:, None] + g[None, :] - m) / reg  # (n, m)
        err = float(np.abs(np.exp(logsumexp(log_plan, axis=1)) - aa).sum())
        if err < tol:
            break
    converged = err < tol
    if not converged:
        warnings.warn(
            f"Sinkhorn did not converge: after max_iter={max_iter} sweeps the marginal error sum_i |P 1 - a| is "
            f"{err:.3g} (tol={tol:g}), so the plan does not yet transport a to b and its cost is unreliable. "
            f"Increase max_iter or the regularization reg (={reg:g}), or loosen tol.",
            SinkhornConvergenceWarning,
            stacklevel=2,
        )
    plan = np.exp(log_plan)
    return SinkhornResult(float(np.sum(plan * m)), plan, err, it, converged)


def random_directions(n: int, dim: int, seed: RngLike = 0) -> np.ndarray:
    """``n`` directions uniform on the unit sphere in R^dim (normalised Gaussians), shape (n, dim)."""
    for name, v in (("n_projections", n), ("dim", dim)):
        check_positive_int(name, v)
    g = make_rng(seed).standard_normal((n, dim))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def sliced_wasserstein(
    x: Any, y: Any, n_projections: int = 128, *, p: float = 1.0, seed: RngLike = 0
) -> float:
    """``SW_p(x, y) = (mean_l W_p^p(<x, theta_l>, <y, theta_l>))^{1/p}`` over random unit directions.

    ``x`` (N, d), ``y`` (M, d) samples; ``theta_l`` (L, d) uniform on the sphere (seeded). Each 1D
    distance is exact (``wasserstein_1d``). In 1D it is W_p itself.
    """
    p = _check_p(p)
    xx = check_samples("x", x)
    yy = check_samples("y", y, xx.shape[1])
    theta = random_directions(n_projections, xx.shape[1], seed)  # (L, d)
    px, py = xx @ theta.T, yy @ theta.T  # (N, d) @ (d, L) -> (N, L); (M, L)
    if len(px) == len(py):
        return float(np.mean(np.abs(np.sort(px, 0) - np.sort(py, 0)) ** p) ** (1.0 / p))
    wp = [wasserstein_1d(px[:, l], py[:, l], p=p) ** p for l in range(px.shape[1])]
    return float(np.mean(wp) ** (1.0 / p))
