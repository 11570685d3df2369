"""One game, one method: eigenvalues, spectral radius, verdict and a simulated run; the convergence table.

:func:`analyze` puts the numeric values (finite-difference Jacobians of ``v``
and of ``F_h``) beside the closed forms of :mod:`gancourse.dynamics.closed_forms`
where they exist, and confirms the eigenvalue verdict by simulation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gancourse.dynamics import closed_forms as cf
from gancourse.dynamics.games import Bilinear, DiracGAN, Game, xy_game
from gancourse.dynamics.integrators import METHODS, Method, consensus_field, simulate
from gancourse.dynamics.jacobian import (
    continuous_verdict,
    discrete_verdict,
    eigenvalues,
    numeric_jacobian,
    spectral_radius,
    trajectory_verdict,
)

__all__ = [
    "Analysis",
    "analyze",
    "closed_form_continuous",
    "closed_form_discrete",
    "table_cases",
    "convergence_table",
    "format_table",
]

KINK_OFFSET = 1e-3  # where one-sided derivatives are taken for fields with a kink at z*


@dataclass(frozen=True)
class Analysis:
    """Everything :func:`analyze` measured (eigenvalue arrays are complex)."""

    game: str
    method: str
    h: float
    continuous_eigenvalues: np.ndarray
    continuous_eigenvalues_closed_form: np.ndarray | None
    discrete_eigenvalues: np.ndarray
    discrete_eigenvalues_closed_form: np.ndarray | None
    spectral_radius: float
    spectral_radius_closed_form: float | None
    verdict: str
    simulated_verdict: str
    start: tuple[float, ...]
    steps: int
    final_distance: float
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready: eigenvalues as ``[re, im]`` pairs, None where no closed form exists."""

        def pairs(lam):
            return None if lam is None else [[float(z.real) + 0.0, float(z.imag) + 0.0] for z in lam]  # no -0.0

        return {
            "game": self.game,
            "method": self.method,
            "h": self.h,
            "continuous_eigenvalues": pairs(self.continuous_eigenvalues),
            "continuous_eigenvalues_closed_form": pairs(self.continuous_eigenvalues_closed_form),
            "discrete_eigenvalues": pairs(self.discrete_eigenvalues),
            "discrete_eigenvalues_closed_form": pairs(self.discrete_eigenvalues_closed_form),
            "spectral_radius": self.spectral_radius,
            "spectral_radius_closed_form": self.spectral_radius_closed_form,
            "verdict": self.verdict,
            "simulated_verdict": self.simulated_verdict,
            "start": list(self.start),
            "steps": self.steps,
            "final_distance": self.final_distance,
            "note": self.note,
        }


def _followed_field(game: Game, method: Method):
    """The field the method integrates: ``v``, or the consensus field ``v - gamma v'^T v``."""
    if method.name == "consensus":
        return lambda z: consensus_field(game, z, method.gamma)
    return game.field


def closed_form_continuous(game: Game, method: Method) -> np.ndarray | None:
    """Closed-form eigenvalues of the followed field's Jacobian at ``z*``, or None."""
    g = method.gamma if method.name == "consensus" else 0.0
    if isinstance(game, DiracGAN):
        return cf.dirac_continuous_eigenvalues(game.loss, game.reg, game.gamma, game.sigma, consensus=g)
    if isinstance(game, Bilinear):
        s = game.singular_values
        zeros = np.zeros(game.dim - 2 * s.size)
        return np.concatenate([-g * s**2 + 1j * s, -g * s**2 - 1j * s, zeros])
    return None


def closed_form_discrete(game: Game, method: Method) -> np.ndarray | None:
    """Closed-form eigenvalues of ``F_h'`` at the equilibrium, or None where none is given."""
    lam = closed_form_continuous(game, method)
    if lam is None:
        return None
    name = method.name
    if name == "momentum" and method.alternating:
        return None
    if name in ("simgd", "consensus", "flow", "extragradient", "optimistic", "momentum"):
        return cf.discrete_from_continuous(name, lam, method.h, beta=method.beta)
    if (method.n_d, method.n_g) != (1, 1):
        return None
    if isinstance(game, DiracGAN):
        return cf.alternating_2x2(cf.dirac_jacobian(game.loss, game.reg, game.gamma, game.sigma), method.h)
    s = game.singular_values
    blocks = [cf.alternating_2x2(np.array([[0.0, -si], [si, 0.0]]), method.h) for si in s]
    return np.concatenate(blocks + [np.ones(game.dim - 2 * s.size)])


def analyze(game: Game, method: Method, start=None, steps: int = 1000) -> Analysis:
    """Linearize ``method`` on ``game`` at the equilibrium and simulate ``steps`` updates from ``start``.

    The verdict comes from the eigenvalues (the continuous ones for ``flow``,
    the spectral radius of ``F_h'`` otherwise). Where the field has a kink at
    ``z*`` (WGAN-GP) the eigenvalues are one-sided and the verdict is the
    simulated one.
    """
    start = np.ones(game.dim) if start is None else game.check_state(start)
    z_star = game.equilibrium
    at = z_star.copy()
    note = ""
    if not game.smooth_at_equilibrium:
        at[game.max_slice] += KINK_OFFSET
        note = (
            f"the field has a kink at the equilibrium (|psi| in the penalty); eigenvalues are one-sided, "
            f"taken at psi = {KINK_OFFSET:g}, and the verdict comes from the simulation"
        )
    lam_c = eigenvalues(numeric_jacobian(_followed_field(game, method), at))
    s_at = method.init_state(game, at)
    lam_d = eigenvalues(numeric_jacobian(lambda s: method.step(game, s), s_at))
    rho = spectral_radius(lam_d)
    traj = simulate(game, method, start, steps)
    sim = trajectory_verdict(traj.distance)
    if not game.smooth_at_equilibrium:
        verdict = "converges" if sim == "converges" else "does not converge"
    else:
        verdict = continuous_verdict(lam_c) if method.name == "flow" else discrete_verdict(lam_d)
    lam_c_cf = closed_form_continuous(game, method)
    lam_d_cf = closed_form_discrete(game, method)
    return Analysis(
        game=game.label(),
        method=method.label(),
        h=method.h,
        continuous_eigenvalues=lam_c,
        continuous_eigenvalues_closed_form=None if lam_c_cf is None else eigenvalues(np.diag(lam_c_cf)),
        discrete_eigenvalues=lam_d,
        discrete_eigenvalues_closed_form=None if lam_d_cf is None else eigenvalues(np.diag(lam_d_cf)),
        spectral_radius=rho,
        spectral_radius_closed_form=None if lam_d_cf is None else spectral_radius(lam_d_cf),
        verdict=verdict,
        simulated_verdict=sim,
        start=tuple(float(v) for v in start),
        steps=int(steps),
        final_distance=traj.final_distance,
        note=note,
    )


def table_cases(h: float = 0.1, gamma: float = 1.0, sigma: float = 1.0, clip: float = 1.0) -> list[tuple[Game, str]]:
    """The games of the convergence table: every Dirac-GAN variant and the xy game."""
    games: list[Game] = [
        DiracGAN("gan"),
        DiracGAN("ns"),
        DiracGAN("wgan"),
        DiracGAN("wgan", clip=clip),
        DiracGAN("wgan", "wgan-gp", gamma=gamma),
        DiracGAN("gan", "r1", gamma=gamma),
        DiracGAN("gan", "r2", gamma=gamma),
        DiracGAN("gan", "instance-noise", sigma=sigma),
        xy_game(),
    ]
    return [(g, m) for g in games for m in METHODS]


def convergence_table(
    h: float = 0.1, steps: int = 3000, gamma: float = 1.0, sigma: float = 1.0, beta: float = -0.5, start=None
) -> list[Analysis]:
    """:func:`analyze` for every game of :func:`table_cases` and every method."""
    rows = []
    for game, name in table_cases(gamma=gamma, sigma=sigma):
        method = Method(name, h=h, gamma=gamma, beta=beta)
        rows.append(analyze(game, method, start=start, steps=steps))
    return rows


def _fmt_eigs(lam: np.ndarray | None, limit: int = 2) -> str:
    if lam is None:
        return "-"
    lam = np.asarray(lam)[np.argsort(-np.abs(np.asarray(lam)))][:limit]  # the largest in modulus
    return ", ".join(f"{z.real + 0.0:+.4f}{z.imag + 0.0:+.4f}i" for z in lam)


def format_table(rows: list[Analysis]) -> str:
    """A plain-text table: numeric and closed-form values side by side."""
    head = ("game", "method", "v' eigenvalues (numeric)", "closed form", "rho(F_h')", "closed form", "verdict", "simulated", "final dist")
    body = []
    for r in rows:
        body.append((
            r.game,
            r.method,
            _fmt_eigs(r.continuous_eigenvalues),
            _fmt_eigs(r.continuous_eigenvalues_closed_form),
            f"{r.spectral_radius:.6f}",
            "-" if r.spectral_radius_closed_form is None else f"{r.spectral_radius_closed_form:.6f}",
            r.verdict,
            r.simulated_verdict,
            f"{r.final_distance:.3g}",
        ))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
