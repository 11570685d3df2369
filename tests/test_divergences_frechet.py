"""Fréchet distance (W2^2 between Gaussians): closed forms, identical inputs, rank-deficient covariances."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from gancourse.divergences import frechet_distance, frechet_distance_from_features, gaussian_stats, psd_sqrtm


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_gaussian_stats_matches_numpy_unbiased():
    x = np.random.default_rng(0).standard_normal((50, 4))
    mu, cov = gaussian_stats(x)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, ddof=1), rtol=1e-12)


def test_commuting_diagonal_covariances_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    a, b = rng.uniform(0.1, 3.0, 6), rng.uniform(0.0, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_commuting_rotated_covariances_closed_form():
    """C1 = Q diag(a) Q^T and C2 = Q diag(b) Q^T commute: FD = ||dmu||^2 + sum (sqrt a - sqrt b)^2."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    a, b = rng.uniform(0.0, 2.0, 5), rng.uniform(0.0, 2.0, 5)
    fd = frechet_distance(np.zeros(5), q @ np.diag(a) @ q.T, np.zeros(5), q @ np.diag(b) @ q.T)
    assert fd == pytest.approx(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-10)


def test_general_full_rank_matches_scipy_sqrtm():
    rng = np.random.default_rng(3)
    c1, c2 = _random_spd(rng, 4), _random_spd(rng, 4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-9)
    # symmetric in its two arguments
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(frechet_distance(mu2, c2, mu1, c1), rel=1e-10)


def test_identical_inputs_give_zero():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 8)) @ rng.standard_normal((8, 8))
    mu, cov = gaussian_stats(x)
    scale = np.trace(cov)
    assert 0.0 <= frechet_distance_from_features(x, x) <= 1e-8 * scale
    assert 0.0 <= frechet_distance(mu, cov, mu, cov) <= 1e-8 * scale


def test_rank_deficient_fewer_samples_than_dimensions_matches_subspace_reference():
    """Features in a 3D subspace of R^40 with N = 10 < D: reduce to the subspace and use scipy there."""
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.standard_normal((40, 3)))  # (40, 3) orthonormal columns
    x = rng.standard_normal((10, 3)) @ basis.T + 0.0  # (10, 40), rank <= 3
    y = (rng.standard_normal((12, 3)) * [2.0, 0.5, 1.0] + 1.0) @ basis.T
    fd = frechet_distance_from_features(x, y)
    assert np.isfinite(fd)
    (m1, c1), (m2, c2) = gaussian_stats(x @ basis), gaussian_stats(y @ basis)  # 3D coordinates
    ref = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert fd == pytest.approx(ref, rel=1e-8)


def test_rank_deficient_different_subspaces_matches_high_precision_reference():
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((6, 2)), rng.standard_normal((6, 3))
    c1, c2 = a @ a.T, b @ b.T  # ranks 2 and 3 in R^6, different column spaces
    fd = frechet_distance(np.zeros(6), c1, np.ones(6), c2)
    mpmath.mp.dps = 50

    def sqrtm_sym(m):  # symmetric PSD square root by a 50-digit eigendecomposition
        w, q = mpmath.eigsy(m)
        root = mpmath.diag([mpmath.sqrt(v) if v > mpmath.mpf("1e-30") else 0 for v in w])
        return q * root * q.T

    s1 = sqrtm_sym(mpmath.matrix(c1.tolist()))
    covmean = sqrtm_sym(s1 * mpmath.matrix(c2.tolist()) * s1)
    ref = 6 + float(sum(c1[i, i] + c2[i, i] for i in range(6)) - 2 * sum(covmean[i, i] for i in range(6)))
    assert np.isfinite(fd)
    assert fd == pytest.approx(ref, rel=1e-7)


def test_zero_covariances_reduce_to_squared_mean_distance():
    fd = frechet_distance([0.0, 0.0], np.zeros((2, 2)), [3.0, 4.0], np.zeros((2, 2)))
    assert fd == pytest.approx(25.0, abs=1e-12)


def test_psd_sqrtm_squares_back_and_clips_negative_roundoff():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 2))
    c = a @ a.T  # rank 2, eigenvalues ~ -1e-16 possible
    s = psd_sqrtm(c)
    np.testing.assert_allclose(s @ s, c, atol=1e-10)
    assert np.all(np.isfinite(s))


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), "mu2"),
        ((np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)), "cov1"),
        ((np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3)), "mu1"),
        ((np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2)), "symmetric"),
        ((np.zeros(2), np.eye(2), np.zeros(2), np.array([[np.nan, 0], [0, 1.0]])), "cov2"),
    ],
)
def test_bad_moments_raise_clear_errors(args, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(*args)


def test_bad_features_raise_clear_errors():
    with pytest.raises(ValueError, match="at least 2 samples"):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        gaussian_stats(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="same number of feature columns"):
        frechet_distance_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
