"""Figures for game dynamics: vector fields with trajectories, eigenvalues, root loci, distances.

Every function draws on a given matplotlib ``Axes`` (or makes one) and returns it,
so notebooks can compose figures. The interactive explorer draws in the browser instead:
:mod:`gancourse.viz.explorer_widget`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from gancourse.dynamics.games import Game
from gancourse.dynamics.integrators import Trajectory

__all__ = ["plot_vector_field", "plot_eigenvalues", "plot_root_locus", "plot_distance"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4.5))
    return ax


def plot_vector_field(
    game: Game,
    trajectories: Mapping[str, Trajectory] | Sequence[Trajectory] = (),
    *,
    field: Callable[[np.ndarray], np.ndarray] | None = None,
    lim: float = 2.0,
    n: int = 21,
    ax=None,
    labels: tuple[str, str] | None = None,
):
    """Arrows of ``v`` on ``[-lim, lim]^2`` (a two-dimensional game) with trajectories drawn over them."""
    if game.dim != 2:
        raise ValueError(f"plot_vector_field needs a game with two coordinates, got {game.dim}")
    ax = _axes(ax)
    v = game.field if field is None else field
    g = np.linspace(-lim, lim, int(n))
    X, Y = np.meshgrid(g, g)  # (n, n) each
    UV = np.array([v(np.array([x, y])) for x, y in zip(X.ravel(), Y.ravel())])  # (n*n, 2)
    U, V = UV[:, 0].reshape(X.shape), UV[:, 1].reshape(X.shape)
    speed = np.hypot(U, V) + 1e-12  # arrows show the direction; the field's strength is in the trajectories
    ax.quiver(X, Y, U / speed, V / speed, color="0.5", alpha=0.7, pivot="mid", scale=30, width=0.004)
    items = trajectories.items() if isinstance(trajectories, Mapping) else ((None, t) for t in trajectories)
    for label, traj in items:
        z = traj.z[np.all(np.isfinite(traj.z), axis=1)]
        ax.plot(z[:, 0], z[:, 1], "-", lw=1.5, label=label)
        ax.plot(z[:1, 0], z[:1, 1], "o", color=ax.lines[-1].get_color(), ms=5)
    ax.plot(*game.equilibrium, "k*", ms=12, label="equilibrium")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    xl, yl = labels or (("theta (generator)", "psi (discriminator)") if game.label() != "xy" else ("x", "y"))
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(game.label())
    if isinstance(trajectories, Mapping) and trajectories:
        ax.legend(fontsize=8, loc="upper right")
    return ax


def plot_eigenvalues(lam: np.ndarray | Mapping[str, np.ndarray], kind: str = "discrete", ax=None, title: str | None = None):
    """Eigenvalues in the complex plane, against the unit circle (``discrete``) or the imaginary axis (``continuous``)."""
    if kind not in ("discrete", "continuous"):
        raise ValueError(f"kind must be 'discrete' or 'continuous', got {kind!r}")
    ax = _axes(ax)
    sets = lam.items() if isinstance(lam, Mapping) else [(None, lam)]
    for label, values in sets:
        values = np.asarray(values, dtype=complex)
        ax.plot(values.real, values.imag, "o", ms=7, alpha=0.8, label=label)
    if kind == "discrete":
        t = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(t), np.sin(t), "k--", lw=1, label="unit circle")
        ax.set_aspect("equal")
    else:
        ax.axvline(0, color="k", ls="--", lw=1, label="imaginary axis")
        ax.axvspan(ax.get_xlim()[0], 0, color="tab:green", alpha=0.06)
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.set_title(title or ("eigenvalues of F_h'" if kind == "discrete" else "eigenvalues of v'"))
    ax.legend(fontsize=8)
    return ax


def plot_root_locus(
    eigs_of: Callable[[float], np.ndarray], params: Sequence[float], ax=None, param_name: str = "gamma",
    kind: str = "continuous",
):
    """How the eigenvalues move as a parameter varies: one dot per (parameter, eigenvalue), coloured by the parameter."""
    ax = _axes(ax)
    params = np.asarray(params, dtype=float)
    lam = np.array([np.asarray(eigs_of(p), dtype=complex) for p in params])  # (P, k)
    for k in range(lam.shape[1]):
        sc = ax.scatter(lam[:, k].real, lam[:, k].imag, c=params, cmap="viridis", s=12)
    ax.figure.colorbar(sc, ax=ax, label=param_name)
    if kind == "continuous":
        ax.axvline(0, color="k", ls="--", lw=1)
    else:
        t = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(t), np.sin(t), "k--", lw=1)
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.set_title(f"root locus as {param_name} varies")
    return ax


def plot_distance(trajectories: Mapping[str, Trajectory], ax=None):
    """Distance to the equilibrium against steps, on a log scale."""
    ax = _axes(ax)
    for label, traj in trajectories.items():
        d = np.where(np.isfinite(traj.distance), traj.distance, np.nan)
        ax.semilogy(np.arange(d.size), np.maximum(d, 1e-300), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("distance to the equilibrium")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return ax
