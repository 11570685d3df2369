"""The game-dynamics explorer's maths: everything one frame shows, for one choice of game, method and start.

:func:`explore` turns :class:`ExplorerSettings` into a :class:`Frame`: the field the method follows on a grid
(``v``, or the consensus field ``w = v - c v'^T v``), the simulated trajectory and its distance to the
equilibrium, the eigenvalues of ``v'`` (of ``w'``) and of the update's Jacobian ``F_h'`` at the equilibrium, the
spectral radius ``rho = max_k |mu_k|``, the linearized verdict with its reason, the simulated verdict, and one
line on why the two disagree when they do (:func:`gancourse.dynamics.analysis.verdict_note`).
:func:`applicable_controls` names the settings a choice reads; a front end hides the others.

Games: ``dirac`` (the Dirac-GAN with any loss and regularizer), ``xy`` (``min_x max_y xy``) and ``bilinear``
(``min_x max_y x^T A y`` for a 2x2 ``A``). The bilinear game lives in R^4. With the SVD ``A = U S V^T`` it splits
into two xy games of scales ``s_1 >= s_2``, one in each *plane* of coordinates ``(p_k, q_k) = (u_k . x, v_k . y)``:
``v' = [[0, -A], [A^T, 0]]`` and ``v'^T v' = diag(A A^T, A^T A)`` are block-diagonal in those coordinates, so
every update rule here moves the two planes independently. The explorer draws both planes on one canvas.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from gancourse.dynamics.analysis import Analysis, analyze
from gancourse.dynamics.games import LOSSES, REGULARIZERS, Bilinear, DiracGAN, Game, xy_game
from gancourse.dynamics.integrators import METHODS, Method, consensus_field
from gancourse.dynamics.jacobian import max_real_part
from gancourse.errors import check_array, check_positive, check_positive_int
from gancourse.options import check_choices, option

__all__ = [
    "GAMES",
    "CONTROLS",
    "ExplorerSettings",
    "Plane",
    "Frame",
    "applicable_controls",
    "make_game",
    "make_method",
    "plane_embeddings",
    "start_state",
    "field_on_grid",
    "linear_reason",
    "explore",
]

GAMES = ("dirac", "xy", "bilinear")

#: the settings a front end offers as controls, in the order it shows them
CONTROLS = ("game", "loss", "reg", "gamma", "sigma", "clipping", "clip", "A", "method", "h", "n_d", "n_g",
            "consensus", "beta", "alternating", "steps", "lim", "start")

#: which method reads which of its parameters (h is read by every method)
_METHOD_PARAMS = {"altgd": ("n_d", "n_g"), "consensus": ("consensus",), "momentum": ("beta", "alternating")}
#: which regularizer reads which Dirac-GAN parameter
_REG_PARAMS = {"r1": ("gamma",), "r2": ("gamma",), "wgan-gp": ("gamma",), "instance-noise": ("sigma",)}


@dataclass(frozen=True)
class ExplorerSettings:
    """One choice in the explorer. Each field is read only where :func:`applicable_controls` lists it."""

    game: str = option("dirac", "the game: the Dirac-GAN, min_x max_y xy, or min_x max_y x^T A y (2x2 A)",
                       choices=GAMES)
    loss: str = option("gan", "Dirac-GAN loss: saturating GAN, non-saturating GAN or WGAN", choices=LOSSES)
    reg: str = option("none", "Dirac-GAN regularizer of the discriminator", choices=REGULARIZERS)
    gamma: float = option(1.0, "penalty weight of r1 / r2 / wgan-gp; > 0")
    sigma: float = option(0.5, "instance-noise std; > 0")
    clipping: bool = option(False, "WGAN-style weight clipping |psi| <= clip after every step")
    clip: float = option(1.0, "the clipping bound; > 0")
    A: tuple[float, float, float, float] = option((1.0, 0.0, 0.0, 2.0), "the 2x2 matrix of x^T A y, row-major")
    method: str = option("simgd", "the update rule", choices=METHODS)
    h: float = option(0.1, "step size; > 0")
    n_d: int = option(1, "discriminator steps per round of altgd")
    n_g: int = option(1, "generator steps per round of altgd")
    consensus: float = option(1.0, "consensus strength; > 0")
    beta: float = option(-0.5, "momentum coefficient, in (-1, 1)")
    alternating: bool = option(True, "momentum updates the players in turn (else together)")
    start: tuple[float, float] = option((1.0, 1.0), "start of the run, in the drawn plane's coordinates")
    steps: int = option(300, "simulated updates")
    lim: float = option(2.0, "the drawn window is [-lim, lim]^2")
    grid: int = option(15, "arrows per side of the drawn field")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("gamma", "sigma", "clip", "h", "consensus", "lim"):
            check_positive(name, getattr(self, name))
        for name in ("n_d", "n_g", "steps"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("grid", self.grid, minimum=2)
        if not -1 < self.beta < 1:
            raise ValueError(f"beta must lie in (-1, 1) (a momentum coefficient), got {self.beta!r}")
        A = check_array("A", self.A, shape=(4,), dtype=float, finite=True)
        start = check_array("start", self.start, shape=(2,), dtype=float, finite=True)
        object.__setattr__(self, "A", tuple(float(a) for a in A))
        object.__setattr__(self, "start", tuple(float(s) for s in start))

    @classmethod
    def from_mapping(cls, values: dict) -> ExplorerSettings:
        """Settings from a mapping of field names (unknown names are refused by name)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown explorer settings {unknown}; valid ones are: {', '.join(sorted(names))}")
        return cls(**values)


def applicable_controls(s: ExplorerSettings) -> frozenset[str]:
    """The settings that the choice in ``s`` reads: its game's and its method's parameters, and the run's."""
    on = {"game", "method", "h", "steps", "lim", "start"}
    if s.game == "dirac":
        on |= {"loss", "reg", "clipping", *_REG_PARAMS.get(s.reg, ())}
        if s.clipping:
            on.add("clip")
    elif s.game == "bilinear":
        on.add("A")
    on |= set(_METHOD_PARAMS.get(s.method, ()))
    return frozenset(on)


def make_game(s: ExplorerSettings) -> Game:
    """The game of ``s``, built from the settings that apply to it only."""
    if s.game == "xy":
        return xy_game()
    if s.game == "bilinear":
        return Bilinear(np.array(s.A).reshape(2, 2))
    params = _REG_PARAMS.get(s.reg, ())
    return DiracGAN(s.loss, s.reg, gamma=s.gamma if "gamma" in params else 1.0,
                    sigma=s.sigma if "sigma" in params else 0.5, clip=s.clip if s.clipping else None)


def make_method(s: ExplorerSettings) -> Method:
    """The update rule of ``s``, with the parameters it reads (the others at their defaults)."""
    own = {k: getattr(s, k) for k in _METHOD_PARAMS.get(s.method, ())}
    return Method(s.method, h=s.h, **own)


def plane_embeddings(game: Game) -> tuple[np.ndarray, ...]:
    """Orthonormal maps ``E_k`` (dim, 2) from a drawn plane's coordinates ``(p, q)`` to the state ``z = E_k (p, q)``.

    A two-dimensional game is its own plane (``E = I``). For ``x^T A y`` with ``A = U S V^T`` plane ``k`` holds
    ``(u_k . x, v_k . y)``: ``E_k = [[u_k, 0], [0, v_k]]``, and ``(p, q) = E_k^T z``.
    """
    if game.dim == 2:
        return (np.eye(2),)
    if not isinstance(game, Bilinear) or game.A.shape != (2, 2):
        raise ValueError(f"the explorer draws two-dimensional games and x^T A y with a 2x2 A, got {game.label()}")
    U, _, Vt = np.linalg.svd(game.A)
    out = []
    for k in range(2):
        E = np.zeros((4, 2))
        E[:2, 0], E[2:, 1] = U[:, k], Vt[k]  # (2,) columns of U, rows of V^T
        out.append(E)
    return tuple(out)


def start_state(game: Game, start: tuple[float, float]) -> np.ndarray:
    """The state whose coordinates in every drawn plane are ``start``: ``z0 = sum_k E_k start``."""
    return sum(E @ np.asarray(start, dtype=float) for E in plane_embeddings(game))


def _followed_field(game: Game, method: Method):
    """``v``, or the consensus field ``w = v - c v'^T v`` that consensus optimization follows."""
    if method.name == "consensus":
        return lambda z: consensus_field(game, z, method.consensus)
    return game.field


@lru_cache(maxsize=64)
def _grid_fields(game: Game, consensus: float | None, lim: float, n: int) -> tuple[np.ndarray, ...]:
    """The followed field on the grid of each plane (read-only, cached by game, consensus strength and grid)."""
    method = Method("consensus", consensus=consensus) if consensus is not None else Method()
    w = _followed_field(game, method)
    axis = np.linspace(-lim, lim, n)
    out = []
    for E in plane_embeddings(game):
        F = np.empty((n, n, 2))
        for i, q in enumerate(axis):
            for j, p in enumerate(axis):
                F[i, j] = E.T @ w(E @ np.array([p, q]))  # (2, dim) @ (dim,) -> (2,)
        F.setflags(write=False)
        out.append(F)
    return tuple(out)


def field_on_grid(game: Game, method: Method, lim: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The followed field in each drawn plane at the grid points ``(p_j, q_i)`` of ``linspace(-lim, lim, n)^2``.

    Returns the axis (n,) and the fields (planes, n, n, 2) with ``F[k, i, j] = E_k^T w(E_k (p_j, q_i))``.
    Cached: the field does not depend on the step size, the start or the run's length.
    """
    consensus = method.consensus if method.name == "consensus" else None
    fields_ = _grid_fields(game, consensus, float(lim), int(n))
    return np.linspace(-lim, lim, n), np.stack(fields_)


def linear_reason(verdict: str, rho: float, continuous: np.ndarray, *, flow: bool, smooth: bool = True) -> str:
    """Why the eigenvalues give ``verdict``: ``rho = max |mu_k| <> 1`` for an update, ``max Re lambda <> 0``
    for the flow."""
    if not smooth:
        return ("the field has a kink at the equilibrium (|psi| in the penalty), so there is no linearization "
                "there: the verdict is the simulation's")
    if flow:
        m = max_real_part(continuous)
        return {
            "converges": f"max Re lambda = {m:+.4g} < 0: every eigenvalue of the followed field's Jacobian has a "
                         f"negative real part, so the flow converges locally",
            "diverges": f"max Re lambda = {m:+.4g} > 0: an eigenvalue has a positive real part, so the flow "
                        f"leaves the equilibrium",
            "cycles": "max Re lambda = 0: the eigenvalues lie on the imaginary axis, so the linear flow circles "
                      "and the linearization decides nothing",
        }[verdict]
    return {
        "converges": f"rho(F_h') = {rho:.6g} < 1: near the equilibrium every step shrinks the distance by "
                     f"about a factor rho, so the run converges locally",
        "diverges": f"rho(F_h') = {rho:.6g} > 1: near the equilibrium some direction grows by a factor rho per "
                    f"step, so the equilibrium repels",
        "cycles": "rho(F_h') = 1: the eigenvalues lie on the unit circle, so the linear iteration neither "
                  "shrinks nor grows and the linearization decides nothing",
    }[verdict]


@dataclass(frozen=True)
class Plane:
    """One drawn plane: its name, the followed field on the grid (n, n, 2) and the run in its coordinates."""

    label: str
    field: np.ndarray
    trajectory: np.ndarray  # (steps + 1, 2); inf from a blow-up on


@dataclass(frozen=True)
class Frame:
    """Everything the explorer draws for one :class:`ExplorerSettings` (eigenvalue arrays are complex)."""

    settings: ExplorerSettings
    controls: frozenset[str]
    game_label: str
    method_label: str
    axis_labels: tuple[str, str]
    field_name: str
    axis: np.ndarray  # (n,): grid coordinates on both axes
    planes: tuple[Plane, ...]
    distance: np.ndarray  # (steps + 1,): |z_k - z*|, inf from a blow-up on
    continuous_eigenvalues: np.ndarray  # of v' (w' for consensus) at z*
    discrete_eigenvalues: np.ndarray  # of F_h' at z*
    flow_image: np.ndarray  # exp(h lambda): where the exact flow takes each eigendirection in time h
    spectral_radius: float
    verdict: str
    reason: str
    simulated_verdict: str
    note: str

    @property
    def agree(self) -> bool:
        """Whether the linearized and the simulated verdicts are the same."""
        return self.verdict == self.simulated_verdict


def _game_label(s: ExplorerSettings, game: Game) -> str:
    if s.game != "bilinear":
        return game.label()
    sv = game.singular_values
    a = ", ".join(f"{v:g}" for v in s.A)
    return f"x^T A y, A = [{a}] (singular values {sv[0]:.3g}, {sv[1]:.3g})"


@lru_cache(maxsize=64)
def _analysis(game: Game, method: Method, start: tuple[float, float], steps: int) -> Analysis:
    """:func:`analyze` from the state whose plane coordinates are ``start`` (cached: a change of the window
    alone, or a return to an earlier choice, simulates nothing)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return analyze(game, method, start=start_state(game, start), steps=steps)


def explore(s: ExplorerSettings) -> Frame:
    """Linearize and simulate the choice ``s`` (:func:`gancourse.dynamics.analysis.analyze`) and lay out its frame."""
    game, method = make_game(s), make_method(s)
    if not np.any(np.asarray(s.start)):
        raise ValueError("the start is the equilibrium (0, 0), where nothing moves: start elsewhere")
    E = plane_embeddings(game)
    res = _analysis(game, method, s.start, s.steps)
    axis, F = field_on_grid(game, method, s.lim, s.grid)
    z = res.trajectory  # (steps + 1, dim)
    finite = np.all(np.isfinite(z), axis=1)
    planes = []
    for k, Ek in enumerate(E):
        traj = np.full((z.shape[0], 2), np.inf)
        traj[finite] = z[finite] @ Ek  # (T, dim) @ (dim, 2) -> (T, 2)
        if s.game == "bilinear":
            label = f"plane {k + 1}: s = {game.singular_values[k]:.3g}"
        else:
            label = "(theta, psi)" if s.game == "dirac" else "(x, y)"
        planes.append(Plane(label, F[k], traj))
    distance = np.full(z.shape[0], np.inf)
    distance[finite] = np.linalg.norm(z[finite] - game.equilibrium, axis=1)
    flow = method.name == "flow"
    lam = res.continuous_eigenvalues.copy()  # the analysis is cached: frames get their own arrays
    labels = {"dirac": ("theta (generator)", "psi (discriminator)"), "xy": ("x", "y"),
              "bilinear": ("u_k . x", "v_k . y")}[s.game]
    return Frame(
        settings=s,
        controls=applicable_controls(s),
        game_label=_game_label(s, game),
        method_label=method.label(),
        axis_labels=labels,
        field_name=f"w = v - {method.consensus:g} v'^T v" if method.name == "consensus" else "v",
        axis=axis,
        planes=tuple(planes),
        distance=distance,
        continuous_eigenvalues=lam,
        discrete_eigenvalues=res.discrete_eigenvalues.copy(),
        flow_image=np.exp(s.h * lam),
        spectral_radius=res.spectral_radius,
        verdict=res.verdict,
        reason=linear_reason(res.verdict, res.spectral_radius, lam, flow=flow,
                             smooth=game.smooth_at_equilibrium),
        simulated_verdict=res.simulated_verdict,
        note=res.note,
    )
