"""Wasserstein distances against POT and SciPy; the lectures' worked examples, exactly; sample estimates."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from gancourse.divergences import (
    SinkhornConvergenceWarning,
    earth_mover_example,
    empirical_pmf,
    histogram_pmfs,
    js_divergence,
    kl_divergence_knn,
    mmd2,
    ot_exact,
    ot_sinkhorn,
    parallel_lines_closed_form,
    parallel_lines_divergences,
    sliced_wasserstein,
    wasserstein_1d,
    wasserstein_1d_hist,
)

ot = pytest.importorskip("ot")


# ------------------------------------------------------------------------------ 1D


def test_wasserstein_1d_matches_scipy_unweighted_and_weighted():
    rng = np.random.default_rng(0)
    for n, m in ((30, 30), (17, 41), (1, 5)):
        u, v = rng.standard_normal(n), 2 * rng.standard_normal(m) + 0.5
        assert wasserstein_1d(u, v) == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-12)
        wu, wv = rng.random(n), rng.random(m)
        assert wasserstein_1d(u, v, wu, wv) == pytest.approx(scipy.stats.wasserstein_distance(u, v, wu, wv), rel=1e-12)


def test_wasserstein_1d_p2_matches_pot_and_gaussian_closed_form():
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal(25), rng.standard_normal(40) + 1.0
    wu, wv = rng.random(25), rng.random(40)
    ref = ot.wasserstein_1d(u, v, wu / wu.sum(), wv / wv.sum(), p=2) ** 0.5
    assert wasserstein_1d(u, v, wu, wv, p=2) == pytest.approx(ref, rel=1e-10)
    # quantile coupling of large samples of N(0,1) and N(3, 2^2): W2^2 = 3^2 + (2-1)^2
    z = scipy.stats.norm.ppf((np.arange(20000) + 0.5) / 20000)
    assert wasserstein_1d(z, 3 + 2 * z, p=2) ** 2 == pytest.approx(10.0, rel=1e-3)


def test_wasserstein_1d_hist_agrees_with_samples_and_lp():
    rng = np.random.default_rng(2)
    x = np.sort(rng.uniform(-3, 3, 12))
    p, q = rng.dirichlet(np.ones(12)), rng.dirichlet(np.ones(12))
    w = wasserstein_1d_hist(p, q, x)
    assert w == pytest.approx(wasserstein_1d(x, x, p, q), rel=1e-12)
    assert w == pytest.approx(ot_exact(p, q, np.abs(x[:, None] - x[None, :]))[0], rel=1e-9)


def test_earth_mover_lecture_example_is_exactly_half():
    p, q, x = earth_mover_example()
    cost = np.abs(x[:, None] - x[None, :])  # (4, 4) |i - j|
    assert wasserstein_1d_hist(p, q, x) == pytest.approx(0.5, abs=1e-12)
    emd, plan = ot_exact(p, q, cost)
    assert emd == pytest.approx(0.5, abs=1e-12)
    np.testing.assert_allclose(plan.sum(1), p, atol=1e-12)
    np.testing.assert_allclose(plan.sum(0), q, atol=1e-12)
    assert wasserstein_1d(x, x, p, q) == pytest.approx(0.5, abs=1e-12)
    assert ot.emd2(p, q, cost) == pytest.approx(0.5, abs=1e-12)


# ------------------------------------------------------------------------- discrete OT


@pytest.mark.parametrize("n, m", [(5, 5), (12, 20), (30, 9)])
def test_ot_exact_matches_pot_emd2(n, m):
    rng = np.random.default_rng(n * 100 + m)
    a, b = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))
    x, y = rng.standard_normal((n, 2)), rng.standard_normal((m, 2)) + 0.5
    cost = ot.dist(x, y, metric="euclidean")
    value, plan = ot_exact(a, b, cost)
    assert value == pytest.approx(ot.emd2(a, b, cost), rel=1e-9, abs=1e-12)
    assert plan.shape == (n, m) and plan.min() >= 0
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-9)
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-9)


@pytest.mark.parametrize("reg", [1.0, 0.1, 0.02])
def test_ot_sinkhorn_matches_pot_sinkhorn2(reg):
    rng = np.random.default_rng(7)
    a, b = rng.dirichlet(np.ones(15)), rng.dirichlet(np.ones(25))
    cost = rng.random((15, 25))
    value, plan = ot_sinkhorn(a, b, cost, reg, tol=1e-12)
    ref = ot.sinkhorn2(a, b, cost, reg, method="sinkhorn_log", numItermax=200_000, stopThr=1e-13)
    assert value == pytest.approx(float(ref), rel=1e-7)
    ref_plan = ot.sinkhorn(a, b, cost, reg, method="sinkhorn_log", numItermax=200_000, stopThr=1e-13)
    np.testing.assert_allclose(plan, ref_plan, atol=1e-8)


def test_sinkhorn_small_reg_is_stable_and_approaches_the_lp():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((20, 2)), rng.standard_normal((20, 2)) + 1.0
    a = b = np.full(20, 1 / 20)
    cost = ot.dist(x, y, metric="euclidean")
    exact, _ = ot_exact(a, b, cost)
    reg = 5e-3
    with pytest.warns(SinkhornConvergenceWarning, match="did not converge"):  # 2e-4 after 2000 sweeps, tol 1e-4
        value, plan = ot_sinkhorn(a, b, cost, reg, max_iter=2000, tol=1e-4)
    assert np.exp(-cost.max() / reg) == 0.0  # the naive kernel exp(-M / reg) underflows here
    assert np.all(np.isfinite(plan))
    assert np.abs(plan.sum(1) - a).sum() < 1e-3 and np.abs(plan.sum(0) - b).sum() < 1e-12
    assert exact <= value <= exact + 0.01


def test_sinkhorn_handles_zero_mass():
    a, b = np.array([0.5, 0.0, 0.5]), np.array([0.25, 0.75])
    cost = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    value, plan = ot_sinkhorn(a, b, cost, 0.05, tol=1e-10)
    assert np.all(plan[1] == 0.0)
    keep = a > 0  # POT's log-domain solver takes log(0) too; compare on the rows with mass
    assert value == pytest.approx(ot.sinkhorn2(a[keep], b, cost[keep], 0.05, method="sinkhorn_log", stopThr=1e-12), rel=1e-6)


def test_ot_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        ot_exact(np.array([0.5, 0.6]), np.array([1.0]), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="cost of shape"):
        ot_exact(np.array([0.5, 0.5]), np.array([1.0]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reg"):
        ot_sinkhorn(np.array([1.0]), np.array([1.0]), np.zeros((1, 1)), 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        ot_sinkhorn(np.array([1.5, -0.5]), np.array([1.0]), np.zeros((2, 1)), 0.1)


# ---------------------------------------------------------------------------- sliced


def test_sliced_wasserstein_in_1d_is_w1_and_matches_pot_in_2d():
    rng = np.random.default_rng(9)
    u, v = rng.standard_normal(50), rng.standard_normal(70) + 1
    assert sliced_wasserstein(u[:, None], v[:, None], 4) == pytest.approx(wasserstein_1d(u, v), rel=1e-12)
    x, y = rng.standard_normal((200, 2)), rng.standard_normal((300, 2)) + [1.0, 0.0]
    # both are Monte Carlo over directions; for a shift s in 2D, SW1 = |s| E|cos| = 2|s| / pi in the limit
    sw = sliced_wasserstein(x, y, 2000)
    ref = ot.sliced_wasserstein_distance(x, y, n_projections=2000, p=1, seed=0)
    assert sw == pytest.approx(ref, rel=0.05)
    big_x, big_y = rng.standard_normal((3000, 2)), rng.standard_normal((3000, 2)) + [1.0, 0.0]
    assert sliced_wasserstein(big_x, big_y, 500) == pytest.approx(2 / np.pi, rel=0.1)


def test_wasserstein_bad_input():
    with pytest.raises(ValueError, match="empty"):
        wasserstein_1d(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="empty"):
        sliced_wasserstein(np.zeros((0, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="1D samples"):
        wasserstein_1d(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="u_weights"):
        wasserstein_1d(np.zeros(3), np.zeros(2), u_weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="p must be >= 1"):
        wasserstein_1d(np.zeros(3), np.zeros(3), p=0.5)
    with pytest.raises(ValueError, match="same length"):
        wasserstein_1d_hist(np.array([0.5, 0.5]), np.array([1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        wasserstein_1d_hist(np.array([0.5, 0.5]), np.array([0.5, 0.5]), np.array([1.0, 0.0]))


# ----------------------------------------------------------------- WGAN's parallel lines


@pytest.mark.parametrize("theta", [0.5, -1.3, 1e-3])
def test_parallel_lines_example(theta):
    closed = parallel_lines_closed_form(theta)
    assert closed == {"jsd": np.log(2), "kl": np.inf, "tv": 1.0, "w": abs(theta)}
    num = parallel_lines_divergences(theta, n=20)
    assert num["jsd"] == pytest.approx(np.log(2), abs=1e-15)
    assert num["kl"] == np.inf
    assert num["tv"] == pytest.approx(1.0, abs=1e-15)
    assert num["w"] == pytest.approx(abs(theta), abs=1e-12)


def test_parallel_lines_at_zero_are_identical():
    assert parallel_lines_closed_form(0.0) == {"jsd": 0.0, "kl": 0.0, "tv": 0.0, "w": 0.0}
    num = parallel_lines_divergences(0.0, n=10)
    assert num["jsd"] == 0.0 and num["kl"] == 0.0 and num["tv"] == 0.0 and num["w"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("theta", [0.7, -0.4])
def test_parallel_lines_gradients_by_finite_differences(theta):
    """d JSD / d theta = 0 while d W / d theta = sign(theta) (centred differences on the numeric values)."""
    h = 1e-4
    plus, minus = parallel_lines_divergences(theta + h, n=10), parallel_lines_divergences(theta - h, n=10)
    assert (plus["jsd"] - minus["jsd"]) / (2 * h) == 0.0
    assert (plus["w"] - minus["w"]) / (2 * h) == pytest.approx(np.sign(theta), abs=1e-6)


# ----------------------------------------------------------------------- sample estimates


def test_empirical_pmf_and_plugin_jsd():
    support = np.array([1, 2, 3, 4])
    p, _, _ = earth_mover_example()
    rng = np.random.default_rng(10)
    x = rng.choice(support, size=200_000, p=p)
    pmf = empirical_pmf(x, support)
    np.testing.assert_allclose(pmf, p, atol=5e-3)
    with pytest.raises(ValueError, match="values in the support"):
        empirical_pmf(np.array([1, 5]), support)
    with pytest.raises(ValueError, match="empty"):
        empirical_pmf(np.array([], dtype=int), support)


def test_histogram_pmfs_jsd_of_disjoint_samples_is_log2():
    rng = np.random.default_rng(11)
    p, q, edges = histogram_pmfs(rng.uniform(0, 1, 500), rng.uniform(2, 3, 700), bins=30)
    assert edges.shape == (31,)
    assert js_divergence(p, q) == pytest.approx(np.log(2), abs=1e-15)
    with pytest.raises(ValueError, match="empty"):
        histogram_pmfs(np.array([]), np.array([1.0]))


def test_knn_kl_estimate_is_close_to_the_gaussian_closed_form():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3000, 2))
    y = 1.5 * rng.standard_normal((3000, 2)) + [1.0, 0.0]
    exact = 0.5 * (2 / 2.25 + 1 / 2.25 - 2 + 2 * np.log(2.25))  # KL(N(0, I) || N((1, 0), 2.25 I))
    assert kl_divergence_knn(x, y, k=5) == pytest.approx(exact, abs=0.05)
    assert abs(kl_divergence_knn(x, rng.standard_normal((3000, 2)), k=5)) < 0.05
    with pytest.raises(ValueError, match="empty"):
        kl_divergence_knn(np.zeros((0, 2)), y)


def test_mmd2_zero_for_identical_samples_and_positive_otherwise():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((300, 2))
    assert mmd2(x, x) == pytest.approx(0.0, abs=1e-12)
    assert mmd2(x, x + 2.0) > 0.2
    # 1D closed form between two points: 2 - 2 exp(-d^2 / 2s^2)
    assert mmd2(np.array([0.0]), np.array([1.0]), bandwidth=1.0) == pytest.approx(2 - 2 * np.exp(-0.5), rel=1e-12)
