"""How big a notebook's runs are: the three tiers.

- ``"smoke"``: the tests (nbval on CI): about a minute per notebook, the same code paths as the other tiers;
- ``"lecture"``: the default for a person: a laptop CPU, at most about five minutes per NumPy notebook, with
  results that show what the lecture claims;
- ``"full"``: the larger runs behind the measured results (``docs/RESULTS.md``); opt-in, and meant for a GPU
  in the image track.

A notebook's ``parameters`` cell sets ``TIER = default_tier()``; change it there, set ``GANCOURSE_TIER`` before
starting Jupyter, or pass it to papermill (``papermill NB.ipynb out.ipynb -p TIER full``).
"""
from __future__ import annotations

import os
from typing import Any, TypeVar

from gancourse.errors import check_choice

__all__ = ["TIERS", "default_tier", "check_tier", "preset_tier", "pick", "smoke_mode"]

TIERS = ("smoke", "lecture", "full")
T = TypeVar("T")


def smoke_mode() -> bool:
    """True in the course's quick test mode: ``GANCOURSE_SMOKE=1``, or ``CI`` set (as every CI service does)."""
    return os.environ.get("GANCOURSE_SMOKE", "") == "1" or "CI" in os.environ


def check_tier(tier: Any) -> str:
    """``tier`` if it names a tier, else a ValueError listing them."""
    return check_choice("tier", tier, TIERS)


def preset_tier(smoke: bool, tier: str | None) -> str:
    """The tier a preset function was asked for: ``tier`` if given, else "smoke" or "full" from ``smoke``.

    ``smoke=True`` with another tier is refused (a ValueError naming both); the tiers are
    ``TIERS``: smoke (a CPU test run), lecture (a 2-core CPU, a few minutes), full (a GPU).
    """
    if tier is None:
        return "smoke" if smoke else "full"
    check_tier(tier)
    if smoke and tier != "smoke":
        raise ValueError(f"smoke=True contradicts tier={tier!r}; give only tier (smoke, lecture or full)")
    return tier


def default_tier() -> str:
    """``GANCOURSE_TIER`` if set, else ``"smoke"`` in test mode (:func:`smoke_mode`), else ``"lecture"``."""
    chosen = os.environ.get("GANCOURSE_TIER", "").strip()
    if chosen:
        return check_choice("GANCOURSE_TIER", chosen, TIERS)
    return "smoke" if smoke_mode() else "lecture"


def pick(tier: str, *, smoke: T, lecture: T, full: T) -> T:
    """The value for ``tier``: ``pick(TIER, smoke=150, lecture=6000, full=24000)``."""
    return {"smoke": smoke, "lecture": lecture, "full": full}[check_tier(tier)]
