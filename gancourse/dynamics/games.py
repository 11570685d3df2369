"""Two-player games as vector fields: the Dirac-GAN and bilinear games.

A game has a state ``z = (theta, psi)``: the minimizing player's parameters
first (the generator, or ``x`` in ``min_x max_y x^T A y``), then the maximizing
player's (the discriminator, or ``y``). Its *gradient vector field* is

    v(theta, psi) = ( -dL_G/dtheta , dL_D/dpsi ),

the direction both players move in (Mescheder, Nowozin, Geiger 2017,
"The Numerics of GANs"). ``jacobian(z)`` is ``v'(z)`` written out by hand;
:func:`gancourse.dynamics.jacobian.numeric_jacobian` checks it.

Dirac-GAN (Mescheder, Geiger, Nowozin 2018, "Which Training Methods for GANs
do actually Converge?", Section 2): data ``p = delta_0``, generator
``delta_theta``, discriminator ``D_psi(x) = psi x``, and

    L(theta, psi) = E_q f(psi x) + E_p f(-psi x) = f(psi theta) + f(0),

with ``f(t) = -log(1 + exp(-t))`` for the GAN (``f'(0) = 1/2``,
``f''(0) = -1/4``) and ``f(t) = t`` for the WGAN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gancourse.errors import check_array, check_choice, check_positive
from gancourse.nn.losses import sigmoid, softplus
from gancourse.options import option

__all__ = [
    "Game",
    "DiracGAN",
    "Bilinear",
    "xy_game",
    "LOSSES",
    "REGULARIZERS",
    "f_gan",
    "f_prime",
    "f_second",
]

LOSSES = ("gan", "ns", "wgan")
REGULARIZERS = ("none", "r1", "r2", "wgan-gp", "instance-noise")


def f_gan(t: np.ndarray | float) -> np.ndarray:
    """``f(t) = -log(1 + e^{-t})`` (stable: ``-softplus(-t)``)."""
    t = np.asarray(t, dtype=float)
    return -softplus(-t)


def f_prime(t: np.ndarray | float, loss: str = "gan") -> np.ndarray:
    """``f'(t)``: ``sigmoid(-t)`` for the GAN losses, ``1`` for the WGAN."""
    t = np.asarray(t, dtype=float)
    return np.ones_like(t) if loss == "wgan" else sigmoid(-t)


def f_second(t: np.ndarray | float, loss: str = "gan") -> np.ndarray:
    """``f''(t)``: ``-sigmoid(t) sigmoid(-t)`` for the GAN losses, ``0`` for the WGAN."""
    t = np.asarray(t, dtype=float)
    return np.zeros_like(t) if loss == "wgan" else -sigmoid(t) * sigmoid(-t)


@dataclass(frozen=True)
class Game:
    """Base class: a smooth vector field on R^n with the min player's coordinates first.

    Subclasses define ``field(z)`` and ``jacobian(z)`` for one state ``z`` of shape (n,).
    """

    n_min: int = field(init=False, default=1)
    n_max: int = field(init=False, default=1)

    @property
    def dim(self) -> int:
        return self.n_min + self.n_max

    @property
    def equilibrium(self) -> np.ndarray:
        """The Nash equilibrium ``z*`` (the origin for every game here)."""
        return np.zeros(self.dim)

    @property
    def min_slice(self) -> slice:
        return slice(0, self.n_min)

    @property
    def max_slice(self) -> slice:
        return slice(self.n_min, self.dim)

    @property
    def smooth_at_equilibrium(self) -> bool:
        """False when ``v`` has a kink at ``z*`` (WGAN-GP), so eigenvalues there are one-sided."""
        return True

    def field(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def jacobian(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def project(self, z: np.ndarray) -> np.ndarray:
        """Map a state back onto the feasible set (the identity unless a player is constrained)."""
        return z

    def check_state(self, z) -> np.ndarray:
        """``z`` as a float array of shape (dim,), or a clear error."""
        return check_array("state", z, shape=(self.dim,), dtype=float, finite=True)

    def label(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class DiracGAN(Game):
    """The Dirac-GAN: ``theta`` (generator position) and ``psi`` (discriminator slope).

    loss : ``"gan"`` (saturating, ``min_theta L``), ``"ns"`` (non-saturating:
        the generator minimizes ``-f(-psi theta)``) or ``"wgan"`` (``f(t) = t``).
    reg : penalty on the discriminator, subtracted from its objective:
        ``"r1"``/``"r2"``: ``gamma/2 E|dD/dx|^2 = gamma/2 psi^2`` (on real / fake
        data; identical here, since ``dD/dx = psi`` everywhere);
        ``"wgan-gp"``: ``gamma/2 (|psi| - 1)^2`` (the one-sided-free GP of
        Gulrajani et al. with target norm 1, in Mescheder et al.'s scaling);
        ``"instance-noise"``: no penalty, but real and fake samples get
        ``N(0, sigma^2)`` noise; expectations use Gauss-Hermite quadrature.
    gamma, sigma : penalty weight and noise std.
    clip : WGAN weight clipping, ``|psi| <= clip`` after every step (None = off).
    """

    loss: str = option("gan", "Dirac-GAN loss: the saturating GAN, the non-saturating GAN or the WGAN",
                       choices=LOSSES)
    reg: str = option("none", "Dirac-GAN regularizer of the discriminator", choices=REGULARIZERS)
    gamma: float = option(1.0, "penalty weight of --reg r1/r2/wgan-gp; > 0")
    sigma: float = option(0.5, "instance-noise std of --reg instance-noise; > 0")
    clip: float | None = option(None, "WGAN weight clipping |psi| <= CLIP after every step")
    quadrature: int = option(40, "Gauss-Hermite nodes for the instance-noise expectations", cli=False)

    def __post_init__(self) -> None:
        check_choice("loss", self.loss, LOSSES)
        check_choice("reg", self.reg, REGULARIZERS)
        if self.reg in ("r1", "r2", "wgan-gp"):
            check_positive("gamma", self.gamma)
        if self.reg == "instance-noise":
            check_positive("sigma", self.sigma)
        if self.clip is not None:
            check_positive("clip", self.clip)
        nodes, weights = self._nodes()
        object.__setattr__(self, "_eps", nodes)
        object.__setattr__(self, "_w", weights)

    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Noise values ``e_k`` and weights ``w_k`` with ``E g(eps) = sum_k w_k g(e_k)``."""
        if self.reg != "instance-noise":
            return np.zeros(1), np.ones(1)
        x, w = np.polynomial.hermite_e.hermegauss(int(self.quadrature))  # weight exp(-x^2/2)
        return self.sigma * x, w / w.sum()

    @property
    def f_prime0(self) -> float:
        return float(f_prime(0.0, self.loss))

    @property
    def f_second0(self) -> float:
        return float(f_second(0.0, self.loss))

    @property
    def smooth_at_equilibrium(self) -> bool:
        return self.reg != "wgan-gp"

    def label(self) -> str:
        name = {"gan": "GAN", "ns": "NS-GAN", "wgan": "WGAN"}[self.loss]
        if self.clip is not None:
            name += f" (clip {self.clip:g})"
        if self.reg in ("r1", "r2", "wgan-gp"):
            name += f" + {self.reg.upper()} (gamma={self.gamma:g})"
        elif self.reg == "instance-noise":
            name += f" + instance noise (sigma={self.sigma:g})"
        return name

    def _penalty_grad(self, psi: float) -> tuple[float, float]:
        """``R'(psi)`` and ``R''(psi)`` of the discriminator penalty."""
        if self.reg in ("r1", "r2"):
            return self.gamma * psi, self.gamma
        if self.reg == "wgan-gp":
            return self.gamma * (abs(psi) - 1.0) * np.sign(psi), self.gamma
        return 0.0, 0.0

    def field(self, z: np.ndarray) -> np.ndarray:
        theta, psi = float(z[0]), float(z[1])
        e, w = self._eps, self._w
        x = theta + e  # fake samples, (K,)
        if self.loss == "ns":
            v_theta = -np.dot(w, psi * f_prime(-psi * x, "ns"))
        else:
            v_theta = -np.dot(w, psi * f_prime(psi * x, self.loss))
        v_psi = np.dot(w, x * f_prime(psi * x, self.loss)) - np.dot(w, e * f_prime(-psi * e, self.loss))
        v_psi -= self._penalty_grad(psi)[0]
        return np.array([v_theta, v_psi])

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """``v'(z)``; for WGAN-GP at ``psi = 0`` the one-sided value (the field has a kink there)."""
        theta, psi = float(z[0]), float(z[1])
        e, w, loss = self._eps, self._w, self.loss
        x = theta + e
        fp, fpp = f_prime(psi * x, loss), f_second(psi * x, loss)
        if loss == "ns":
            gp, gpp = f_prime(-psi * x, loss), f_second(-psi * x, loss)
            d_tt = np.dot(w, psi**2 * gpp)
            d_tp = -np.dot(w, gp - psi * x * gpp)
        else:
            d_tt = -np.dot(w, psi**2 * fpp)
            d_tp = -np.dot(w, fp + psi * x * fpp)
        d_pt = np.dot(w, fp + psi * x * fpp)
        d_pp = np.dot(w, x**2 * fpp) + np.dot(w, e**2 * f_second(-psi * e, loss)) - self._penalty_grad(psi)[1]
        return np.array([[d_tt, d_tp], [d_pt, d_pp]])

    def project(self, z: np.ndarray) -> np.ndarray:
        if self.clip is None:
            return z
        z = np.array(z, dtype=float)
        z[..., 1] = np.clip(z[..., 1], -self.clip, self.clip)
        return z


@dataclass(frozen=True)
class Bilinear(Game):
    """``min_x max_y x^T A y``: ``v(x, y) = (-A y, A^T x)``, ``v' = [[0, -A], [A^T, 0]]``.

    The eigenvalues of ``v'`` are ``+-i s_k`` for the singular values ``s_k`` of ``A``
    (and zeros when ``A`` is not square).
    """

    A: np.ndarray = field(default_factory=lambda: np.ones((1, 1)))

    def __post_init__(self) -> None:
        A = check_array("A", self.A, ndim=2, dtype=float, finite=True)
        if A.size == 0:
            raise ValueError(f"A must be a non-empty matrix, got shape {A.shape}")
        A = A.copy()
        A.setflags(write=False)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "n_min", A.shape[0])
        object.__setattr__(self, "n_max", A.shape[1])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bilinear) and np.array_equal(self.A, other.A)

    def __hash__(self) -> int:
        return hash(self.A.tobytes())

    def label(self) -> str:
        return "xy" if self.A.shape == (1, 1) and self.A[0, 0] == 1 else f"x^T A y, A {self.A.shape}"

    def field(self, z: np.ndarray) -> np.ndarray:
        x, y = z[self.min_slice], z[self.max_slice]
        return np.concatenate([-self.A @ y, self.A.T @ x])  # (m,) and (n,)

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        m, n = self.A.shape
        return np.block([[np.zeros((m, m)), -self.A], [self.A.T, np.zeros((n, n))]])

    @property
    def singular_values(self) -> np.ndarray:
        return np.linalg.svd(self.A, compute_uv=False)


def xy_game() -> Bilinear:
    """The scalar game ``min_x max_y x y`` (equilibrium at the origin)."""
    return Bilinear(np.ones((1, 1)))
