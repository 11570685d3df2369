"""Integrators: how the two players move along a game's vector field ``v``.

Every method is a map ``s <- F_h(s)`` on a state ``s``: the game's ``z`` for
one-step methods, ``(z_k, z_{k-1})`` for optimistic GD and momentum (which
remember the previous iterate). ``step`` applies ``F_h``; ``step_jacobian``
is its Jacobian written out with the chain rule from ``v'``.

- ``flow``: the continuous dynamics ``dz/dt = v(z)``, one RK4 step of length h
  per step (or :func:`flow_trajectory` with an adaptive solver).
- ``simgd``: simultaneous GD, ``z + h v(z)``.
- ``altgd``: alternating GD; the maximizing player (the discriminator) makes
  ``n_d`` steps, then the minimizing player ``n_g`` steps on the updated
  state, as in Algorithm 1 of Goodfellow et al. (2014).
- ``extragradient`` (Korpelevich 1976): ``z + h v(z + h v(z))``.
- ``optimistic`` GD, OGDA (Daskalakis et al. 2018): ``z + 2h v(z_k) - h v(z_{k-1})``.
- ``consensus`` optimization (Mescheder et al. 2017): simultaneous GD on
  ``w = v - gamma grad(|v|^2 / 2) = v - gamma v'^T v``.
- ``momentum``: heavy ball ``z + h v(z) + beta (z_k - z_{k-1})``, alternating by
  default; ``beta < 0`` is negative momentum (Gidel et al. 2019).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gancourse.dynamics.games import Game
from gancourse.errors import check_choice, check_positive, check_positive_int
from gancourse.options import option

__all__ = [
    "METHODS",
    "Method",
    "Trajectory",
    "consensus_field",
    "consensus_jacobian",
    "simulate",
    "flow_trajectory",
    "LONG_RUN_STEPS",
    "PROGRESS_EVERY",
    "wants_progress",
]

METHODS = ("flow", "simgd", "altgd", "extragradient", "optimistic", "consensus", "momentum")

#: runs longer than this many updates take seconds to minutes: front ends show progress by default
LONG_RUN_STEPS = 100_000
#: how many updates :func:`simulate` makes between two calls of its ``progress`` callback
PROGRESS_EVERY = 10_000


def wants_progress(total_steps: int, requested: bool | None = None) -> bool:
    """Whether to show progress for ``total_steps`` updates: ``requested`` if given, else only for
    runs longer than :data:`LONG_RUN_STEPS` (a progress bar on a sub-second run is noise)."""
    return bool(requested) if requested is not None else total_steps > LONG_RUN_STEPS


def consensus_field(game: Game, z: np.ndarray, gamma: float) -> np.ndarray:
    """``w(z) = v(z) - gamma v'(z)^T v(z)``, since ``grad(|v|^2/2) = v'^T v``."""
    v = game.field(z)
    return v - gamma * game.jacobian(z).T @ v  # (n, n)^T @ (n,) -> (n,)


def consensus_jacobian(game: Game, z: np.ndarray, gamma: float, eps: float = 1e-5) -> np.ndarray:
    """``w' = v' - gamma (v'^T v' + sum_k v_k Hess v_k)``.

    At the equilibrium ``v = 0`` and this is exactly ``v' - gamma v'^T v'``;
    elsewhere the Hessian term is taken by centred differences of ``v'``.
    """
    J, v = game.jacobian(z), game.field(z)
    out = J - gamma * J.T @ J
    if np.any(v != 0):
        second = np.empty_like(J)
        for j in range(z.size):
            dz = np.zeros_like(z, dtype=float)
            dz[j] = eps
            dJ = (game.jacobian(z + dz) - game.jacobian(z - dz)) / (2 * eps)  # d v'[k, i] / d z_j
            second[:, j] = v @ dJ  # sum_k v_k dJ[k, i]
        out -= gamma * second
    return out


@dataclass(frozen=True)
class Method:
    """An update rule with its step size ``h`` (``eta`` in the xy-game literature).

    n_d, n_g : discriminator and generator steps per round (``altgd``).
    consensus : consensus strength, the ``gamma`` of Mescheder et al. 2017 (``consensus``); named apart from
        the penalty weight ``DiracGAN.gamma``, since a consensus run may also have a penalty.
    beta : momentum coefficient (``momentum``; negative allowed).
    alternating : whether ``momentum`` updates the players in turn (default) or together.
    """

    name: str = option("simgd", "the update rule", choices=METHODS, flag="--method")
    h: float = option(0.1, "step size h; > 0", flag="--h", aliases=("--eta",), metavar="STEP")
    n_d: int = option(1, "discriminator steps per round of --method altgd")
    n_g: int = option(1, "generator steps per round of --method altgd")
    consensus: float = option(1.0, "consensus strength of --method consensus (gamma in Mescheder et al. 2017); > 0")
    beta: float = option(-0.5, "momentum coefficient of --method momentum, in (-1, 1), negative allowed")
    alternating: bool = option(True, "--method momentum updates the players in turn (else simultaneously)")

    def __post_init__(self) -> None:
        check_choice("method", self.name, METHODS)
        check_positive("step size h", self.h)
        for k in ("n_d", "n_g"):
            check_positive_int(k, getattr(self, k))
        if self.name == "consensus":
            check_positive("consensus strength", self.consensus)
        if self.name == "momentum" and not (-1 < self.beta < 1):
            raise ValueError(f"momentum beta must lie in (-1, 1), got {self.beta!r}")

    # ---------------------------------------------------------------- state
    @property
    def has_memory(self) -> bool:
        return self.name in ("optimistic", "momentum")

    def state_size(self, game: Game) -> int:
        return 2 * game.dim if self.has_memory else game.dim

    def init_state(self, game: Game, z0: np.ndarray) -> np.ndarray:
        """The method's state at the start: ``z0`` (with ``z_{-1} = z0`` for methods with memory)."""
        z0 = game.check_state(z0)
        return np.concatenate([z0, z0]) if self.has_memory else z0.copy()

    def label(self) -> str:
        extra = {
            "altgd": f", n_d={self.n_d}, n_g={self.n_g}" if (self.n_d, self.n_g) != (1, 1) else "",
            "consensus": f", strength={self.consensus:g}",
            "momentum": f", beta={self.beta:g}" + ("" if self.alternating else ", simultaneous"),
        }.get(self.name, "")
        return f"{self.name} (h={self.h:g}{extra})"

    # ----------------------------------------------------------------- step
    def step(self, game: Game, s: np.ndarray) -> np.ndarray:
        """One application of ``F_h``."""
        h, v, n = self.h, game.field, game.dim
        name = self.name
        if name == "simgd":
            return game.project(s + h * v(s))
        if name == "flow":
            k1 = v(s)
            k2 = v(s + 0.5 * h * k1)
            k3 = v(s + 0.5 * h * k2)
            k4 = v(s + h * k3)
            return game.project(s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
        if name == "extragradient":
            return game.project(s + h * v(game.project(s + h * v(s))))
        if name == "consensus":
            return game.project(s + h * consensus_field(game, s, self.consensus))
        if name == "altgd":
            z = s.copy()
            for sl, reps in ((game.max_slice, self.n_d), (game.min_slice, self.n_g)):
                for _ in range(reps):
                    z[sl] += h * v(z)[sl]
                    z = game.project(z)
            return z
        z, zp = s[:n], s[n:]
        if name == "optimistic":
            return np.concatenate([game.project(z + 2 * h * v(z) - h * v(zp)), z])
        # momentum
        new = z.copy()
        blocks = (game.max_slice, game.min_slice) if self.alternating else (slice(0, n),)
        for sl in blocks:
            src = new if self.alternating else z
            new[sl] = z[sl] + h * v(src)[sl] + self.beta * (z[sl] - zp[sl])
            new = game.project(new)
        return np.concatenate([new, z])

    def step_jacobian(self, game: Game, s: np.ndarray) -> np.ndarray:
        """``F_h'(s)`` by the chain rule (projection ignored: it is the identity inside the box)."""
        h, J, n = self.h, game.jacobian, game.dim
        I = np.eye(n)
        name = self.name
        if name == "simgd":
            return I + h * J(s)
        if name == "extragradient":
            mid = s + h * game.field(s)
            return I + h * J(mid) @ (I + h * J(s))
        if name == "consensus":
            return I + h * consensus_jacobian(game, s, self.consensus)
        if name == "flow":
            v = game.field
            k1 = v(s)
            k2 = v(s + 0.5 * h * k1)
            k3 = v(s + 0.5 * h * k2)
            d1 = J(s)
            d2 = J(s + 0.5 * h * k1) @ (I + 0.5 * h * d1)
            d3 = J(s + 0.5 * h * k2) @ (I + 0.5 * h * d2)
            d4 = J(s + h * k3) @ (I + h * d3)
            return I + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
        if name == "altgd":
            z, out = s.copy(), I
            for sl, reps in ((game.max_slice, self.n_d), (game.min_slice, self.n_g)):
                P = np.zeros((n, n))
                P[sl, sl] = np.eye(sl.stop - sl.start)
                for _ in range(reps):
                    out = (I + h * P @ J(z)) @ out
                    z[sl] += h * game.field(z)[sl]
            return out
        z, zp = s[:n], s[n:]
        Z = np.zeros((n, n))
        if name == "optimistic":
            return np.block([[I + 2 * h * J(z), -h * J(zp)], [I, Z]])
        # momentum: the new z as a function of (z, zp), built block by block
        beta = self.beta
        d_new = np.hstack([I, Z])  # d new / d (z, zp): starts as the copy of z
        new = z.copy()
        blocks = (game.max_slice, game.min_slice) if self.alternating else (slice(0, n),)
        for sl in blocks:
            src, d_src = (new, d_new.copy()) if self.alternating else (z, np.hstack([I, Z]))
            row = np.zeros((sl.stop - sl.start, 2 * n))
            row[:, :n] += (1 + beta) * I[sl]
            row[:, n:] -= beta * I[sl]
            row += h * J(src)[sl] @ d_src
            new = new.copy()
            new[sl] = z[sl] + h * game.field(src)[sl] + beta * (z[sl] - zp[sl])
            d_new = d_new.copy()
            d_new[sl] = row
        return np.vstack([d_new, np.hstack([I, Z])])


@dataclass(frozen=True)
class Trajectory:
    """States ``z`` (steps+1, dim) visited by a run and their distances to the equilibrium (steps+1,)."""

    z: np.ndarray
    distance: np.ndarray

    @property
    def final_distance(self) -> float:
        return float(self.distance[-1])


def simulate(
    game: Game,
    method: Method,
    start,
    steps: int,
    *,
    blowup: float = 1e8,
    progress: Callable[[int], object] | None = None,
) -> Trajectory:
    """Run ``steps`` updates of ``method`` from ``start``; stops early (padding with inf) past ``blowup``.

    ``progress(k)``, if given, is called with the number of updates done since its last call, every
    :data:`PROGRESS_EVERY` updates and at the end (the calls add up to ``steps``, also after a blow-up),
    e.g. ``tqdm.update``.
    """
    check_positive_int("steps", steps)
    s = method.init_state(game, start)
    n = game.dim
    zs = np.full((steps + 1, n), np.inf)
    zs[0] = s[:n]
    reported = 0
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is the blow-up detected below
        for k in range(1, steps + 1):
            s = method.step(game, s)
            if not np.all(np.isfinite(s)) or np.max(np.abs(s)) > blowup:
                break
            zs[k] = s[:n]
            if progress is not None and k % PROGRESS_EVERY == 0:
                progress(k - reported)
                reported = k
    if progress is not None and reported < steps:
        progress(steps - reported)
    dist = np.linalg.norm(zs - game.equilibrium, axis=1)
    return Trajectory(zs, dist)


def flow_trajectory(game: Game, start, t_end: float, n_points: int = 200, rtol: float = 1e-10) -> Trajectory:
    """The continuous flow ``dz/dt = v(z)`` from ``start`` to time ``t_end`` with an adaptive RK45 solver."""
    from scipy.integrate import solve_ivp

    z0 = game.check_state(start)
    check_positive("t_end", t_end)
    t = np.linspace(0.0, float(t_end), int(n_points))
    sol = solve_ivp(lambda _t, z: game.field(z), (0.0, float(t_end)), z0, t_eval=t, rtol=rtol, atol=rtol * 1e-2)
    if not sol.success:
        raise RuntimeError(f"the adaptive solver failed: {sol.message}")
    zs = sol.y.T  # (n_points, dim)
    return Trajectory(zs, np.linalg.norm(zs - game.equilibrium, axis=1))
