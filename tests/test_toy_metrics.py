"""Tests for gancourse.toy.metrics: mode metrics, 1D/sliced Wasserstein, energy distance."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import energy_distance as scipy_energy
from scipy.stats import wasserstein_distance

from gancourse.divergences import random_directions
from gancourse.toy import metrics
from gancourse.toy.distributions import Gaussian1D, Ring8, get_dataset
from gancourse.toy.metrics import (
    energy_distance,
    mode_metrics,
    sliced_wasserstein1,
    toy_metrics,
    wasserstein1_1d,
)

RING = Ring8()


# --- mode_metrics -----------------------------------------------------------------------------


def test_perfect_samples():
    x = np.repeat(RING.centers, 10, axis=0)
    m = mode_metrics(x, RING.centers, RING.std)
    assert m["modes"] == 8 and m["hq"] == 1.0 and m["counts"] == [10] * 8
    assert m["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_collapsed_to_one_mode():
    x = RING.centers[[2]] + 0.01 * np.random.default_rng(0).uniform(-1, 1, (50, 2))
    m = mode_metrics(x, RING.centers, RING.std)
    assert m["modes"] == 1 and m["hq"] == 1.0
    assert m["counts"] == [0, 0, 50, 0, 0, 0, 0, 0]
    assert m["reverse_kl"] == pytest.approx(np.log(8), rel=1e-12)


def test_far_away_samples_are_not_high_quality():
    x = np.zeros((100, 2))  # the ring's centre is at distance 1 = 100 std from every mode
    m = mode_metrics(x, RING.centers, RING.std)
    assert m["hq"] == 0.0 and m["modes"] == 0 and m["counts"] == [0] * 8
    assert m["reverse_kl"] == float("inf")


def test_hand_computed_case():
    c = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.array([
        [0.5, 0.0],   # centre 0, distance 0.5: HQ
        [1.0, 2.0],   # centre 0, distance sqrt(5): HQ
        [10.0, 2.9],  # centre 1, distance 2.9: HQ
        [5.1, 0.0],   # centre 1, distance 4.9: not HQ
        [0.0, 6.0],   # centre 2, distance 4: not HQ
    ])
    m = mode_metrics(x, c, 1.0)
    assert m["counts"] == [2, 1, 0] and m["modes"] == 2 and m["hq"] == pytest.approx(3 / 5)
    q = np.array([2 / 3, 1 / 3])
    assert m["reverse_kl"] == pytest.approx(np.log(3) + np.sum(q * np.log(q)), rel=1e-12)
    # per-centre stds: centre 1 now has std 0.1, so (10, 2.9) is no longer HQ
    m2 = mode_metrics(x, c, [1.0, 0.1, 1.0])
    assert m2["counts"] == [2, 0, 0] and m2["modes"] == 1 and m2["reverse_kl"] == pytest.approx(np.log(3))
    # a wider HQ radius takes in everything
    assert mode_metrics(x, c, 1.0, n_std=5.0)["counts"] == [2, 2, 1]


def test_boundary_is_inclusive_and_1d_input():
    c = np.array([[0.0], [10.0]])
    m = mode_metrics(np.array([3.0, 13.0, 6.5]), c, 1.0)  # (N,) read as (N, 1)
    assert m["counts"] == [1, 1] and m["hq"] == pytest.approx(2 / 3)


def test_chunking_does_not_change_the_result(monkeypatch):
    ds = get_dataset("grid25")
    x = ds.sample(3000, 0) * 1.02
    full = mode_metrics(x, ds.centers, ds.std)
    monkeypatch.setattr(metrics, "_MAX_ELEMS", 100)
    assert mode_metrics(x, ds.centers, ds.std) == full


def test_mode_metrics_bad_input():
    c = RING.centers
    with pytest.raises(ValueError, match=r"samples must have shape \(N, 2\), got shape \(5, 3\)"):
        mode_metrics(np.zeros((5, 3)), c, 0.01)
    with pytest.raises(ValueError, match="samples contains 1 NaN"):
        mode_metrics(np.array([[0.0, np.nan]]), c, 0.01)
    with pytest.raises(ValueError, match="at least one point"):
        mode_metrics(np.zeros((0, 2)), c, 0.01)
    with pytest.raises(ValueError, match=r"centers must have shape \(K, d\) with K >= 1, got shape \(8,\)"):
        mode_metrics(np.zeros((5, 2)), c[:, 0], 0.01)
    with pytest.raises(ValueError, match="std must be > 0"):
        mode_metrics(np.zeros((5, 2)), c, -0.01)
    with pytest.raises(ValueError, match=r"std must have shape \(8,\), got shape \(3,\)"):
        mode_metrics(np.zeros((5, 2)), c, [0.1, 0.1, 0.1])
    with pytest.raises(TypeError, match="samples must be array-like of numbers"):
        mode_metrics(np.array([["a", "b"]]), c, 0.01)


# --- wasserstein1_1d --------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "m", "seed"), [(1, 7, 0), (37, 101, 1), (500, 333, 2), (64, 64, 3), (1000, 10, 4)])
def test_w1_matches_scipy(n, m, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.standard_t(3, size=m) * 2 + 0.5
    np.testing.assert_allclose(wasserstein1_1d(a, b), wasserstein_distance(a, b), rtol=1e-10)
    assert wasserstein1_1d(b, a) == pytest.approx(wasserstein1_1d(a, b), rel=1e-12)


def test_w1_properties():
    a = np.random.default_rng(0).normal(size=200)
    assert wasserstein1_1d(a, a) == 0.0
    assert wasserstein1_1d(a, a + 1.5) == pytest.approx(1.5)
    assert wasserstein1_1d(a[:, None], np.tile(a, 3)) == pytest.approx(0.0, abs=1e-12)  # (N, 1) accepted
    assert wasserstein1_1d([0.0], [1.0, 3.0]) == pytest.approx(2.0)


def test_w1_bad_input():
    with pytest.raises(ValueError, match=r"a must have shape \(N,\) or \(N, 1\), got shape \(5, 2\)"):
        wasserstein1_1d(np.zeros((5, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="b contains 1 NaN"):
        wasserstein1_1d(np.zeros(3), [0.0, np.nan])
    with pytest.raises(ValueError, match="at least one point"):
        wasserstein1_1d([], [1.0])


# --- energy distance --------------------------------------------------------------------------


def test_energy_same_sample_is_zero_and_grows_with_shift():
    x = np.random.default_rng(0).normal(size=(500, 2))
    assert energy_distance(x, x) == 0.0
    shifts = [0.1, 0.5, 1.0, 2.0]
    e = [energy_distance(x, x + [s, 0.0]) for s in shifts]
    assert all(v > 0 for v in e) and np.all(np.diff(e) > 0)


def test_energy_formula_and_chunking(monkeypatch):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(120, 3)), rng.normal(size=(80, 3)) + 0.3
    expected = 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()  # V-statistic
    assert energy_distance(x, y) == pytest.approx(expected, rel=1e-12)
    assert energy_distance(y, x) == pytest.approx(expected, rel=1e-12)
    monkeypatch.setattr(metrics, "_MAX_ELEMS", 50)
    assert energy_distance(x, y) == pytest.approx(expected, rel=1e-12)


def test_energy_1d_is_square_of_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=70), rng.normal(size=45) * 1.5
    assert energy_distance(a, b) == pytest.approx(scipy_energy(a, b) ** 2, rel=1e-10)


def test_energy_bad_input():
    with pytest.raises(ValueError, match=r"y must have shape \(N, 2\), got shape \(4, 3\)"):
        energy_distance(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        energy_distance([[np.nan, 0.0]], np.zeros((4, 2)))


# --- sliced Wasserstein -----------------------------------------------------------------------


def test_random_directions():
    d = random_directions(64, 3, seed=5)
    assert d.shape == (64, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    np.testing.assert_array_equal(d, random_directions(64, 3, seed=5))


def test_sliced_w1_of_shift():
    x = np.random.default_rng(0).normal(size=(400, 2))
    s = np.array([0.3, -0.4])  # |s| = 0.5
    sw = sliced_wasserstein1(x, x + s, n_projections=256, seed=3)
    theta = random_directions(256, 2, seed=3)
    assert sw == pytest.approx(np.mean(np.abs(theta @ s)), rel=1e-9)
    assert sw == pytest.approx(2 / np.pi * 0.5, rel=0.1)  # E|cos| = 2/pi for a uniform angle
    assert sliced_wasserstein1(x, x) == 0.0


def test_sliced_w1_unequal_sizes():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(90, 2)), rng.normal(size=(150, 2)) + 1
    theta = random_directions(16, 2, seed=0)
    expected = np.mean([wasserstein_distance(x @ t, y @ t) for t in theta])
    assert sliced_wasserstein1(x, y, n_projections=16, seed=0) == pytest.approx(expected, rel=1e-10)


def test_sliced_w1_bad_input():
    with pytest.raises(ValueError, match="n_projections must be a positive integer"):
        sliced_wasserstein1(np.zeros((3, 2)), np.zeros((3, 2)), n_projections=0)
    with pytest.raises(ValueError, match=r"y must have shape \(N, 2\)"):
        sliced_wasserstein1(np.zeros((3, 2)), np.zeros(3))


# --- toy_metrics ------------------------------------------------------------------------------


def test_toy_metrics_mixtures():
    ds = get_dataset("ring8")
    m = toy_metrics(ds, ds.sample(2500, 0))
    assert set(m) == {"modes", "hq", "reverse_kl", "counts"}
    assert m["modes"] == 8 and m["hq"] > 0.97 and m["reverse_kl"] < 0.01
    collapsed = np.repeat(get_dataset("grid25").centers[:1], 100, axis=0)
    m = toy_metrics("grid25", collapsed)
    assert m["modes"] == 1 and m["reverse_kl"] == pytest.approx(np.log(25))


def test_toy_metrics_1d():
    ds = Gaussian1D()
    good = toy_metrics(ds, ds.sample(2000, 1))
    assert set(good) == {"w1"} and good["w1"] < 0.1
    assert toy_metrics(ds, ds.sample(2000, 1)[:, 0] + 1.0)["w1"] == pytest.approx(1.0, abs=0.1)
    m = toy_metrics("mixture1d", get_dataset("mixture1d").sample(2000, 1))
    assert {"modes", "hq", "reverse_kl", "counts", "w1"} <= set(m) and m["modes"] == 2


def test_toy_metrics_2d_sample_sets():
    ds = get_dataset("two_moons")
    good = toy_metrics(ds, ds.sample(1000, 1))
    bad = toy_metrics(ds, ds.sample(1000, 1) + 0.5)
    assert set(good) == {"energy", "sliced_w1"}
    assert good["energy"] < bad["energy"] and good["sliced_w1"] < bad["sliced_w1"]
    assert toy_metrics(ds, ds.sample(1000, 1)) == good  # seeded reference


def test_toy_metrics_bad_input():
    with pytest.raises(ValueError, match="unknown dataset 'moons'.*'two_moons'"):
        toy_metrics("moons", np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"samples must have shape \(N, 2\), got shape \(5, 1\)"):
        toy_metrics("spiral", np.zeros((5, 1)))
    with pytest.raises(TypeError, match="dataset must be a ToyDistribution"):
        toy_metrics(42, np.zeros((5, 2)))
