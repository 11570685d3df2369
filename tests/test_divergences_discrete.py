"""KL, reverse KL, JSD and TV on discrete distributions and grid densities; the optimal discriminator."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, norm

from gancourse.divergences import (
    cell_area,
    gan_value,
    inception_score,
    inception_score_splits,
    js_divergence,
    kl_divergence,
    optimal_discriminator,
    optimal_gan_value,
    reverse_kl_divergence,
    total_variation,
)

LOG2 = np.log(2.0)


def _pair(seed: int, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))


def test_kl_matches_scipy_entropy_and_reverse_kl_swaps():
    p, q = _pair(0)
    assert kl_divergence(p, q) == pytest.approx(entropy(p, q), rel=1e-12)
    assert reverse_kl_divergence(p, q) == pytest.approx(entropy(q, p), rel=1e-12)
    assert kl_divergence(p, q) != pytest.approx(kl_divergence(q, p), rel=1e-3)


def test_js_matches_scipy_jensenshannon_squared():
    p, q = _pair(1)
    assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-10)
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p), rel=1e-12)


def test_tv_is_half_l1_and_the_largest_event_gap():
    p, q = _pair(2)
    assert total_variation(p, q) == pytest.approx(0.5 * np.abs(p - q).sum(), rel=1e-12)
    assert total_variation(p, q) == pytest.approx((p - q)[p > q].sum(), rel=1e-12)  # sup_A |p(A) - q(A)|


def test_zero_conventions_and_infinite_kl_without_warnings():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    with np.errstate(all="raise"):
        assert kl_divergence(p, q) == np.inf
        assert kl_divergence(np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])) == pytest.approx(np.log(2), rel=1e-12)
        assert js_divergence(p, q) == pytest.approx(0.5 * LOG2, rel=1e-12)
    assert kl_divergence(p, p) == 0.0 and js_divergence(p, p) == 0.0 and total_variation(p, p) == 0.0


def test_disjoint_supports_saturate_jsd_and_tv():
    p, q = np.array([0.2, 0.8, 0.0, 0.0]), np.array([0.0, 0.0, 0.3, 0.7])
    assert js_divergence(p, q) == pytest.approx(LOG2, abs=1e-15)
    assert total_variation(p, q) == pytest.approx(1.0, abs=1e-15)
    assert kl_divergence(p, q) == np.inf and reverse_kl_divergence(p, q) == np.inf


def test_grid_densities_1d_match_gaussian_closed_forms():
    xs = np.linspace(-12, 12, 4001)
    dx = cell_area(xs)
    p, q = norm.pdf(xs, 0, 1), norm.pdf(xs, 1, 2)
    kl_exact = np.log(2 / 1) + (1 + 1) / (2 * 4) - 0.5  # KL(N(0,1) || N(1,4))
    assert kl_divergence(p, q, cell=dx) == pytest.approx(kl_exact, rel=1e-6)
    kl_rev = np.log(1 / 2) + (4 + 1) / 2 - 0.5  # KL(N(1,4) || N(0,1))
    assert reverse_kl_divergence(p, q, cell=dx) == pytest.approx(kl_rev, rel=1e-6)
    # TV of two unit Gaussians at distance d: 2 Phi(d/2) - 1
    assert total_variation(p, norm.pdf(xs, 1.0, 1), cell=dx) == pytest.approx(2 * norm.cdf(0.5) - 1, rel=1e-6)
    assert 0 < js_divergence(p, q, cell=dx) < LOG2


def test_grid_densities_2d():
    xs, ys = np.linspace(-8, 8, 321), np.linspace(-8, 9, 341)
    X, Y = np.meshgrid(xs, ys)  # (341, 321)
    p = norm.pdf(X) * norm.pdf(Y)
    q = norm.pdf(X, 1.0) * norm.pdf(Y, -0.5)
    cell = cell_area(xs, ys)
    assert kl_divergence(p, q, cell=cell) == pytest.approx(0.5 * (1.0 + 0.25), rel=1e-6)  # |dmu|^2 / 2
    assert total_variation(p, q, cell=cell) == pytest.approx(2 * norm.cdf(np.sqrt(1.25) / 2) - 1, rel=1e-4)  # |p - q| has a kink: slower Riemann sum


def test_cell_area_rejects_uneven_axes():
    assert cell_area(np.linspace(0, 1, 11), np.linspace(0, 2, 5)) == pytest.approx(0.1 * 0.5)
    with pytest.raises(ValueError, match="evenly spaced"):
        cell_area(np.array([0.0, 1.0, 3.0]))


@pytest.mark.parametrize("fn", [kl_divergence, reverse_kl_divergence, js_divergence, total_variation])
def test_bad_distributions_raise_clear_errors(fn):
    good = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        fn(np.array([0.5, 0.6]), good)
    with pytest.raises(ValueError, match="non-negative"):
        fn(np.array([1.5, -0.5]), good)
    with pytest.raises(ValueError, match="same support"):
        fn(good, np.array([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="non-empty"):
        fn(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="NaN"):
        fn(np.array([np.nan, 1.0]), good)
    with pytest.raises(ValueError, match="sum\\(p\\) \\* cell|sum\\(q\\) \\* cell"):
        fn(np.ones(10), np.ones(10), cell=1.0)


# --------------------------------------------------------------------- the optimal discriminator


def test_optimal_discriminator_maximises_the_value():
    p, q = _pair(3)
    d_star = optimal_discriminator(p, q)
    np.testing.assert_allclose(d_star, p / (p + q), rtol=1e-14)
    v_star = gan_value(d_star, p, q)
    rng = np.random.default_rng(3)
    for _ in range(20):
        d = np.clip(d_star + 0.05 * rng.standard_normal(d_star.shape), 1e-6, 1 - 1e-6)
        assert gan_value(d, p, q) < v_star


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(min_value=1, max_value=12),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    zeros=st.booleans(),
)
def test_value_at_optimal_discriminator_is_2jsd_minus_log4(k, seed, zeros):
    """V(D*, G) = 2 JSD(p || q) - log 4 on random discrete distributions, with or without zero cells."""
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
    if zeros and k > 1:
        p[rng.integers(k)] = 0.0  # zero mass in p (or in both, or in q) somewhere
        q[rng.integers(k)] = 0.0
        if p.sum() == 0 or q.sum() == 0:
            return
        p, q = p / p.sum(), q / q.sum()
    v = gan_value(optimal_discriminator(p, q), p, q)
    assert abs(v - (2 * js_divergence(p, q) - np.log(4))) <= 1e-10
    assert abs(v - optimal_gan_value(p, q)) <= 1e-10
    assert -np.log(4) - 1e-12 <= v <= 1e-12


def test_identity_holds_for_grid_densities():
    xs = np.linspace(-10, 10, 2001)
    p, q = norm.pdf(xs, -1, 0.7), norm.pdf(xs, 1.5, 1.3)
    dx = cell_area(xs)
    v = gan_value(optimal_discriminator(p, q), p, q, cell=dx)
    assert v == pytest.approx(2 * js_divergence(p, q, cell=dx) - np.log(4), abs=1e-10)


def test_label_smoothing_optimum_and_why_it_is_one_sided():
    p = np.array([0.5, 0.5, 0.0])  # data
    q = np.array([0.0, 0.5, 0.5])  # model, with mass where there is no data
    d1 = optimal_discriminator(p, q, alpha=0.9)
    d2 = optimal_discriminator(p, q, alpha=0.9, beta=0.1)
    np.testing.assert_allclose(d1, [0.9, 0.45, 0.0], atol=1e-15)
    np.testing.assert_allclose(d2, [0.9, 0.5, 0.1], atol=1e-15)
    # the smoothed D* maximises the smoothed value
    rng = np.random.default_rng(0)
    for alpha, beta, d in ((0.9, 0.0, d1), (0.9, 0.1, d2)):
        v = gan_value(d, p, q, alpha=alpha, beta=beta)
        for _ in range(10):
            other = np.clip(d + 0.05 * rng.standard_normal(3), 1e-6, 1 - 1e-6)
            assert gan_value(other, p, q, alpha=alpha, beta=beta) < v
    # one-sided: D* stays 0 where only the model has mass; two-sided: fakes there are rewarded
    assert d1[2] == 0.0 and d2[2] > 0.0


def test_optimal_discriminator_fill_and_errors():
    assert optimal_discriminator(np.array([0.0]), np.array([0.0]))[0] == 0.5
    with pytest.raises(ValueError, match="same shape"):
        optimal_discriminator(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        optimal_discriminator(np.array([-1.0]), np.ones(1))
    with pytest.raises(ValueError, match="alpha"):
        optimal_discriminator(np.ones(2), np.ones(2), alpha=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gan_value(np.array([1.2, 0.5]), np.array([0.5, 0.5]), np.array([0.5, 0.5]))


# --------------------------------------------------------------------- inception score


def test_inception_score_extremes_and_formula():
    assert inception_score(np.eye(5)) == pytest.approx(5.0, rel=1e-12)  # confident and balanced: K
    assert inception_score(np.full((8, 5), 0.2)) == pytest.approx(1.0, rel=1e-12)  # uninformative: 1
    assert inception_score(np.tile([1.0, 0, 0], (6, 1))) == pytest.approx(1.0, rel=1e-12)  # collapsed: 1
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(4, 0.3), size=50)
    marg = probs.mean(0)
    ref = np.exp(np.mean([entropy(r, marg) for r in probs]))
    assert inception_score(probs) == pytest.approx(ref, rel=1e-10)
    splits = inception_score_splits(probs, 5)
    assert splits.shape == (5,) and inception_score(probs, 5) == pytest.approx(splits.mean())


def test_inception_score_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="shape"):
        inception_score(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="n_splits"):
        inception_score_splits(np.eye(3), 4)
