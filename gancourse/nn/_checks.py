"""Argument checks for the engine's per-step functions, fast in the common case.

The hot paths (penalties, instance noise) run every training step, so the usual case, a Python
float in range, is accepted without a NumPy call; everything else goes to
``gancourse.errors.check_positive``, which gives the error message.
"""
from __future__ import annotations

import math
from typing import Any

from gancourse.errors import check_positive

__all__ = ["positive"]


def positive(name: str, value: Any, *, allow_zero: bool = False) -> Any:
    """``value`` unchanged if it is a finite number > 0 (>= 0 with ``allow_zero``), else a clear error.

    Unlike ``check_positive`` it returns the value itself (not ``float(value)``), so the caller's
    arithmetic, and so its results, stay exactly what they were.
    """
    if type(value) is float and (value >= 0.0 if allow_zero else value > 0.0) and value < math.inf:
        return value
    check_positive(name, value, allow_zero=allow_zero)
    return value
