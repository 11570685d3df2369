"""Figures for image GANs: sample grids, training curves, snapshots over training, latent walks.

Everything here takes NumPy arrays or anything with ``.detach().cpu().numpy()``
(torch tensors) laid out (N, C, H, W) with values in [-1, 1], so this module
does not import torch.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from gancourse.errors import check_positive_int
from gancourse.viz.layout import capped_figsize, panel_grid

__all__ = ["to_numpy", "make_grid", "show_grid", "plot_curves", "plot_snapshots", "plot_rows"]


def to_numpy(x: Any) -> np.ndarray:
    """A torch tensor (any device) or array-like -> float NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def make_grid(images: Any, nrow: int = 8, padding: int = 2, pad_value: float = 1.0,
              value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Tile images (N, C, H, W) into one picture (rows, cols, C) with values in [0, 1].

    ``nrow`` images per row; ``padding`` pixels of ``pad_value`` (in [0, 1])
    around each tile; pixel values are mapped from ``value_range`` to [0, 1] and clipped.
    A single-channel grid keeps C = 1 (``show_grid`` draws it in grey).
    """
    x = to_numpy(images)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got shape {x.shape}")
    nrow = check_positive_int("nrow", nrow)
    lo, hi = value_range
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    n, c, h, w = x.shape
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    cols = min(int(nrow), max(n, 1))
    rows = -(-n // cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, dtype=np.float64)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top : top + h, left : left + w] = x[i].transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    return grid


def show_grid(ax: plt.Axes, images: Any, nrow: int = 8, title: str | None = None, **kw) -> plt.Axes:
    """Draw :func:`make_grid` of ``images`` on ``ax`` (grey for one channel), without ticks."""
    grid = make_grid(images, nrow=nrow, **kw)
    if grid.shape[2] == 1:
        ax.imshow(grid[:, :, 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(grid)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(y) < window:
        return y
    kernel = np.ones(window) / window
    return np.convolve(y, kernel, mode="valid")


def plot_curves(history: Mapping[str, Sequence[float]], keys: Sequence[str], ax: plt.Axes | None = None,
                smooth: int = 1, title: str | None = None) -> plt.Axes:
    """Curves ``history[k]`` against ``history["step"]`` for each ``k`` in ``keys`` (moving average of ``smooth``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(history)}")
    step = np.asarray(history["step"], dtype=float)
    for k in keys:
        y = _smooth(np.asarray(history[k], dtype=float), smooth)
        ax.plot(step[len(step) - len(y):], y, label=k)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_snapshots(snapshots: Sequence[tuple], n_show: int = 16, nrow: int = 8, max_cols: int = 4) -> plt.Figure:
    """One grid per snapshot ``(step, images, ...)`` (the first image set of each), titled by its step.

    At most ``max_cols`` grids a row, and no more than fit in 11 inches (:func:`gancourse.viz.layout.panel_grid`).
    """
    if not snapshots:
        raise ValueError("snapshots is empty: train first")
    rows, cols, figsize = panel_grid(len(snapshots), panel=(2.7, 2.9), max_cols=max_cols)
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, snap in zip(axes.ravel(), snapshots):
        show_grid(ax, to_numpy(snap[1])[:n_show], nrow=min(nrow, 4), title=f"step {snap[0]}")
    fig.tight_layout()
    return fig


def plot_rows(rows: Sequence[Any], labels: Sequence[str] | None = None, width: float = 10.0) -> plt.Figure:
    """Several image batches (N_i, C, H, W), one per row (e.g. a latent walk per row, or a -> G(a) -> F(G(a))).

    The figure is ``width`` inches wide, capped at 11 (:func:`gancourse.viz.layout.capped_figsize`).
    """
    arrays = [to_numpy(r) for r in rows]
    if not arrays:
        raise ValueError("rows is empty")
    fig, axes = plt.subplots(len(arrays), 1, figsize=capped_figsize(width, 1.3 * len(arrays) + 0.2), squeeze=False)
    for i, (ax, x) in enumerate(zip(axes[:, 0], arrays)):
        show_grid(ax, x, nrow=len(x))
        if labels is not None:
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(labels[i], rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig
