"""One game, one method: eigenvalues, spectral radius, verdict and a simulated run; the convergence table.

:func:`analyze` puts the numeric values (finite-difference Jacobians of ``v``
and of ``F_h``) beside the closed forms of :mod:`gancourse.dynamics.closed_forms`
where they exist, and confirms the eigenvalue verdict by simulation
(:func:`simulated_verdict`: converges, slow, cycles or diverges). Where the
two disagree, :func:`verdict_note` says why in one line (the linearization only
describes the neighbourhood of the equilibrium; a slow linear rate needs more
steps than the run had; an RK4 step damps a flow that only circles; ...).
"""
from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gancourse.dynamics import closed_forms as cf
from gancourse.dynamics.games import Bilinear, DiracGAN, Game, xy_game
from gancourse.dynamics.integrators import METHODS, Method, consensus_field, simulate
from gancourse.dynamics.jacobian import (
    GROW,
    SHRINK,
    VERDICTS,
    continuous_verdict,
    discrete_verdict,
    eigenvalues,
    numeric_jacobian,
    spectral_radius,
    trajectory_verdict,
)
from gancourse.errors import check_choice

__all__ = [
    "Analysis",
    "analyze",
    "closed_form_continuous",
    "closed_form_discrete",
    "table_cases",
    "convergence_table",
    "format_table",
    "TABLE_FORMATS",
    "format_number",
    "verdict_note",
    "simulated_verdict",
    "levelled_off",
    "SETTLED",
    "MIN_STEPS_LEVELLED",
]

KINK_OFFSET = 1e-3  # where one-sided derivatives are taken for fields with a kink at z*

#: a run "has levelled off" when its distance fell by less than this fraction between the middle of the run and its
#: end: a power law r ~ t^-a loses 1 - 1.9^-a of it (27% for the NS-GAN flow's a = 1/2), a linear rate more
SETTLED = 0.15
#: runs shorter than this are too short to say whether their distance levelled off
MIN_STEPS_LEVELLED = 20


def levelled_off(distances: np.ndarray, settled: float = SETTLED) -> bool:
    """Whether the distance to the equilibrium stopped shrinking in the second half of the run.

    Compares the mean distance over the last tenth of the run with the mean over the tenth centred on its middle
    (means, so that the wobble of the distance within one revolution averages out): levelled off when the end is
    above ``1 - settled`` times the middle. Creeping in like ``t^-a`` with ``a`` below about 1/4 also passes: a
    finite run cannot tell such a creep from a cycle. A run of fewer than ``MIN_STEPS_LEVELLED`` steps is too short
    to judge and never counts as levelled off.
    """
    d = np.asarray(distances, dtype=float)
    n = d.size - 1  # steps
    if n < MIN_STEPS_LEVELLED:
        return False
    w = max(1, n // 10)
    start = max(0, n // 2 - w // 2)
    middle, end = d[start:start + w].mean(), d[-w:].mean()
    return bool(np.isfinite(end) and end > (1 - settled) * middle)


def simulated_verdict(distances: np.ndarray, settled: float = SETTLED) -> str:
    """The verdict of a simulated run: :func:`~gancourse.dynamics.jacobian.trajectory_verdict` (converges,
    diverges, or neither), with its ``"slow"`` (halved but not converged) split in two.

    ``"slow"``: the run is still shrinking in its second half (the NS-GAN's flow, which creeps in like
    ``t^-1/2``; a linear rate close to 1). ``"cycles"``: the distance has levelled off (:func:`levelled_off`) at a
    nonzero value, i.e. the run settled on a limit cycle (simultaneous GD on the NS-GAN: radius ``sqrt(2h)``,
    :func:`gancourse.dynamics.closed_forms.dirac_ns_cycle_radius`).
    """
    verdict = trajectory_verdict(distances)
    if verdict == "slow" and levelled_off(distances, settled):
        return "cycles"
    return verdict


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
    trajectory: np.ndarray | None = None  # the simulated states z, (steps+1, dim); not part of to_dict()

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
    """The field the method integrates: ``v``, or the consensus field ``v - consensus v'^T v``."""
    if method.name == "consensus":
        return lambda z: consensus_field(game, z, method.consensus)
    return game.field


def closed_form_continuous(game: Game, method: Method) -> np.ndarray | None:
    """Closed-form eigenvalues of the followed field's Jacobian at ``z*``, or None."""
    g = method.consensus if method.name == "consensus" else 0.0
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


def analyze(
    game: Game, method: Method, start=None, steps: int = 1000, progress: Callable[[int], object] | None = None
) -> Analysis:
    """Linearize ``method`` on ``game`` at the equilibrium and simulate ``steps`` updates from ``start``.

    The verdict comes from the eigenvalues (the continuous ones for ``flow``,
    the spectral radius of ``F_h'`` otherwise). Where the field has a kink at
    ``z*`` (WGAN-GP) the eigenvalues are one-sided and the verdict is the
    simulated one. Where the verdict and the simulation disagree, ``note``
    explains why (:func:`verdict_note`). ``progress`` goes to :func:`simulate`.
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
    with np.errstate(over="ignore", invalid="ignore"):  # a huge h overflows: reported below in words
        jac_d = numeric_jacobian(lambda s: method.step(game, s), s_at)
    if not np.all(np.isfinite(jac_d)):
        raise ValueError(
            f"the update {method.label()} on {game.label()} overflows float64 next to the equilibrium (its "
            f"Jacobian holds NaN/inf): the step size h = {method.h:g} is too large to analyze; choose a smaller h"
        )
    lam_d = eigenvalues(jac_d)
    rho = spectral_radius(lam_d)
    traj = simulate(game, method, start, steps, progress=progress)
    sim = simulated_verdict(traj.distance)
    if not game.smooth_at_equilibrium:
        verdict = "converges" if sim == "converges" else "does not converge"
    else:
        verdict = continuous_verdict(lam_c) if method.name == "flow" else discrete_verdict(lam_d)
    if not note:
        note = verdict_note(verdict, sim, rho, steps, float(traj.distance[0]), traj.final_distance,
                            flow=method.name == "flow")
        if note and _ns_simgd(game, method):
            note += (
                f"; for the NS-GAN under simultaneous GD that cycle has radius about sqrt(2h) = "
                f"{cf.dirac_ns_cycle_radius(method.h):.3g}, where the loss's inward pull (r^2 shrinks by h r^4/8 "
                f"per step) cancels the outward push (r^2 grows by h^2 r^2/4)"
            )
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
        trajectory=traj.z,
    )


def _ns_simgd(game: Game, method: Method) -> bool:
    """Simultaneous GD on the plain non-saturating Dirac-GAN (the case with the closed-form limit cycle)."""
    return (isinstance(game, DiracGAN) and game.loss == "ns" and game.reg == "none" and game.clip is None
            and method.name == "simgd")


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
    h: float = 0.1,
    steps: int = 3000,
    gamma: float = 1.0,
    sigma: float = 1.0,
    beta: float = -0.5,
    start=None,
    progress: Callable[[int], object] | None = None,
    consensus: float = 1.0,
) -> list[Analysis]:
    """:func:`analyze` for every game of :func:`table_cases` and every method (``progress``: as in
    :func:`simulate`, over all rows: ``steps * len(table_cases())`` updates in all).

    ``gamma`` is the penalty weight of the regularized games, ``consensus`` the strength of consensus
    optimization, ``sigma`` the instance-noise std and ``beta`` the momentum coefficient.
    """
    rows = []
    for game, name in table_cases(gamma=gamma, sigma=sigma):
        method = Method(name, h=h, consensus=consensus, beta=beta)
        rows.append(analyze(game, method, start=start, steps=steps, progress=progress))
    return rows


# ------------------------------------------------------------------ when the verdict and the run disagree


_TOL = 1e-9  # as in continuous_verdict / discrete_verdict: |rho - 1| below this is "rho = 1"


def _factor(log_factor: float) -> str:
    """``exp(log_factor)`` for a sentence: ``3.48``, ``0.0012`` or ``1e+54`` (never hundreds of digits)."""
    if log_factor == -math.inf:
        return "0"
    exponent = log_factor / math.log(10)
    return f"{math.exp(log_factor):.3g}" if abs(exponent) < 6 else f"1e{exponent:+.0f}"


def verdict_note(
    verdict: str,
    simulated: str,
    rho: float,
    steps: int,
    start_distance: float,
    final_distance: float,
    *,
    flow: bool = False,
) -> str:
    """One line explaining why the eigenvalue ``verdict`` and the ``simulated`` one disagree; ``""`` if they agree.

    rho : spectral radius of ``F_h'`` at the equilibrium: the linearization moves the distance by at
        most a factor ``rho`` per update, so by ``rho**steps`` over the run.
    start_distance, final_distance : of the simulated run, to the equilibrium.
    flow : the verdict is the continuous one (eigenvalues of ``v'``), the run made of RK4 steps.

    The linearization describes the dynamics only near the equilibrium. Away from it the nonlinear
    field can keep an unstable orbit bounded (a limit cycle, or an outward drift too slow to see), or
    carry a locally convergent run away; a linear rate close to 1 may need more steps than the run
    had to reach the simulation's thresholds (``SHRINK``, ``GROW``); where the linearization is neutral
    (``rho = 1``, or purely imaginary eigenvalues for the flow) higher-order terms decide.
    """
    if verdict == simulated or verdict not in VERDICTS:
        return ""
    log_pred = steps * math.log(rho) if rho > 0 else -math.inf
    pred = _factor(log_pred)
    seen = f"{final_distance / start_distance:.3g}" if math.isfinite(final_distance) else "inf"
    r = f"{rho:.6g}"
    outcome = {
        "converges": "make it converge",
        "slow": "pull it in, slowly",
        "cycles": "keep it circling",
        "diverges": "make it diverge",
    }[simulated]
    if flow and verdict == "cycles":
        if simulated in ("converges", "slow") and rho < 1 - _TOL and log_pred < math.log(0.5):
            return (
                f"the exact flow only circles (the eigenvalues of v' lie on the imaginary axis), but RK4 steps "
                f"of length h damp it: rho(F_h') = {r} < 1 shrinks the distance by a factor {pred} over {steps} "
                f"steps (the run: {seen})"
            )
        if simulated == "diverges" and rho > 1 + _TOL:
            return (
                f"the exact flow only circles (the eigenvalues of v' lie on the imaginary axis), but RK4 steps "
                f"of length h amplify it: rho(F_h') = {r} > 1; a smaller h follows the flow more closely"
            )
        return (
            f"the eigenvalues of v' lie on the imaginary axis, so the linearization decides nothing and "
            f"higher-order terms decide: in this run they {outcome} (distance factor {seen} over {steps} steps)"
        )
    if verdict == "cycles":
        return (
            f"rho(F_h') is 1 (within {_TOL:g}), so the linearization decides nothing and higher-order terms "
            f"decide: in this run they {outcome} (distance factor {seen} over {steps} steps)"
        )
    if verdict == "diverges":
        if simulated == "converges":
            return (
                f"rho(F_h') = {r} > 1 makes the equilibrium unstable, yet this run reached it: it started on a "
                f"contracting direction (or the nonlinear field pulled it in); a small push off that direction "
                f"would grow"
            )
        head = f"the linearization says unstable (rho(F_h') = {r} > 1, distance x{pred} in {steps} steps) but the run"
        if final_distance < start_distance:
            return (
                f"{head} came closer (x{seen}; divergence means x{GROW:g}): the linearization holds only near the "
                f"equilibrium, and farther out the nonlinear field pulls the orbit in, towards a limit cycle where "
                f"the pull and the linear push balance"
            )
        short = f"; the run is also too short for the linear rate to reach {GROW:g}" if log_pred < math.log(GROW) \
            else ""
        return (
            f"{head} stayed bounded (x{seen}; divergence means x{GROW:g}): the linearization holds only near the "
            f"equilibrium, and farther out the nonlinear field keeps the orbit on a limit cycle or drifting out "
            f"only slowly{short}"
        )
    # verdict == "converges"
    if simulated in ("slow", "cycles") and log_pred > math.log(SHRINK):
        return (
            f"the linearization says it converges (rho(F_h') = {r} < 1), but slowly: at that rate the distance "
            f"shrinks only by a factor {pred} in {steps} steps, short of the {SHRINK:g} the simulation calls "
            f"convergence (the run: {seen}); a longer run gets there"
        )
    effect = "carries the run away" if simulated == "diverges" else "keeps the run from the equilibrium"
    return (
        f"rho(F_h') = {r} < 1 promises only local convergence: from this start (distance "
        f"{start_distance:.3g}) the nonlinear field {effect}; start closer to the equilibrium to see the linear rate"
    )


# ------------------------------------------------------------------ text output


def format_number(x: float, decimals: int = 6, signed: bool = False) -> str:
    """``x`` with ``decimals`` fixed decimals (``+`` sign if ``signed``; never ``-0``), or in ``.{decimals}g``
    form from 1e6 on, so that a huge value prints as ``5e+299`` rather than as 300 digits."""
    x = float(x) + 0.0  # -0.0 -> 0.0
    sign = "+" if signed else ""
    if math.isfinite(x) and abs(x) >= 1e6:
        return f"{x:{sign}.{decimals}g}"
    return f"{x:{sign}.{decimals}f}"


def _fmt_eigs(lam: np.ndarray | None, limit: int = 2) -> str:
    if lam is None:
        return "-"
    lam = np.asarray(lam)[np.argsort(-np.abs(np.asarray(lam)))][:limit]  # the largest in modulus
    return ", ".join(f"{format_number(z.real, 4, signed=True)}{format_number(z.imag, 4, signed=True)}i" for z in lam)


TABLE_FORMATS = ("text", "markdown", "csv")


def _pair(lam: np.ndarray | None, decimals: int = 4) -> str:
    """Eigenvalues in a few characters: a conjugate pair as ``a±bi``, otherwise the two largest in modulus."""
    if lam is None:
        return "-"
    lam = np.asarray(lam)[np.argsort(-np.abs(np.asarray(lam)))][:2]
    if len(lam) == 2 and abs(lam[0].imag) > 0 and np.isclose(lam[0], np.conj(lam[1]), rtol=0, atol=1e-12):
        return f"{format_number(lam[0].real, decimals, signed=True)}±{format_number(abs(lam[0].imag), decimals)}i"
    if np.all(np.abs(lam.imag) < 1e-12):
        return ", ".join(format_number(z.real, decimals, signed=True) for z in lam)
    return _fmt_eigs(lam, limit=2)


def _agrees(numeric: np.ndarray | float, closed: np.ndarray | float | None, tol: float = 1e-6) -> str:
    """``"yes"`` where a closed form exists and matches the numeric value, ``"NO"`` where it does not."""
    if closed is None:
        return "-"
    a = np.sort_complex(np.atleast_1d(np.asarray(numeric, dtype=complex)))
    b = np.sort_complex(np.atleast_1d(np.asarray(closed, dtype=complex)))
    return "yes" if a.shape == b.shape and np.allclose(a, b, rtol=0, atol=tol) else "NO"


def _short_method(label: str) -> str:
    """``"momentum (h=0.1, beta=-0.5)"`` -> ``"momentum (beta=-0.5)"``: the table states h once."""
    label = re.sub(r"\bh=[^,)]*(, )?", "", label)
    return label.replace(" ()", "")


def format_table(rows: list[Analysis], style: str = "text") -> str:
    """The convergence table as ``"text"`` (a block per game, under 100 columns), ``"markdown"`` or ``"csv"``.

    ``text`` shows the eigenvalues of v' (a conjugate pair as ``a±bi``), the spectral radius of F_h', whether
    the closed forms agree with the numeric values (``cf``), and both verdicts; ``markdown`` and ``csv`` add the
    closed-form values themselves (``csv`` with full precision, one row per game and method).
    """
    check_choice("style", style, TABLE_FORMATS)
    if style == "csv":
        return _table_csv(rows)
    head = ("method", "v' eigenvalues", "rho(F_h')", "cf", "verdict", "simulated", "distance")
    if style == "markdown":
        lines = ["| game | method | v' eigenvalues | closed form | rho(F_h') | closed form | verdict | simulated "
                 "| final distance |", "|" + "---|" * 9]
        for r in rows:
            rho_cf = "-" if r.spectral_radius_closed_form is None else format_number(r.spectral_radius_closed_form)
            lines.append(f"| {r.game} | {_short_method(r.method)} | {_pair(r.continuous_eigenvalues)} | "
                         f"{_pair(r.continuous_eigenvalues_closed_form)} | {format_number(r.spectral_radius)} | "
                         f"{rho_cf} | {r.verdict} | {r.simulated_verdict} | {r.final_distance:.3g} |")
        return "\n".join(lines)
    blocks = []
    for game in dict.fromkeys(r.game for r in rows):  # games in order of first appearance
        mine = [r for r in rows if r.game == game]
        body = [(
            _short_method(r.method),
            _pair(r.continuous_eigenvalues),
            format_number(r.spectral_radius),
            _closed_forms_agree(r),
            r.verdict,
            r.simulated_verdict,
            f"{r.final_distance:.3g}",
        ) for r in mine]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in (head, *body)]
        lines.insert(1, "  ".join("-" * w for w in widths))
        hs = sorted({f"{r.h:g}" for r in mine})
        blocks.append(f"{game} (h = {', '.join(hs)})\n" + "\n".join(lines))
    legend = textwrap.fill(
        "cf: the closed-form eigenvalues and spectral radius agree with the numeric ones to 1e-6 (yes), disagree "
        "(NO) or are not known (-). verdict: from the eigenvalues; simulated: from the run; distance: to the "
        "equilibrium at the end of the run.", width=96, subsequent_indent="    ")
    return "\n\n".join(blocks) + "\n\n" + legend


def _closed_forms_agree(r: Analysis) -> str:
    checks = [_agrees(r.continuous_eigenvalues, r.continuous_eigenvalues_closed_form),
              _agrees(r.spectral_radius, r.spectral_radius_closed_form)]
    known = [c for c in checks if c != "-"]
    if not known:
        return "-"
    return "NO" if "NO" in known else "yes"


def _table_csv(rows: list[Analysis]) -> str:
    import csv
    import io

    def eig(lam):
        return "" if lam is None else " ".join(f"{complex(z).real:.12g}{complex(z).imag:+.12g}j" for z in lam)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["game", "method", "h", "eigenvalues", "eigenvalues_closed_form", "spectral_radius",
                "spectral_radius_closed_form", "verdict", "simulated_verdict", "steps", "final_distance"])
    for r in rows:
        w.writerow([r.game, _short_method(r.method), f"{r.h:.12g}", eig(r.continuous_eigenvalues),
                    eig(r.continuous_eigenvalues_closed_form), f"{r.spectral_radius:.12g}",
                    "" if r.spectral_radius_closed_form is None else f"{r.spectral_radius_closed_form:.12g}",
                    r.verdict, r.simulated_verdict, r.steps, f"{r.final_distance:.12g}"])
    return buf.getvalue().rstrip("\n")
