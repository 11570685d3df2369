"""The gradient vector field of a small MLP GAN and its Jacobian spectrum.

With the data batch ``x`` and the latent batch ``z`` held fixed, GAN training
is a deterministic game on the parameter vector ``w = (theta_G, psi_D)`` with
the field

    v(w) = ( -grad_theta L_G(theta, psi), -grad_psi L_D(theta, psi) ),

computed here from the engine's hand-written backward passes
(:mod:`gancourse.nn`). Its Jacobian ``v'(w)`` comes from centred differences of
those gradients, so the spectrum is exact up to O(eps^2). The R1 penalty
``gamma/2 E||grad_x D(x)||^2`` adds ``-gamma`` times a positive semi-definite
block to the discriminator's corner (Mescheder et al. 2018, Theorem 4.1),
pulling eigenvalues to the left.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gancourse.dynamics.jacobian import eigenvalues, numeric_jacobian
from gancourse.errors import TrainingDiverged, check_array, check_positive
from gancourse.nn import MLP, apply_penalty, get_loss

__all__ = ["MLPGame", "make_mlp_game", "find_stationary_point", "mlp_spectrum"]


@dataclass
class MLPGame:
    """A GAN on fixed batches: generator ``G``, discriminator ``D`` (float64 MLPs), reals ``x``, latents ``z``."""

    G: MLP
    D: MLP
    x: np.ndarray
    z: np.ndarray
    loss: str = "ns"
    gamma: float = 0.0
    _loss_fns: object = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._loss_fns = get_loss(self.loss)
        if self.G.dtype != np.float64 or self.D.dtype != np.float64:
            raise TypeError("MLPGame needs float64 networks for accurate Jacobians")
        self.x = check_array("x", self.x, shape=(None, self.D.n_in), dtype=np.float64, finite=True)
        self.z = check_array("z", self.z, shape=(None, self.G.n_in), dtype=np.float64, finite=True)
        check_positive("gamma", self.gamma, allow_zero=True)

    @property
    def n_g(self) -> int:
        return self.G.theta.size

    @property
    def dim(self) -> int:
        return self.G.theta.size + self.D.theta.size

    @property
    def point(self) -> np.ndarray:
        """The current parameters ``w = (theta_G, psi_D)``, shape (dim,)."""
        return np.concatenate([self.G.theta, self.D.theta])

    def set_point(self, w: np.ndarray) -> None:
        w = check_array("w", w, shape=(self.dim,), dtype=np.float64)
        self.G.theta[...] = w[: self.n_g]
        self.D.theta[...] = w[self.n_g :]

    def field(self, w: np.ndarray) -> np.ndarray:
        """``v(w)``; leaves the networks at ``w``."""
        self.set_point(w)
        G, D, n = self.G, self.D, self.x.shape[0]
        fake = G.forward(self.z)  # (M, d)
        # discriminator: d L_D / d psi (+ R1 on the reals)
        D.zero_grad()
        logits = D.forward(np.concatenate([self.x, fake]))  # (N + M, 1)
        _, d_real, d_fake = self._loss_fns.d(logits[:n], logits[n:])
        D.backward(np.concatenate([d_real, d_fake]))
        if self.gamma > 0:
            apply_penalty(D, self.x, "r1", self.gamma)
        v_psi = -D.dtheta.copy()
        # generator: d L_G / d theta through D (no D parameter gradients)
        G.zero_grad()
        f_logits = D.forward(fake)
        _, d_logits = self._loss_fns.g(f_logits, None)
        dx = D.backward(d_logits, param_grads=False)  # (M, d)
        G.backward(dx)
        return np.concatenate([-G.dtheta, v_psi])

    def jacobian(self, w: np.ndarray, eps: float = 1e-5) -> np.ndarray:
        """``v'(w)`` by centred differences of the hand-written gradients, shape (dim, dim)."""
        J = numeric_jacobian(self.field, w, eps)
        self.set_point(w)
        return J


def make_mlp_game(
    loss: str = "ns", gamma: float = 0.0, g_hidden: int = 4, d_hidden: int = 8, n: int = 64,
    perturb: float = 0.0, seed: int = 0,
) -> MLPGame:
    """A realizable 1D GAN with a known equilibrium, optionally perturbed away from it.

    The data are ``x = G*(z)`` for a random "teacher" generator ``G*`` of the
    same architecture as ``G`` (one hidden tanh layer of ``g_hidden`` units) on
    the same latent batch ``z`` (N, 1). At ``theta = theta*`` with the
    discriminator's output layer at zero, fakes equal reals, ``D = 0`` and
    ``v = 0``: an exact equilibrium. ``perturb > 0`` adds ``N(0, perturb^2)`` to
    every parameter, so training has to find its way back.
    """
    check_positive("perturb", perturb, allow_zero=True)
    rng = np.random.default_rng(seed)
    G = MLP([1, g_hidden, 1], activation="tanh", dtype=np.float64, init="xavier", seed=rng)
    D = MLP([1, d_hidden, 1], activation="tanh", dtype=np.float64, init="xavier", seed=rng)
    z = rng.standard_normal((n, 1))
    x = G.forward(z).copy()  # (N, 1): reals from the teacher
    out = D.layers[-1]
    for name in out.params:
        out.params[name][...] = 0.0  # D's output layer at zero: D(x) = 0
    game = MLPGame(G, D, x, z, loss=loss, gamma=gamma)
    if perturb > 0:
        game.set_point(game.point + perturb * rng.standard_normal(game.dim))
    return game


def find_stationary_point(game: MLPGame, h: float = 0.05, steps: int = 20000, tol: float = 1e-9) -> tuple[np.ndarray, float]:
    """Simultaneous GD ``w <- w + h v(w)`` until ``|v| < tol``; returns the point and the final ``|v|``.

    With R1 (``gamma > 0``) the iteration converges locally (all eigenvalues of
    ``v'`` in the left half-plane); without it, it usually does not, which is
    the point of the experiment.
    """
    w = game.point
    norm = np.inf
    for step in range(int(steps)):
        v = game.field(w)
        norm = float(np.linalg.norm(v))
        if not np.isfinite(norm):
            raise TrainingDiverged(step, {"|v|": norm}, what="gradient field")
        if norm < tol:
            break
        w = w + h * v
    game.set_point(w)
    return w, norm


def mlp_spectrum(game: MLPGame, w: np.ndarray | None = None, gamma: float | None = None) -> np.ndarray:
    """Eigenvalues of ``v'(w)`` (at the current point by default), with R1 weight ``gamma`` if given."""
    w = game.point if w is None else w
    old = game.gamma
    if gamma is not None:
        game.gamma = check_positive("gamma", gamma, allow_zero=True)
    try:
        return eigenvalues(game.jacobian(w))
    finally:
        game.gamma = old
