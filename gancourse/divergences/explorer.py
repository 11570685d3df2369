"""The divergence explorer's maths: two 1D Gaussian mixtures, the divergences between them, D*, the parallel lines.

Example ``"mixtures"``: ``p`` and ``q`` are mixtures ``w N(m_1, s_1^2) + (1 - w) N(m_2, s_2^2)`` evaluated on the
regular grid ``xs = linspace(-GRID_HALF, GRID_HALF, GRID_N)`` (log-densities by ``mixture_log_density``). On it:

- ``KL(p || q)`` and ``KL(q || p)`` by :func:`kl_divergence_log` (the Riemann sum of ``kl_divergence(cell=dx)``,
  from log-densities, so that it stays finite where a density rounds to 0 far in a tail);
- ``JSD(p || q)`` and ``TV(p, q)`` by ``js_divergence`` and ``total_variation`` with ``cell = dx``;
- ``W1(p, q)`` by ``wasserstein_1d_hist``, the area between the CDFs, on the grid's probabilities ``p_i dx``;
- ``D*(x) = p(x) / (p(x) + q(x))`` by ``optimal_discriminator``, and ``V(D*, G) = 2 JSD - log 4``;
- curves: the five as functions of a shift ``t`` of ``q`` (``q_t(x) = q(x - t)``, ``t`` in ``[-SHIFT, SHIFT]``;
  the current ``q`` is ``t = 0``): the bounded divergences saturate once the supports part, W1 keeps growing.

Example ``"lines"``: WGAN's parallel lines ``P_0 = (0, Z)``, ``P_theta = (theta, Z)``, ``Z ~ U[0, 1]``: the values
from ``parallel_lines_divergences`` (the discrete machinery), the curves over ``theta`` from
``parallel_lines_closed_form``: JSD stays ``log 2`` and TV 1 for every ``theta != 0`` while ``W1 = |theta|``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from gancourse.divergences.demos import mixture_log_density
from gancourse.divergences.discrete import js_divergence, total_variation
from gancourse.divergences.discriminator import optimal_discriminator, optimal_gan_value
from gancourse.divergences.examples import parallel_lines, parallel_lines_closed_form, parallel_lines_divergences
from gancourse.divergences.wasserstein import wasserstein_1d_hist
from gancourse.errors import check_array, check_positive
from gancourse.options import check_choices, option

__all__ = [
    "EXAMPLES", "CONTROLS", "MIXTURE_CONTROLS", "DIVERGENCES", "GRID_HALF", "GRID_N", "SHIFT", "SHOW_HALF",
    "DivergenceSettings", "DivergenceFrame", "applicable_controls", "inactive_controls", "kl_divergence_log",
    "mixture_on_grid", "mixture_divergences", "shift_curves", "explore_divergences",
]

EXAMPLES = ("mixtures", "lines")
#: the five quantities of the mixtures example, in the order they are shown
DIVERGENCES = ("kl", "reverse_kl", "jsd", "tv", "w1")
MIXTURE_CONTROLS = tuple(f"{d}_{k}" for d in "pq" for k in ("m1", "s1", "m2", "s2", "w"))
#: the settings a front end offers as controls, in the order it shows them
CONTROLS = ("example", *MIXTURE_CONTROLS, "theta")
MEAN_RANGE, STD_RANGE, THETA_RANGE = (-4.0, 4.0), (0.2, 1.5), (-2.0, 2.0)
GRID_HALF, GRID_N = 17.0, 1701  # the grid: dx = 0.02; covers q shifted by SHIFT to 6 of its widest stds
SHIFT, SHIFT_N = 4.0, 81  # the curves: q shifted by t in linspace(-SHIFT, SHIFT, SHIFT_N), multiples of 5 dx
SHOW_HALF, SHOW_EVERY = 6.0, 3  # what is drawn of the densities: [-6, 6], every 3rd grid point
LINE_POINTS = 20  # points per segment of the parallel lines (each of mass 1/20)


@dataclass(frozen=True)
class DivergenceSettings:
    """One position of the explorer's sliders; each field is read only where :func:`applicable_controls` says."""

    example: str = option("mixtures", "two Gaussian mixtures, or WGAN's parallel lines", choices=EXAMPLES)
    p_m1: float = option(-2.0, "p: mean of component 1")
    p_s1: float = option(0.5, "p: std of component 1")
    p_m2: float = option(2.0, "p: mean of component 2")
    p_s2: float = option(0.5, "p: std of component 2")
    p_w: float = option(0.5, "p: weight of component 1 (component 2 has 1 - w)")
    q_m1: float = option(-0.5, "q: mean of component 1")
    q_s1: float = option(1.0, "q: std of component 1")
    q_m2: float = option(1.0, "q: mean of component 2")
    q_s2: float = option(0.5, "q: std of component 2")
    q_w: float = option(1.0, "q: weight of component 1 (component 2 has 1 - w)")
    theta: float = option(1.0, "the offset of the second line in the parallel-lines example")

    def __post_init__(self) -> None:
        check_choices(self)
        for f in fields(self):
            if f.name == "example":
                continue
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise TypeError(f"{f.name} must be a finite number, got {v!r}")
            lo, hi = _RANGES[f.name[2:] if f.name != "theta" else "theta"]
            if not lo <= v <= hi:
                raise ValueError(f"{f.name} must lie in [{lo:g}, {hi:g}], got {v!r}")
            object.__setattr__(self, f.name, float(v))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> DivergenceSettings:
        """Settings from a mapping of field names (unknown names are refused with the valid ones)."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown explorer settings {unknown}; valid ones are: {', '.join(names)}")
        return cls(**values)

    def mixture(self, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(weights (2,), means (2, 1), covs (2, 1, 1))`` of ``p`` or ``q``, as ``mixture_log_density`` reads."""
        if which not in ("p", "q"):
            raise ValueError(f"which must be 'p' or 'q', got {which!r}")
        g = lambda k: getattr(self, f"{which}_{k}")  # noqa: E731
        w = g("w")
        return (np.array([w, 1.0 - w]), np.array([[g("m1")], [g("m2")]]),
                np.array([[[g("s1") ** 2]], [[g("s2") ** 2]]]))


_RANGES = {"m1": MEAN_RANGE, "m2": MEAN_RANGE, "s1": STD_RANGE, "s2": STD_RANGE, "w": (0.0, 1.0),
           "theta": THETA_RANGE}


def applicable_controls(s: DivergenceSettings) -> frozenset[str]:
    """The controls of the example shown: the ten mixture sliders, or theta."""
    return frozenset({"example", *(MIXTURE_CONTROLS if s.example == "mixtures" else ("theta",))})


def inactive_controls(s: DivergenceSettings) -> frozenset[str]:
    """Shown but without effect, so disabled: the mean and std of a component whose weight is 0."""
    if s.example != "mixtures":
        return frozenset()
    out = set()
    for d in "pq":
        w = getattr(s, f"{d}_w")
        if w == 0.0:
            out |= {f"{d}_m1", f"{d}_s1"}
        if w == 1.0:
            out |= {f"{d}_m2", f"{d}_s2"}
    return frozenset(out)


def kl_divergence_log(log_p: Any, log_q: Any, *, cell: float) -> float:
    """``KL(p || q) = sum_i p_i (log p_i - log q_i) * cell`` from log-densities on a regular grid.

    The Riemann sum of ``kl_divergence(p, q, cell=cell)``, computed from ``log p`` and ``log q`` (same shape), so
    that a density far in its tail, where ``exp`` rounds it to 0, still gives its finite contribution; terms with
    ``p_i = 0`` (``log p_i = -inf``) are 0, and ``+inf`` comes only from ``log q_i = -inf`` where ``p_i > 0``.
    """
    lp = check_array("log_p", log_p, dtype=np.float64)
    lq = check_array("log_q", log_q, dtype=np.float64)
    if lp.shape != lq.shape:
        raise ValueError(f"log_p and log_q must be given on the same grid (same shape), got {lp.shape} and {lq.shape}")
    w = check_positive("cell", cell)
    p = np.exp(lp)
    live = p > 0
    if np.any(np.isneginf(lq[live])):
        return float("inf")
    return w * float(np.sum(p[live] * (lp[live] - lq[live])))


#: below the smallest normal double a density is set to 0: halving a subnormal one (as ``m = (p + q) / 2`` does)
#: can round it to 0, and ``p log(p / 0)`` would make the JSD infinite
_LOG_TINY = float(np.log(np.finfo(np.float64).tiny))


def _density(log_p: np.ndarray) -> np.ndarray:
    return np.where(log_p < _LOG_TINY, 0.0, np.exp(np.maximum(log_p, _LOG_TINY)))


def _grid(half: float = GRID_HALF, n: int = GRID_N) -> tuple[np.ndarray, float]:
    xs = np.linspace(-half, half, n)
    return xs, float(xs[1] - xs[0])


def mixture_on_grid(s: DivergenceSettings, which: str, xs: np.ndarray) -> np.ndarray:
    """``log p(x)`` (or ``log q``) at the points ``xs`` (n,): (n,)."""
    return mixture_log_density(xs[:, None], *s.mixture(which))


def mixture_divergences(log_p: np.ndarray, log_q: np.ndarray, xs: np.ndarray) -> dict[str, float]:
    """KL, reverse KL, JSD, TV and W1 between the densities with log-densities ``log_p, log_q`` on the regular grid
    ``xs`` (see the module doc), and ``v_star = V(D*, G) = 2 JSD - log 4``."""
    dx = float(xs[1] - xs[0])
    p, q = _density(log_p), _density(log_q)
    jsd = js_divergence(p, q, cell=dx)
    return {
        "kl": kl_divergence_log(log_p, log_q, cell=dx),
        "reverse_kl": kl_divergence_log(log_q, log_p, cell=dx),
        "jsd": jsd,
        "tv": total_variation(p, q, cell=dx),
        "w1": wasserstein_1d_hist(p / p.sum(), q / q.sum(), xs),
        "v_star": optimal_gan_value(p, q, cell=dx),
    }


def shift_curves(s: DivergenceSettings, shifts: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The five divergences between ``p`` and ``q`` shifted by ``t`` (``q_t(x) = q(x - t)``) for each ``t`` of
    ``shifts`` (default ``linspace(-SHIFT, SHIFT, SHIFT_N)``, which must be multiples of the grid step): the shifts
    (S,) and ``{name: (S,)}``. ``log q`` is evaluated once on a grid extended by ``max |t|``, and sliced."""
    xs, dx = _grid()
    t = np.linspace(-SHIFT, SHIFT, SHIFT_N) if shifts is None else check_array("shifts", shifts, ndim=1,
                                                                                dtype=np.float64, finite=True)
    k = np.rint(t / dx).astype(int)  # (S,) shifts in grid cells
    if not np.allclose(k * dx, t, atol=1e-9):
        raise ValueError(f"shifts must be multiples of the grid step {dx:g}")
    pad = int(np.abs(k).max(initial=0))
    ext = np.linspace(-GRID_HALF - pad * dx, GRID_HALF + pad * dx, GRID_N + 2 * pad)  # (n + 2 pad,)
    log_p, log_q_ext = mixture_on_grid(s, "p", xs), mixture_on_grid(s, "q", ext)
    out = {name: np.empty(len(t)) for name in DIVERGENCES}
    for i, ki in enumerate(k):
        log_q = log_q_ext[pad - ki: pad - ki + GRID_N]  # q(x_j - t) = q on ext at index j + pad - k
        values = mixture_divergences(log_p, log_q, xs)
        for name in DIVERGENCES:
            out[name][i] = values[name]
    return t, out


@dataclass(frozen=True)
class DivergenceFrame:
    """What the explorer draws for one :class:`DivergenceSettings`."""

    settings: DivergenceSettings
    controls: frozenset[str]
    inactive: frozenset[str]
    values: dict[str, float]  # the example's numbers at the current settings
    x: np.ndarray  # (n,): where the curves of the first panel are drawn (xs, or the lines' points)
    panel: dict[str, np.ndarray]  # mixtures: p, q, d_star on x; lines: the two segments (n, 2) each
    sweep: np.ndarray  # (S,): shifts t of q, or values of theta
    curves: dict[str, np.ndarray]  # name -> (S,)
    closed_form: dict[str, float]  # lines: the closed forms at theta; mixtures: empty


def explore_divergences(s: DivergenceSettings) -> DivergenceFrame:
    """Compute the frame of ``s`` (see the module doc)."""
    if s.example == "lines":
        thetas = np.round(np.linspace(*THETA_RANGE, 201), 10)
        closed = [parallel_lines_closed_form(t) for t in thetas]
        curves = {k: np.array([c[k] for c in closed]) for k in ("jsd", "kl", "tv", "w")}
        p0, pt = parallel_lines(s.theta, LINE_POINTS)
        return DivergenceFrame(settings=s, controls=applicable_controls(s), inactive=inactive_controls(s),
                               values=parallel_lines_divergences(s.theta, LINE_POINTS), x=p0[:, 1],
                               panel={"p0": p0, "p_theta": pt}, sweep=thetas, curves=curves,
                               closed_form=parallel_lines_closed_form(s.theta))
    xs, _ = _grid()
    log_p, log_q = mixture_on_grid(s, "p", xs), mixture_on_grid(s, "q", xs)
    p, q = _density(log_p), _density(log_q)
    shown = slice(int(np.searchsorted(xs, -SHOW_HALF - 1e-9)), int(np.searchsorted(xs, SHOW_HALF + 1e-9)), SHOW_EVERY)
    shifts, curves = shift_curves(s)
    return DivergenceFrame(settings=s, controls=applicable_controls(s), inactive=inactive_controls(s),
                           values=mixture_divergences(log_p, log_q, xs), x=xs[shown],
                           panel={"p": p[shown], "q": q[shown], "d_star": optimal_discriminator(p, q)[shown]},
                           sweep=shifts, curves=curves, closed_form={})
