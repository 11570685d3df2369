"""Figures of lecture 5 (mode collapse and the bag of tricks) on the 2D toys.

- :func:`plot_toy_datasets`: a gallery of 2D toy distributions, mixture centres marked;
- :func:`plot_toy_snapshots`: generated samples from fixed latent codes over the data, one panel per snapshot;
- :func:`plot_mode_coverage`: which mixture components a run covered at each evaluation, as a heat map;
- :func:`plot_trick_bars`: HQ and modes of every row of the table of tricks, as horizontal bars.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from gancourse.toy.distributions import get_dataset
from gancourse.viz.layout import MAX_WIDTH, panel_grid

__all__ = ["plot_toy_datasets", "plot_toy_snapshots", "plot_mode_coverage", "plot_trick_bars"]


def plot_toy_datasets(names: Sequence[str], n: int = 2000, seed: int = 0, ncols: int = 3) -> plt.Figure:
    """``n`` samples (drawn with ``seed``) of each named 2D toy distribution, at most ``ncols`` panels a row.

    Panels wrap into more rows where ``ncols`` of them would not fit in 11 inches
    (:func:`gancourse.viz.layout.panel_grid`). Mixture centres are marked with crosses and counted in the
    panel's title; panels beyond the last data set are switched off.
    """
    sets = [get_dataset(name) for name in names]
    flat = [ds.name for ds in sets if ds.dim != 2]
    if flat or not sets:
        raise ValueError(f"plot_toy_datasets draws 2D distributions; got none or 1D ones: {flat}")
    nrows, ncols, figsize = panel_grid(len(sets), panel=(3.6, 3.6), max_cols=ncols, extra_height=0.3)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for ax, ds in zip(axes.ravel(), sets):
        x = ds.sample(n, seed)  # (n, 2)
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5)
        centers = getattr(ds, "centers", None)
        if centers is not None:
            ax.scatter(centers[:, 0], centers[:, 1], marker="x", c="k", s=25, linewidths=0.8)
        ax.set_title(f"{ds.name} ({len(centers)} modes)" if centers is not None else ds.name)
        ax.set_aspect("equal")
    for ax in axes.ravel()[len(sets):]:
        ax.axis("off")
    fig.suptitle(f"The 2D toy distributions ({n:,} samples each)")
    fig.tight_layout()
    return fig


def plot_toy_snapshots(
    axes: Sequence[plt.Axes],
    real: np.ndarray,
    snapshots: Sequence[tuple[int, np.ndarray]],
    *,
    extent: float,
    label: str = "",
) -> Sequence[plt.Axes]:
    """One panel per ``(step, samples)`` snapshot: generated samples (red) over ``real`` ones (grey).

    ``real`` and each ``samples`` have shape (N, 2); every panel shows the square [-extent, extent]^2 and
    is titled ``"<label>, step <step>"``. ``axes`` must hold one axes per snapshot.
    """
    if len(axes) != len(snapshots):
        raise ValueError(f"one axes per snapshot: got {len(axes)} axes for {len(snapshots)} snapshots")
    for ax, (step, fake) in zip(axes, snapshots):
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.8")
        ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.5)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_title(f"{label}, step {step}" if label else f"step {step}")
    return axes


def plot_mode_coverage(ax: plt.Axes, coverage: Mapping[str, Any], n_eval: int, *, title: str = "") -> plt.Axes:
    """The fraction of ``n_eval`` samples that are HQ at each component (rows) and evaluation (columns).

    ``coverage`` is the result of :func:`gancourse.toy.timeline.mode_coverage`; a colour bar is added.
    """
    counts, steps = np.asarray(coverage["counts"], dtype=float), np.asarray(coverage["steps"])  # (n_evals, K)
    frac = counts.T / n_eval  # (K, n_evals)
    im = ax.imshow(frac, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                   vmin=0.0, vmax=max(float(frac.max()), 0.01),
                   extent=(steps[0] - 0.5, steps[-1] + 0.5, -0.5, counts.shape[1] - 0.5))
    ax.figure.colorbar(im, ax=ax, label="fraction of samples (HQ)")
    ax.set_xlabel("step")
    ax.set_ylabel("mode index")
    ax.set_title(title)
    return ax


def _bar_values(summaries: Sequence[Mapping[str, Any]], key: str, show_err: bool) -> tuple[np.ndarray, np.ndarray]:
    """Means (0 for a row whose every seed diverged) and error bars (0 without ``show_err``) of one metric."""
    val = np.array([0.0 if s[key] is None else s[key] for s in summaries])
    err = np.array([0.0 if s[key + "_std"] is None or not show_err else s[key + "_std"] for s in summaries])
    return val, err


def plot_trick_bars(
    summaries: Mapping[str, Mapping[str, Any]], *, n_modes: int, title: str = "", show_err: bool = True
) -> plt.Figure:
    """HQ (left) and modes covered (right) of every row summary, one horizontal bar per row, in order.

    ``summaries`` maps row names to :func:`gancourse.toy.trick_table.summarize_runs` results; the first row
    is the baseline (grey, with a dashed line through its value), the last one the recipe (green). Error
    bars are the standard deviations over seeds (with ``show_err``); a row that diverged on every seed
    shows an empty bar.
    """
    rows, s = list(summaries), list(summaries.values())
    if len(rows) < 2:
        raise ValueError(f"plot_trick_bars needs a baseline row and at least one more, got {rows}")
    y = np.arange(len(rows))
    colors = ["tab:gray"] + ["tab:blue"] * (len(rows) - 2) + ["tab:green"]
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 0.35 * len(rows) + 1.5), sharey=True)
    for ax, key, scale, label, top in ((axes[0], "hq", 100, "HQ samples (%)", 100),
                                       (axes[1], "modes", 1, f"modes covered (of {n_modes})", n_modes)):
        val, err = _bar_values(s, key, show_err)
        ax.barh(y, scale * val, xerr=scale * err, color=colors)
        ax.axvline(scale * val[0], color="k", ls="--", lw=0.8)
        ax.set_xlabel(label)
        ax.set_xlim(0, top)
    axes[0].set_yticks(y, rows)
    axes[0].invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
