"""Errors and input checks that speak to the student.

Every public entry point validates its input with these helpers so that a
mistake is reported in the caller's words (which argument, what was expected,
what was given) instead of as a NumPy traceback from deep inside.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "TrainingDiverged",
    "DivergenceError",
    "CheckpointError",
    "OutputPathError",
    "check_choice",
    "check_array",
    "check_samples",
    "check_positive",
    "check_positive_int",
    "check_finite",
]


class TrainingDiverged(FloatingPointError):
    """Training diverged: a loss (or a parameter) became NaN or inf.

    Named for what happened to the run, not for the divergences of ``gancourse.divergences`` (KL, JSD, ...).

    Attributes
    ----------
    step : int
        The training step at which a non-finite value first appeared.
    last_finite : dict
        The last finite losses seen before the failure (name -> value).
    """

    def __init__(self, step: int, last_finite: Mapping[str, float], what: str = "loss"):
        self.step = int(step)
        self.last_finite = dict(last_finite)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.last_finite.items()) or "none yet"
        super().__init__(
            f"training diverged at step {self.step}: the {what} became NaN or inf "
            f"(last finite losses: {shown}). Try a smaller learning rate, a gradient "
            f"penalty, or a bounded loss."
        )


#: the exception's earlier name, kept so that ``except DivergenceError`` still catches it
DivergenceError = TrainingDiverged


class CheckpointError(ValueError):
    """A file that is not a gancourse checkpoint, or one that is damaged (truncated, altered, inconsistent).

    The message names the file and what is wrong with it, e.g.
    ``run.npz is damaged: opt_g: state['theta']['m'] has shape (3,), expected (1234,)``.
    """


class OutputPathError(ValueError):
    """An output path that cannot or must not be written: a folder, a device or FIFO, no permission, ..."""


def check_choice(name: str, value: Any, options: Iterable[str]) -> str:
    """Return `value` if it is one of `options`, else raise a ValueError listing them."""
    opts = list(options)
    if not isinstance(value, str) or value not in opts:
        raise ValueError(f"unknown {name} {value!r}; valid options are: {', '.join(map(repr, opts))}")
    return value


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return `value` as a float if it is a finite number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return v


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_finite(name: str, x: np.ndarray) -> np.ndarray:
    """Raise a ValueError if `x` holds NaN or inf, saying how many and where the first is."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s); the first is at index {first}")
    return x


def check_array(
    name: str,
    x: Any,
    *,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    dtype: Any = None,
    finite: bool = False,
) -> np.ndarray:
    """Convert `x` to an array and check its rank and shape (None in `shape` matches anything).

    >>> check_array("x", [[1, 2]], shape=(None, 2)).shape
    (1, 2)
    """
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and arr.ndim != ndim:
        want = _fmt_shape(shape) if shape is not None else f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {want}, got shape {arr.shape}")
    if shape is not None:
        for got, want in zip(arr.shape, shape):
            if want is not None and got != want:
                raise ValueError(f"{name} must have shape {_fmt_shape(shape)}, got shape {arr.shape}")
    if finite:
        check_finite(name, arr)
    return arr


def check_samples(name: str, x: Any, dim: int | None = None) -> np.ndarray:
    """Non-empty finite samples as a float64 (N, d) array; a 1D array (N,) is read as (N, 1).

    ``dim`` (if given) is the required number of columns.
    """
    arr = check_array(name, x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]  # (N,) -> (N, 1)
    arr = check_array(name, arr, shape=(None, dim), finite=True)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one point is needed, got shape {arr.shape}")
    return arr


def _fmt_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
