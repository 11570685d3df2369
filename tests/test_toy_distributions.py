"""Tests for gancourse.toy.distributions: definitions, sampling, seeding, densities, errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.integrate import trapezoid

from gancourse.toy.distributions import (
    DATASETS,
    Checkerboard,
    Gaussian1D,
    GaussianMixture,
    Grid25,
    Mixture1D,
    Ring8,
    get_dataset,
)
from gancourse.rng import make_rng

NAMES = ["gaussian", "mixture1d", "ring8", "grid25", "swiss_roll", "two_moons", "spiral", "checkerboard"]
NO_DENSITY = ["swiss_roll", "two_moons", "spiral"]


def _nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)


# --- definitions ----------------------------------------------------------------------------


def test_registry_names():
    assert list(DATASETS) == NAMES
    for name in NAMES:
        ds = get_dataset(name)
        assert ds.name == name
        assert ds.dim == (1 if name in ("gaussian", "mixture1d") else 2)


def test_ring8_definition():
    ds = get_dataset("ring8")
    k = np.arange(8)
    expected = np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], axis=1)
    np.testing.assert_allclose(ds.centers, expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(ds.centers, axis=1), 1.0)
    assert ds.std == 0.01
    np.testing.assert_array_equal(ds.component_stds, np.full(8, 0.01))
    np.testing.assert_array_equal(ds.component_weights, np.full(8, 1 / 8))


def test_grid25_definition():
    ds = get_dataset("grid25")
    assert ds.centers.shape == (25, 2)
    got = {tuple(c) for c in ds.centers.tolist()}
    vals = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert got == {(a, b) for a in vals for b in vals}
    assert ds.std == 0.05
    np.testing.assert_array_equal(ds.component_weights, np.full(25, 1 / 25))


def test_mixture1d_defaults_and_options():
    ds = get_dataset("mixture1d")
    np.testing.assert_array_equal(ds.centers, [[-2.0], [2.0]])
    assert ds.std == 0.5
    np.testing.assert_allclose(ds.component_weights, [0.5, 0.5])
    ds2 = Mixture1D(means=(-1, 0, 3), stds=(0.1, 0.2, 0.3), weights=(1, 1, 2))
    np.testing.assert_allclose(ds2.component_weights, [0.25, 0.25, 0.5])
    np.testing.assert_allclose(ds2.std, [0.1, 0.2, 0.3])
    assert hash(ds2) == hash(Mixture1D(means=(-1, 0, 3), stds=(0.1, 0.2, 0.3), weights=(1, 1, 2)))


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Ring8().std = 0.1


# --- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_dtype_and_scale(name):
    ds = get_dataset(name)
    x = ds.sample(2000, 0)
    assert x.shape == (2000, ds.dim) and x.dtype == np.float64
    assert np.all(np.isfinite(x))
    scale = ds.natural_scale()
    assert scale > 0 and scale == ds.natural_scale()  # deterministic
    assert 0.5 * scale < np.abs(x).max() < 2 * scale  # the extent of the data, neither wildly loose nor tight
    if isinstance(ds, GaussianMixture):  # the modes set a mixture's extent, not their tails
        assert scale == np.abs(ds.centers).max()
    else:
        assert np.mean(np.abs(x) <= scale) == pytest.approx(0.99, abs=0.01)


def test_one_natural_scale_rule():
    from gancourse.toy.distributions import ToyDistribution

    assert all(cls.natural_scale is ToyDistribution.natural_scale for cls in DATASETS.values())


@pytest.mark.parametrize("name", NAMES)
def test_the_trainer_scales_the_data_by_the_natural_scale(name):
    from gancourse.toy import ToyGAN

    ds = get_dataset(name)
    assert ToyGAN(data=name, g_hidden=(4,), d_hidden=(4,)).scale == ds.natural_scale() / 2  # about [-2, 2]
    assert ToyGAN(data=name, g_hidden=(4,), d_hidden=(4,), data_scale=3.0).scale == 3.0


@pytest.mark.parametrize("name", NAMES)
def test_seeding_deterministic(name):
    ds = get_dataset(name)
    np.testing.assert_array_equal(ds.sample(100, 7), ds.sample(100, 7))
    assert not np.array_equal(ds.sample(100, 7), ds.sample(100, 8))
    np.testing.assert_array_equal(ds.sample(100, 7), ds.sample(100, np.random.default_rng(7)))
    rng = np.random.default_rng(3)
    a, b = ds.sample(50, rng), ds.sample(50, rng)  # a Generator advances between calls
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(("name", "n"), [("ring8", 16000), ("grid25", 25000)])
def test_mixture_modes_mean_and_std(name, n):
    ds = get_dataset(name)
    x = ds.sample(n, 0)
    k = len(ds.centers)
    lab = _nearest(x, ds.centers)
    counts = np.bincount(lab, minlength=k)
    np.testing.assert_allclose(counts / n, 1 / k, rtol=0.15)
    for j in range(k):
        xj = x[lab == j]
        np.testing.assert_allclose(xj.mean(0), ds.centers[j], atol=5 * ds.std / np.sqrt(len(xj)))
        np.testing.assert_allclose(xj.std(0), ds.std, rtol=0.15)


def test_1d_moments():
    x = Gaussian1D(mean=1.5, std=0.3).sample(20000, 0)[:, 0]
    assert abs(x.mean() - 1.5) < 0.01 and abs(x.std() - 0.3) < 0.01
    y = get_dataset("mixture1d").sample(20000, 0)[:, 0]
    for sign in (-1, 1):
        side = y[np.sign(y) == sign]
        assert abs(len(side) / len(y) - 0.5) < 0.02
        assert abs(side.mean() - 2 * sign) < 0.02 and abs(side.std() - 0.5) < 0.02


def test_checkerboard_samples_on_black_squares():
    ds = get_dataset("checkerboard")
    x = ds.sample(5000, 1)
    assert np.all((x >= -2) & (x < 2))
    ij = np.floor(x + 2).astype(int)
    assert np.all(ij.sum(1) % 2 == 0)
    assert np.all(ds.density(x) == 1 / 8)
    assert len({tuple(v) for v in ij}) == 8


# --- densities --------------------------------------------------------------------------------


@pytest.mark.parametrize("ds", [Gaussian1D(), Gaussian1D(mean=-1, std=0.2), Mixture1D(),
                                Mixture1D(means=(-3, 0, 1), stds=(0.2, 0.5, 1.0), weights=(1, 2, 3))])
def test_1d_density_integrates_to_one(ds):
    t = np.linspace(-12, 12, 24001)
    p = ds.density(t)  # (N,) is accepted for 1D
    assert p.shape == t.shape
    np.testing.assert_allclose(trapezoid(p, t), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ds.density(t[:, None]), p)


@pytest.mark.parametrize(("ds", "half", "h"), [(Ring8(std=0.1), 1.6, 0.01), (Grid25(std=0.3), 5.6, 0.05),
                                               (Checkerboard(), 2.5, 0.01), (Checkerboard(5, 0.5), 1.5, 0.01)])
def test_2d_density_integrates_to_one(ds, half, h):
    g = np.arange(-half, half, h) + h / 2  # cell midpoints
    gx, gy = np.meshgrid(g, g, indexing="ij")
    p = ds.density(np.stack([gx.ravel(), gy.ravel()], axis=1))
    np.testing.assert_allclose(p.sum() * h * h, 1.0, rtol=1e-3)


def test_default_ring8_density_mass_per_mode():
    ds = Ring8()
    c, h = ds.centers[3], 0.0005
    g = np.arange(-0.05, 0.05, h) + h / 2
    gx, gy = np.meshgrid(g + c[0], g + c[1], indexing="ij")
    p = ds.density(np.stack([gx.ravel(), gy.ravel()], axis=1))
    np.testing.assert_allclose(p.sum() * h * h, 1 / 8, rtol=1e-4)
    np.testing.assert_allclose(ds.density(c[None]), 1 / 8 / (2 * np.pi * 0.01**2), rtol=1e-9)


def test_log_density_far_away_is_finite():
    lp = Grid25().log_density(np.array([[100.0, 100.0]]))
    assert np.isfinite(lp).all() and lp[0] < -1e5


@pytest.mark.parametrize("name", NO_DENSITY)
def test_no_closed_form_density(name):
    with pytest.raises(NotImplementedError, match="no closed-form density"):
        get_dataset(name).density(np.zeros((3, 2)))


# --- errors -----------------------------------------------------------------------------------


def test_unknown_name_lists_options():
    with pytest.raises(ValueError, match="unknown dataset 'ring9'.*'ring8'.*'checkerboard'"):
        get_dataset("ring9")


def test_unknown_option_lists_accepted():
    with pytest.raises(TypeError, match="'sigma'.*accepts: 'std', 'radius'"):
        get_dataset("ring8", sigma=0.1)
    assert get_dataset("ring8", std=0.02).std == 0.02


@pytest.mark.parametrize("n", [0, -5])
def test_bad_n_value(n):
    with pytest.raises(ValueError, match="positive integer"):
        Ring8().sample(n, 0)


@pytest.mark.parametrize("n", [2.5, "10", True])
def test_bad_n_type(n):
    with pytest.raises(TypeError, match="must be an int"):
        Ring8().sample(n, 0)


@pytest.mark.parametrize("seed", [None, 1.5, "0"])
def test_bad_seed(seed):
    with pytest.raises(TypeError, match="int seed or a numpy.random.Generator"):
        Ring8().sample(10, seed)
    with pytest.raises(TypeError):
        make_rng(seed)


def test_bad_parameters():
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        Ring8(std=-0.1)
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        Gaussian1D(std=0)
    with pytest.raises(ValueError, match="mean must be a finite number"):
        Gaussian1D(mean=float("nan"))
    with pytest.raises(ValueError, match=r"stds must be one number or have shape \(2,\)"):
        Mixture1D(stds=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="weights must be finite, non-negative"):
        Mixture1D(weights=(1.0, -1.0))
    with pytest.raises(ValueError, match="n_squares must be a positive integer"):
        Checkerboard(n_squares=0)


def test_density_bad_input():
    with pytest.raises(ValueError, match=r"must have shape \(N, 2\), got shape \(4, 3\)"):
        Ring8().density(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        Grid25().density(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match=r"shape \(N, 1\)"):
        Gaussian1D().density(np.zeros((4, 2)))


def test_is_mixture_interface():
    for name in NAMES:
        ds = get_dataset(name)
        assert isinstance(ds, GaussianMixture) == (name in ("mixture1d", "ring8", "grid25"))
