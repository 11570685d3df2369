"""Published reference rows and plain-text tables of toy metrics."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["PUBLISHED_GRID25", "format_metrics", "comparison_table"]

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


def format_metrics(result: Mapping) -> str:
    """One ``key: value`` line per metric of a toy run (lists and counts left out)."""
    lines = []
    for k, v in result.items():
        if isinstance(v, (list, tuple, dict)):
            continue
        lines.append(f"{k:>12}: {v:.4g}" if isinstance(v, float) else f"{k:>12}: {v}")
    return "\n".join(lines)
