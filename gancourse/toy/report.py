"""Published reference rows and plain-text tables of toy metrics."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["PUBLISHED_GRID25", "format_metrics", "comparison_table", "perfect_hq", "mean_std", "format_mean_std"]

#: grid25 rows reported in the literature (modes out of 25, HQ fraction, reverse KL; None = not reported)
PUBLISHED_GRID25: tuple[dict, ...] = (
    {"method": "GAN (PacGAN Table 1)", "modes": 17.3, "hq": 0.948, "reverse_kl": 0.70},
    {"method": "PacGAN4 (PacGAN Table 1)", "modes": 24.8, "hq": 0.936, "reverse_kl": 0.04},
    {"method": "VEEGAN (VEEGAN Table 1)", "modes": 24.6, "hq": 0.40, "reverse_kl": None},
)


def _fmt(v, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "hq":
        return f"{100 * v:.1f}%"
    if kind == "modes":
        return f"{v:g}"
    return f"{v:.3f}"


def comparison_table(rows: Sequence[Mapping]) -> str:
    """A fixed-width table of ``method, modes, hq, reverse_kl`` rows."""
    width = max(len("method"), *(len(str(r["method"])) for r in rows))
    lines = [f"{'method':<{width}}  {'modes':>6}  {'HQ':>7}  {'reverse KL':>10}", "-" * (width + 29)]
    for r in rows:
        lines.append(
            f"{r['method']:<{width}}  {_fmt(r.get('modes'), 'modes'):>6}  {_fmt(r.get('hq'), 'hq'):>7}  "
            f"{_fmt(r.get('reverse_kl'), 'kl'):>10}"
        )
    return "\n".join(lines)


#: what each metric means, printed beside it
_EXPLAINED = {
    "modes": "covered: at least one high-quality sample is nearest to each",
    "hq": "samples within 3 std of their nearest mode",
    "reverse_kl": "KL(covered-mode histogram || uniform); 0 = all modes equally often",
    "w1": "Wasserstein-1 distance to the data (0 = the same distribution)",
    "energy": "energy distance to the data (0 = the same distribution)",
    "sliced_w1": "sliced Wasserstein-1 distance to the data (0 = the same distribution)",
}


def perfect_hq(dim: int, n_std: float = 3.0) -> float:
    """The HQ fraction of a perfect sampler of a well-separated isotropic mixture: ``P(|x| <= n_std)`` for
    ``x ~ N(0, I_dim)``: ``erf(n_std / sqrt 2)`` in 1D (99.7% at 3 std), ``1 - exp(-n_std^2 / 2)`` in 2D (98.9%)."""
    if dim == 1:
        return math.erf(n_std / math.sqrt(2))
    if dim == 2:
        return 1.0 - math.exp(-n_std**2 / 2)
    raise ValueError(f"dim must be 1 or 2 (the toy datasets), got {dim!r}")


def format_metrics(result: Mapping, dim: int | None = None) -> str:
    """A toy run's metrics, each with what it measures and, for HQ, what the data itself would score.

    ``result`` is what ``ToyGAN.run`` returns (plus ``data`` and ``seed``); ``dim`` the data's dimension.
    """
    lines = []
    head = ", ".join(str(x) for x in (result.get("data"), "seed" in result and f"seed {result['seed']}") if x)
    if "steps" in result:
        took = f" in {result['seconds']:.1f} s" if "seconds" in result else ""
        head += f"{': ' if head else ''}{result['steps']} steps{took}"
    if head:
        lines.append(head)
    n_modes = len(result["counts"]) if isinstance(result.get("counts"), (list, tuple)) else None
    for k, v in result.items():
        if k in ("data", "seed", "steps", "seconds") or isinstance(v, (list, tuple, dict)):
            continue
        if k == "modes" and n_modes is not None:
            value = f"{v} of {n_modes}"
        elif k == "hq":
            value = f"{100 * v:.1f}%"
        else:
            value = f"{v:.4g}" if isinstance(v, float) else str(v)
        note = _EXPLAINED.get(k, "")
        if k == "hq" and dim in (1, 2):
            note += f" (the data itself: {100 * perfect_hq(dim):.1f}%)"
        name = {"hq": "HQ", "reverse_kl": "reverse KL", "w1": "W1", "sliced_w1": "sliced W1"}.get(k, k)
        lines.append(f"  {name:<11} {value:<9} {note}".rstrip())
    return "\n".join(lines)


def mean_std(values: Iterable[float]) -> tuple[float | None, float | None]:
    """``(mean, std)`` of ``values``; ``(None, None)`` when there are none; ``(inf, nan)`` if one is not finite.

    An infinite value is a real outcome here (the reverse KL of a run without HQ samples), so it makes
    the mean infinite instead of being dropped.
    """
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return None, None
    if not np.all(np.isfinite(v)):
        return float("inf"), float("nan")
    return float(v.mean()), float(v.std())


def format_mean_std(mean: float | None, std: float | None, fmt: str, *, show_std: bool = True) -> str:
    """``"mean ± std"`` in ``fmt`` (only the mean without ``show_std``); ``"diverged"`` for None, ``"inf"``."""
    if mean is None:
        return "diverged"
    if not math.isfinite(mean):
        return "inf"
    return format(mean, fmt) + (" ± " + format(std, fmt) if show_std else "")
