"""Closed-form eigenvalues and spectral radii, kept apart from the numerics that check them.

Dirac-GAN (Mescheder, Geiger, Nowozin 2018): at the equilibrium every variant
has ``v'(0, 0) = [[0, -b], [b, c]]`` with ``b = f'(0)`` (``1`` for the WGAN) and
``c`` the discriminator's curvature: ``-gamma`` for R1/R2, ``2 f''(0) sigma^2``
for instance noise, ``0`` otherwise. Its eigenvalues are
``c/2 +- sqrt(c^2/4 - b^2)``.

Bilinear games ``x^T A y`` (the xy game is ``A = 1``): ``v'`` has eigenvalues
``+- i s`` for each singular value ``s`` of ``A``, and each method's update
acts on each ``s`` separately (Gidel et al. 2019; Mokhtari et al. 2020).
"""
from __future__ import annotations

import numpy as np

from gancourse.errors import check_choice, check_positive

__all__ = [
    "pair_2x2",
    "dirac_unregularized",
    "dirac_r1",
    "dirac_instance_noise",
    "dirac_consensus",
    "dirac_wgan",
    "dirac_simgd",
    "dirac_ns_cycle_radius",
    "dirac_jacobian",
    "dirac_continuous_eigenvalues",
    "discrete_from_continuous",
    "alternating_2x2",
    "xy_rho_simultaneous",
    "xy_rho_alternating",
    "xy_rho_extragradient",
    "xy_rho_optimistic",
    "xy_rho_consensus",
    "xy_rho",
    "F_PRIME0",
    "F_SECOND0",
]

F_PRIME0 = 0.5  # f'(0) for f(t) = -log(1 + e^-t)
F_SECOND0 = -0.25  # f''(0)


def pair_2x2(trace: complex, det: complex) -> np.ndarray:
    """Eigenvalues ``T/2 +- sqrt(T^2/4 - D)`` of a 2x2 matrix with trace ``T`` and determinant ``D``."""
    root = np.sqrt(complex(trace) ** 2 / 4 - complex(det))
    return np.array([trace / 2 - root, trace / 2 + root], dtype=complex)


def dirac_unregularized(fp0: float = F_PRIME0) -> np.ndarray:
    """``+- f'(0) i``: purely imaginary, so the GAN's flow circles the equilibrium."""
    return np.array([-1j * fp0, 1j * fp0])


def dirac_r1(gamma: float, fp0: float = F_PRIME0) -> np.ndarray:
    """R1 or R2: ``-gamma/2 +- sqrt(gamma^2/4 - f'(0)^2)``; real for ``gamma >= 2 f'(0)``."""
    return pair_2x2(-gamma, fp0**2)


def dirac_instance_noise(sigma: float, fp0: float = F_PRIME0, fpp0: float = F_SECOND0) -> np.ndarray:
    """``f''(0) sigma^2 +- sqrt(f''(0)^2 sigma^4 - f'(0)^2)``."""
    return pair_2x2(2 * fpp0 * sigma**2, fp0**2)


def dirac_consensus(consensus: float, fp0: float = F_PRIME0) -> np.ndarray:
    """Consensus of strength ``c`` on the unregularized field: ``-c f'(0)^2 +- f'(0) i``."""
    return np.array([-consensus * fp0**2 - 1j * fp0, -consensus * fp0**2 + 1j * fp0])


def dirac_wgan() -> np.ndarray:
    """WGAN (``f(t) = t``, so ``f'(0) = 1``): ``+- i``."""
    return dirac_unregularized(1.0)


def dirac_simgd(h: float, fp0: float = F_PRIME0) -> np.ndarray:
    """Simultaneous GD on the unregularized Dirac-GAN: ``1 +- h f'(0) i``, modulus ``sqrt(1 + h^2 f'(0)^2) > 1``."""
    return 1 + h * dirac_unregularized(fp0)


def dirac_ns_cycle_radius(h: float, fp0: float = F_PRIME0, fpp0: float = F_SECOND0) -> float:
    """Radius ``sqrt(2 h f'(0)^2 / |f''(0)|)`` (``sqrt(2h)`` for the GAN's ``f``) of the cycle on which
    simultaneous GD on the unregularized non-saturating Dirac-GAN settles.

    One step ``z + h v`` changes ``r^2 = |z|^2`` by ``2h z.v + h^2 |v|^2``. Near the equilibrium
    ``|v|^2 = f'(0)^2 r^2`` (the rotation's outward push, the ``rho = sqrt(1 + h^2 f'(0)^2)`` of
    :func:`dirac_simgd`), and the NS field has ``z.v = theta psi (f'(theta psi) - f'(-theta psi))
    = 2 f''(0) (theta psi)^2 + O(r^6)``, whose average over one revolution is ``f''(0) r^4 / 4`` (the
    loss's inward pull, ``-r^4/8`` per unit time for the GAN). The two cancel where
    ``h^2 f'(0)^2 r^2 = h |f''(0)| r^4 / 2``. The cycle attracts: ``r^2`` relaxes to it like
    ``exp(-h^2 f'(0)^2 k)`` over ``k`` steps. Valid for small ``h`` (small radius).
    """
    check_positive("h", h)
    if not fpp0 < 0:
        raise ValueError(f"the non-saturating pull needs f''(0) < 0, got {fpp0!r}")
    return float(np.sqrt(2 * h * fp0**2 / abs(fpp0)))


def dirac_jacobian(loss: str = "gan", reg: str = "none", gamma: float = 1.0, sigma: float = 0.5) -> np.ndarray:
    """``v'(0, 0) = [[0, -b], [b, c]]`` for a Dirac-GAN variant (WGAN-GP: the one-sided value)."""
    check_choice("loss", loss, ("gan", "ns", "wgan"))
    check_choice("reg", reg, ("none", "r1", "r2", "wgan-gp", "instance-noise"))
    b = 1.0 if loss == "wgan" else F_PRIME0
    fpp = 0.0 if loss == "wgan" else F_SECOND0
    c = {"r1": -gamma, "r2": -gamma, "wgan-gp": -gamma, "instance-noise": 2 * fpp * sigma**2}.get(reg, 0.0)
    return np.array([[0.0, -b], [b, c]])


def dirac_continuous_eigenvalues(
    loss: str = "gan", reg: str = "none", gamma: float = 1.0, sigma: float = 0.5, consensus: float = 0.0
) -> np.ndarray:
    """Eigenvalues of ``v'`` (or of the consensus field's ``v' - g v'^T v'`` when ``consensus = g > 0``)."""
    J = dirac_jacobian(loss, reg, gamma, sigma)
    if consensus:
        J = J - consensus * J.T @ J
    return pair_2x2(J[0, 0] + J[1, 1], J[0, 0] * J[1, 1] - J[0, 1] * J[1, 0])


def discrete_from_continuous(
    method: str, lam: np.ndarray, h: float, beta: float = 0.0
) -> np.ndarray:
    """Eigenvalues of ``F_h'`` from those of ``v'`` when the method is a polynomial in ``v'``.

    - ``simgd`` / ``consensus`` (on its own field): ``1 + h lam``;
    - ``flow`` (one RK4 step): ``1 + h lam + (h lam)^2/2 + (h lam)^3/6 + (h lam)^4/24``;
    - ``extragradient``: ``1 + h lam + (h lam)^2``;
    - ``optimistic``: the roots of ``mu^2 - (1 + 2 h lam) mu + h lam``;
    - simultaneous ``momentum``: the roots of ``mu^2 - (1 + beta + h lam) mu + beta``.
    """
    check_choice("method", method, ("simgd", "consensus", "flow", "extragradient", "optimistic", "momentum"))
    check_positive("h", h)
    x = h * np.asarray(lam, dtype=complex)
    if method in ("simgd", "consensus"):
        return 1 + x
    if method == "flow":
        return 1 + x + x**2 / 2 + x**3 / 6 + x**4 / 24
    if method == "extragradient":
        return 1 + x + x**2
    if method == "optimistic":
        return np.concatenate([pair_2x2(1 + 2 * xi, xi) for xi in x])
    return np.concatenate([pair_2x2(1 + beta + xi, beta) for xi in x])


def alternating_2x2(J: np.ndarray, h: float) -> np.ndarray:
    """Alternating GD (max player first) on a scalar game with ``v' = [[a, -b], [b, c]]``.

    ``F_h' = [[1 + h a - h^2 b^2, -h b (1 + h c)], [h b, 1 + h c]]``: trace
    ``2 + h(a + c) - h^2 b^2``, determinant ``(1 + h a)(1 + h c)``.
    """
    J = np.asarray(J, dtype=float)
    if J.shape != (2, 2):
        raise ValueError(f"alternating_2x2 needs a 2x2 Jacobian of a scalar game, got shape {J.shape}")
    a, b, c = J[0, 0], J[1, 0], J[1, 1]
    if not np.isclose(J[0, 1], -b):
        raise ValueError("alternating_2x2 expects the zero-sum structure v' = [[a, -b], [b, c]]")
    return pair_2x2(2 + h * (a + c) - h**2 * b**2, (1 + h * a) * (1 + h * c))


# --------------------------------------------------------------- bilinear


def xy_rho_simultaneous(eta: float, s: float = 1.0) -> float:
    """``sqrt(1 + eta^2 s^2)``: above 1 for every ``eta > 0``."""
    return float(np.sqrt(1 + (eta * s) ** 2))


def xy_rho_alternating(eta: float, s: float = 1.0) -> float:
    """``1`` for ``eta s < 2`` (``det F_h' = 1``, complex pair on the unit circle), larger beyond."""
    t = 2 - (eta * s) ** 2  # trace; the determinant is 1
    return float(np.max(np.abs(pair_2x2(t, 1.0))))


def xy_rho_extragradient(eta: float, s: float = 1.0) -> float:
    """``sqrt(1 - eta^2 s^2 + eta^4 s^4)``: below 1 for ``0 < eta s < 1``."""
    e = eta * s
    return float(np.sqrt(1 - e**2 + e**4))


def xy_rho_optimistic(eta: float, s: float = 1.0) -> float:
    """``sqrt((1 + sqrt(1 - 4 eta^2 s^2)) / 2)`` for ``eta s <= 1/2``; the root formula beyond."""
    e = eta * s
    if e <= 0.5:
        return float(np.sqrt((1 + np.sqrt(1 - 4 * e**2)) / 2))
    return float(np.max(np.abs(pair_2x2(1 + 2j * e, 1j * e))))


def xy_rho_consensus(eta: float, consensus: float, s: float = 1.0) -> float:
    """Simultaneous GD on ``v - c v'^T v = (v' - c s^2) z`` (``c`` the consensus strength):
    ``sqrt((1 - eta c s^2)^2 + eta^2 s^2)``."""
    return float(np.sqrt((1 - eta * consensus * s**2) ** 2 + (eta * s) ** 2))


def xy_rho(method: str, eta: float, consensus: float = 1.0, singular_values=(1.0,)) -> float | None:
    """Spectral radius of ``F_eta'`` for a bilinear game, or None where no closed form is given here."""
    fn = {
        "simgd": xy_rho_simultaneous,
        "altgd": xy_rho_alternating,
        "extragradient": xy_rho_extragradient,
        "optimistic": xy_rho_optimistic,
    }.get(method)
    if method == "consensus":
        return max(xy_rho_consensus(eta, consensus, s) for s in singular_values)
    if fn is None:
        return None
    return max(fn(eta, s) for s in singular_values)
