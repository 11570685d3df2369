"""Numeric eigenvalues (finite-difference Jacobians) equal the closed forms to 1e-8 over grids of h, gamma, sigma, eta."""
from __future__ import annotations

import numpy as np
import pytest

from gancourse.dynamics import (
    Bilinear,
    DiracGAN,
    Method,
    alternating_2x2,
    closed_form_discrete,
    consensus_field,
    dirac_consensus,
    dirac_instance_noise,
    dirac_jacobian,
    dirac_r1,
    dirac_simgd,
    dirac_unregularized,
    dirac_wgan,
    discrete_from_continuous,
    eigenvalue_mismatch,
    eigenvalues,
    numeric_jacobian,
    spectral_radius,
    xy_game,
    xy_rho,
    xy_rho_alternating,
    xy_rho_consensus,
    xy_rho_extragradient,
    xy_rho_optimistic,
    xy_rho_simultaneous,
)

TOL = 1e-8
GAMMAS = [0.05, 0.3, 0.99, 1.0, 1.01, 2.0, 5.0]
SIGMAS = [0.1, 0.5, 1.0, 2.0, 4.0]
STEPS = [0.01, 0.1, 0.5, 1.0, 1.5]
ETAS = [0.01, 0.1, 0.3, 0.5, 0.7, 0.99, 1.5, 1.99, 2.5]
Z0 = np.zeros(2)


def continuous(game, field=None):
    return eigenvalues(numeric_jacobian(field or game.field, game.equilibrium))


def discrete_jacobian(game, method):
    s = method.init_state(game, game.equilibrium)
    return numeric_jacobian(lambda q: method.step(game, q), s)


def discrete(game, method):
    return eigenvalues(discrete_jacobian(game, method))


def assert_spectrum(M, expected, tol=TOL):
    """Eigenvalues of ``M`` equal ``expected`` to ``tol``.

    A repeated eigenvalue of a non-diagonalizable matrix moves by sqrt(perturbation)
    (1e-16 round-off -> 1e-8), so there the characteristic polynomials are compared
    instead: their coefficients are as well-conditioned as the matrix entries.
    """
    expected = np.asarray(expected, dtype=complex)
    gaps = np.abs(expected[:, None] - expected[None, :]) + np.eye(expected.size)
    if gaps.min() < 1e-6:
        np.testing.assert_allclose(np.poly(M), np.poly(expected), atol=tol)
    else:
        assert eigenvalue_mismatch(np.linalg.eigvals(M), expected) < tol


# ------------------------------------------------------------------ Dirac-GAN, continuous


@pytest.mark.parametrize("loss", ["gan", "ns"])
def test_unregularized_eigenvalues_are_plus_minus_f_prime_i(loss):
    lam = continuous(DiracGAN(loss))
    assert eigenvalue_mismatch(lam, dirac_unregularized()) < TOL
    assert eigenvalue_mismatch(lam, [0.5j, -0.5j]) < TOL  # f'(0) = 1/2


def test_wgan_field_eigenvalues_are_plus_minus_i():
    assert eigenvalue_mismatch(continuous(DiracGAN("wgan")), dirac_wgan()) < TOL
    assert eigenvalue_mismatch(continuous(DiracGAN("wgan", clip=0.5)), [1j, -1j]) < TOL


@pytest.mark.parametrize("reg", ["r1", "r2"])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_zero_centred_penalties(reg, gamma):
    game = DiracGAN("gan", reg, gamma=gamma)
    assert_spectrum(numeric_jacobian(game.field, Z0), dirac_r1(gamma))


@pytest.mark.parametrize("sigma", SIGMAS)
def test_instance_noise(sigma):
    lam = continuous(DiracGAN("gan", "instance-noise", sigma=sigma))
    fpp, fp = -0.25, 0.5
    root = np.sqrt(complex(fpp**2 * sigma**4 - fp**2))
    assert eigenvalue_mismatch(lam, [fpp * sigma**2 + root, fpp * sigma**2 - root]) < TOL
    assert eigenvalue_mismatch(lam, dirac_instance_noise(sigma)) < TOL


@pytest.mark.parametrize("gamma", GAMMAS)
def test_consensus_eigenvalues(gamma):
    game = DiracGAN("gan")
    lam = continuous(game, lambda z: consensus_field(game, z, gamma))
    assert eigenvalue_mismatch(lam, dirac_consensus(gamma)) < TOL
    assert eigenvalue_mismatch(lam, [-gamma / 4 + 0.5j, -gamma / 4 - 0.5j]) < TOL


@pytest.mark.parametrize(
    "game",
    [DiracGAN(loss, reg, gamma=0.7, sigma=0.8) for loss in ("gan", "ns", "wgan") for reg in ("none", "r1", "instance-noise")],
    ids=lambda g: g.label(),
)
def test_analytic_jacobian_matches_centred_differences_away_from_the_equilibrium(game):
    rng = np.random.default_rng(0)
    for _ in range(5):
        z = rng.uniform(-2, 2, 2)
        np.testing.assert_allclose(game.jacobian(z), numeric_jacobian(game.field, z), atol=1e-8)
    np.testing.assert_allclose(game.jacobian(Z0), dirac_jacobian(game.loss, game.reg, 0.7, 0.8), atol=1e-12)


# ------------------------------------------------------------------ Dirac-GAN, discrete


@pytest.mark.parametrize("h", STEPS)
def test_simultaneous_gd_on_the_gan_is_one_plus_minus_h_f_prime_i(h):
    lam = discrete(DiracGAN("gan"), Method("simgd", h=h))
    assert eigenvalue_mismatch(lam, dirac_simgd(h)) < TOL
    assert spectral_radius(lam) == pytest.approx(np.sqrt(1 + h**2 / 4), abs=TOL)


DISCRETE_METHODS = ["simgd", "altgd", "extragradient", "optimistic", "consensus", "flow"]


@pytest.mark.parametrize("h", STEPS)
@pytest.mark.parametrize("method", DISCRETE_METHODS)
@pytest.mark.parametrize(
    "game",
    [DiracGAN("gan"), DiracGAN("ns"), DiracGAN("wgan"), DiracGAN("gan", "r1", gamma=0.4), DiracGAN("gan", "r2", gamma=2.0),
     DiracGAN("gan", "instance-noise", sigma=1.3), DiracGAN("ns", "r1", gamma=1.0)],
    ids=lambda g: g.label(),
)
def test_update_operator_eigenvalues_match_closed_forms(game, method, h):
    m = Method(method, h=h, consensus=0.6)
    assert_spectrum(discrete_jacobian(game, m), closed_form_discrete(game, m))


@pytest.mark.parametrize("beta", [-0.6, -0.2, 0.3, 0.8])
@pytest.mark.parametrize("h", [0.05, 0.5])
def test_simultaneous_heavy_ball_matches_its_characteristic_polynomial(beta, h):
    game = DiracGAN("gan", "r1", gamma=0.5)
    m = Method("momentum", h=h, beta=beta, alternating=False)
    lam_c = continuous(game)
    assert_spectrum(discrete_jacobian(game, m), discrete_from_continuous("momentum", lam_c, h, beta))


def test_alternating_closed_form_is_the_product_of_the_two_player_updates():
    J = np.array([[0.1, -0.5], [0.5, -0.3]])
    h = 0.7
    P_psi = np.eye(2) + h * np.diag([0.0, 1.0]) @ J
    P_theta = np.eye(2) + h * np.diag([1.0, 0.0]) @ J
    assert eigenvalue_mismatch(np.linalg.eigvals(P_theta @ P_psi), alternating_2x2(J, h)) < 1e-12


# ------------------------------------------------------------------ bilinear games


@pytest.mark.parametrize("eta", ETAS)
def test_xy_spectral_radii(eta):
    xy = xy_game()
    checks = {
        "simgd": xy_rho_simultaneous(eta),
        "altgd": xy_rho_alternating(eta),
        "extragradient": xy_rho_extragradient(eta),
        "optimistic": xy_rho_optimistic(eta),
        "consensus": xy_rho_consensus(eta, 0.8),
    }
    for name, rho in checks.items():
        numeric = spectral_radius(discrete(xy, Method(name, h=eta, consensus=0.8)))
        assert numeric == pytest.approx(rho, abs=TOL), name
        assert xy_rho(name, eta, consensus=0.8) == pytest.approx(rho, abs=1e-15)


@pytest.mark.parametrize("eta", [e for e in ETAS if e < 2])
def test_the_textbook_formulas_literally(eta):
    """The textbook expressions, typed independently of the library's closed forms."""
    assert xy_rho_simultaneous(eta) == pytest.approx(np.sqrt(1 + eta**2), abs=1e-15)
    assert xy_rho_alternating(eta) == pytest.approx(1.0, abs=1e-12)
    assert xy_rho_extragradient(eta) == pytest.approx(np.sqrt(1 - eta**2 + eta**4), abs=1e-15)
    if eta <= 0.5:
        assert xy_rho_optimistic(eta) == pytest.approx(np.sqrt((1 + np.sqrt(1 - 4 * eta**2)) / 2), abs=1e-15)


def test_optimistic_formula_is_continuous_at_one_half():
    # the two branches meet at eta = 1/2 (a square-root branch point: the gap grows like sqrt(delta))
    for delta in (1e-12, 1e-8):
        assert abs(xy_rho_optimistic(0.5 + delta) - xy_rho_optimistic(0.5)) < 10 * np.sqrt(delta)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 2), (2, 4)])
@pytest.mark.parametrize("method", ["simgd", "altgd", "extragradient", "optimistic", "consensus", "flow"])
def test_general_bilinear_game(shape, method):
    A = np.random.default_rng(sum(shape)).standard_normal(shape)
    game = Bilinear(A)
    s = np.linalg.svd(A, compute_uv=False)
    lam_c = continuous(game)
    expected = np.concatenate([1j * s, -1j * s, np.zeros(game.dim - 2 * s.size)])
    assert eigenvalue_mismatch(lam_c, expected) < TOL
    m = Method(method, h=0.3, consensus=0.5)
    assert_spectrum(discrete_jacobian(game, m), closed_form_discrete(game, m))


# ------------------------------------------------------------------ helpers


def test_eigenvalue_mismatch_is_order_free_and_checks_sizes():
    assert eigenvalue_mismatch([1, 2j, -1], [-1, 1, 2j]) == 0.0
    assert eigenvalue_mismatch([1, 2], [1, 2.5]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="cannot match 2 eigenvalues with 3"):
        eigenvalue_mismatch([1, 2], [1, 2, 3])
