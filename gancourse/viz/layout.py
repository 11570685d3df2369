"""Figure sizes that fit a notebook column: at most :data:`MAX_WIDTH` inches wide.

JupyterLab shows a figure at most about a thousand pixels wide: a wider figure is shrunk to fit, and its
text with it (a 16-inch figure's 10 pt labels end up some 6 px high). So the course draws no figure wider
than 11 inches. Many panels wrap into several rows (:func:`panel_grid`), and a width computed from the data
is capped with its height scaled to keep the aspect (:func:`capped_figsize`). Text keeps its size either way.
"""
from __future__ import annotations

import math

from gancourse.errors import check_positive, check_positive_int

__all__ = ["MAX_WIDTH", "capped_figsize", "panel_grid"]

#: the widest figure the course draws, in inches (about JupyterLab's default column at 100 dpi)
MAX_WIDTH = 11.0


def capped_figsize(width: float, height: float, max_width: float = MAX_WIDTH) -> tuple[float, float]:
    """``(width, height)`` in inches, both scaled by ``min(1, max_width / width)``: at most ``max_width`` wide.

    The aspect ratio is kept, so panels keep their shape; only a figure wider than ``max_width`` changes.
    """
    width, height = check_positive("width", width), check_positive("height", height)
    max_width = check_positive("max_width", max_width)
    scale = min(1.0, max_width / width)
    return min(max_width, width * scale), height * scale


def panel_grid(n: int, panel: tuple[float, float] = (3.6, 3.6), *, max_cols: int | None = None,
               max_width: float = MAX_WIDTH, extra_height: float = 0.0) -> tuple[int, int, tuple[float, float]]:
    """Rows, columns and figure size for ``n`` panels of ``panel = (width, height)`` inches each.

    Columns: as many panels as fit in ``max_width`` (at least one, at most ``max_cols`` and ``n``); the panels
    wrap into ``ceil(n / cols)`` rows. A panel wider than ``max_width`` is scaled down, keeping its aspect.
    ``extra_height`` (inches, e.g. for a suptitle) is added to the height. Returns ``(nrows, ncols, figsize)``.
    """
    n = check_positive_int("n", n)
    w, h = check_positive("panel width", panel[0]), check_positive("panel height", panel[1])
    max_width = check_positive("max_width", max_width)
    fit = max(1, math.floor(max_width / w + 1e-9))
    ncols = min(n, fit, n if max_cols is None else check_positive_int("max_cols", max_cols))
    nrows = math.ceil(n / ncols)
    width, height = capped_figsize(ncols * w, nrows * h, max_width)
    return nrows, ncols, (width, height + extra_height)
