"""Input checks shared by the divergence functions: distributions, densities on grids, samples."""
from __future__ import annotations

from typing import Any

import numpy as np

from gancourse.errors import check_array, check_positive

__all__ = ["as_distribution", "as_pair", "grid_weight"]

#: relative tolerance on the total mass of a discrete distribution (sum must be 1 within it)
SUM_TOL = 1e-8
#: tolerance on the total mass of a density on a grid (a Riemann sum over a truncated support)
GRID_TOL = 1e-2


def as_distribution(name: str, p: Any, *, cell: float | None = None) -> np.ndarray:
    """``p`` as a finite, non-negative float64 array of total mass 1.

    Discrete (``cell=None``): ``sum(p) = 1`` within ``SUM_TOL``. Density on a regular grid
    (``cell`` = the length / area of one grid cell): ``sum(p) * cell = 1`` within ``GRID_TOL``.
    """
    arr = check_array(name, p, dtype=np.float64, finite=True)
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty array of probabilities, got shape {arr.shape}")
    if np.any(arr < 0):
        i = tuple(int(v) for v in np.argwhere(arr < 0)[0])
        raise ValueError(f"{name} must be non-negative (a distribution has no negative mass); {name}{list(i)} = {arr[i]:.6g}")
    if cell is None:
        total = float(arr.sum())
        if abs(total - 1.0) > SUM_TOL:
            raise ValueError(f"{name} must sum to 1 (within {SUM_TOL:g}), got sum {total:.12g}; normalise it first")
    else:
        total = float(arr.sum()) * cell
        if abs(total - 1.0) > GRID_TOL:
            raise ValueError(
                f"{name} is a density on a grid with cell {cell:.6g}, so sum({name}) * cell must be about 1 "
                f"(within {GRID_TOL:g}), got {total:.6g}; widen or refine the grid, or check the density"
            )
    return arr


def grid_weight(cell: float | None) -> float:
    """The weight of one entry in a sum: 1 for a discrete distribution, the cell size for a grid density."""
    return 1.0 if cell is None else check_positive("cell", cell)


def as_pair(p: Any, q: Any, cell: float | None = None, names: tuple[str, str] = ("p", "q")) -> tuple[np.ndarray, np.ndarray, float]:
    """Check two distributions on the same support (same shape); returns ``(p, q, weight)``."""
    w = grid_weight(cell)
    a = as_distribution(names[0], p, cell=None if cell is None else w)
    b = as_distribution(names[1], q, cell=None if cell is None else w)
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must live on the same support (same shape), "
            f"got shapes {a.shape} and {b.shape}"
        )
    return a, b, w
