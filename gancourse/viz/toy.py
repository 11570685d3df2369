"""Figures for the toy GANs: samples over the discriminator's heatmap, loss curves, training animations.

2D data is drawn as points over a heatmap of D(x); 1D data as histograms under the curve of D(x).
"""
from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gancourse.errors import check_choice
from gancourse.io import atomic_write
from gancourse.nn import LOSSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from gancourse.toy.distributions import ToyDistribution

__all__ = [
    "heatmap_grid", "data_extent", "plot_samples", "equilibrium_losses", "plot_losses", "Snapshot",
    "animation_frame", "save_animation",
]

# Real data: dark, opaque points with a light rim, visible over both ends of the colour map; generated
# samples: a warm colour that viridis never uses. The same styles in every figure.
REAL_STYLE: dict[str, Any] = dict(c="black", edgecolors="white", linewidths=0.3, s=7, alpha=1.0, zorder=3)
FAKE_STYLE: dict[str, Any] = dict(c="#ff2244", edgecolors="none", s=4, alpha=0.7, zorder=2)
CENTER_STYLE: dict[str, Any] = dict(marker="+", c="white", s=45, linewidths=1.0, zorder=2.5)
CENTER_OUTLINE = 2.2  # width of the black outline that keeps the white mode markers visible on any colour
HEAT_CMAP = "viridis"
_D_CURVE = "#21918c"  # viridis' middle: the colour of D(x) in the 1D figures


def heatmap_grid(extent: float, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square grid over [-extent, extent]^2: returns ``(xs, ys, points)`` with points of shape (n*n, 2)."""
    xs = np.linspace(-extent, extent, n)
    X, Y = np.meshgrid(xs, xs)
    return xs, xs, np.column_stack([X.ravel(), Y.ravel()])  # (n*n, 2)


def data_extent(dataset: ToyDistribution, margin: float = 0.35) -> float:
    """Half-width of a square (or interval) that frames the toy distribution ``dataset`` with a margin.

    The reach of the data is its ``natural_scale()``, or for a Gaussian mixture the farthest mode centre plus
    three standard deviations; the extent is ``(1 + margin)`` times that reach (grid25: 5.6, ring8: 1.39).
    """
    reach = float(dataset.natural_scale())
    centers = getattr(dataset, "centers", None)
    if centers is not None:
        stds = np.broadcast_to(np.asarray(getattr(dataset, "component_stds", 0.0), dtype=float), (len(centers),))
        reach = max(reach, float((np.abs(np.asarray(centers)).max(axis=1) + 3 * stds).max()))
    return (1.0 + margin) * reach


def _nonempty(x: np.ndarray | None) -> bool:
    return x is not None and len(x) > 0


def _legend(ax: Axes, *more_axes: Axes, marker_size: float | None = None, **kwargs) -> None:
    """A legend of the labelled artists of ``ax`` (and of twin axes), none when nothing labelled is drawn.

    ``marker_size`` sets one size (points^2) for the markers of all scatter plots in the legend.
    """
    handles, labels = ax.get_legend_handles_labels()
    for other in more_axes:
        h, lab = other.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    if not handles:
        return
    legend = ax.legend(handles, labels, **kwargs)
    if marker_size is not None:
        for handle in legend.legend_handles:
            if hasattr(handle, "set_sizes"):
                handle.set_sizes([marker_size])


def _heat_image(ax, heat: np.ndarray, extent: float, *, vmin: float | None = None, vmax: float | None = None):
    return ax.imshow(heat, origin="lower", extent=(-extent, extent, -extent, extent), cmap=HEAT_CMAP, alpha=0.85,
                     vmin=vmin, vmax=vmax)


def _draw_points_2d(ax, real, fake, centers) -> None:
    if _nonempty(real):
        ax.scatter(real[:, 0], real[:, 1], label="real", **REAL_STYLE)
    if _nonempty(fake):
        ax.scatter(fake[:, 0], fake[:, 1], label="generated", **FAKE_STYLE)
    if _nonempty(centers):
        from matplotlib.patheffects import withStroke

        ax.scatter(centers[:, 0], centers[:, 1], label="mode centres", **CENTER_STYLE,
                   path_effects=[withStroke(linewidth=CENTER_OUTLINE, foreground="black")])


def _draw_1d(ax, real, fake, xs, d, centers, extent: float, d_label: str, d_limits=None):
    """Histograms of ``real`` and ``fake`` (N, 1) on ``ax``, and ``d`` over ``xs`` on a twin axis (returned)."""
    bins = np.linspace(-extent, extent, 61)
    if _nonempty(real):
        ax.hist(real[:, 0], bins=bins, density=True, histtype="step", color="black", lw=1.5, zorder=3, label="real")
    if _nonempty(fake):
        ax.hist(fake[:, 0], bins=bins, density=True, color=FAKE_STYLE["c"], alpha=0.5, label="generated")
    if _nonempty(centers):
        ax.scatter(centers[:, 0], np.zeros(len(centers)), marker="x", c="black", s=30, linewidths=1.2, zorder=4,
                   clip_on=False, label="mode centres")
    ax.set_ylabel("density")
    twin = None
    if d is not None:
        twin = ax.twinx()
        twin.plot(xs, d, color=_D_CURVE, lw=1.8, label=d_label)
        twin.set_ylabel(d_label, color=_D_CURVE)
        if d_limits is not None:
            twin.set_ylim(*d_limits)
    ax.set_xlim(-extent, extent)
    return twin


def plot_samples(
    ax: Axes,
    real: np.ndarray | None,
    fake: np.ndarray | None = None,
    d_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    extent: float | None = None,
    title: str = "",
    centers: np.ndarray | None = None,
    colorbar: bool = True,
    d_label: str = "D(x)",
) -> Axes:
    """Real (black) and generated (red) samples, of shape (N, 2) or (N, 1), with the discriminator ``d_fn``.

    2D: points over a heatmap of ``d_fn`` (with a colour bar unless ``colorbar=False``); 1D: histograms under
    the curve of ``d_fn`` on a twin axis. ``fake`` (or ``real``) may be None or empty: only what is drawn is
    in the legend. ``extent`` defaults to 1.15 times the largest |coordinate| of the samples.
    """
    drawn = [np.asarray(x, dtype=float) for x in (real, fake) if _nonempty(x)]
    dim = drawn[0].shape[1] if drawn else (np.asarray(centers).shape[1] if _nonempty(centers) else 2)
    if extent is None:
        extent = 1.15 * max((float(np.abs(x).max()) for x in drawn), default=1.0)
    if dim == 1:
        xs = np.linspace(-extent, extent, 400)
        d = None if d_fn is None else np.asarray(d_fn(xs[:, None]), dtype=float)
        twin = _draw_1d(ax, real, fake, xs, d, centers, extent, d_label)
        ax.set_title(title)
        _legend(ax, *([twin] if twin is not None else []), loc="upper right", fontsize=8)
        return ax
    if d_fn is not None:
        xs, ys, pts = heatmap_grid(extent)
        z = np.asarray(d_fn(pts), dtype=float).reshape(len(ys), len(xs))
        im = _heat_image(ax, z, extent)
        if colorbar:
            ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=d_label)
    _draw_points_2d(ax, real, fake, centers)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_title(title)
    _legend(ax, loc="upper right", fontsize=8, framealpha=0.9, marker_size=25)
    return ax


def equilibrium_losses(loss: str) -> dict[str, tuple[float, str]]:
    """The logged losses' values when D(x) = 1/2 everywhere, for the cross-entropy losses ``"gan"`` and ``"ns"``.

    Returns ``{history key: (value, label)}``; empty for the other losses of ``gancourse.nn.LOSSES``.
    The discriminator's cross entropy is ``log 4`` (also with one-sided label smoothing); the generator's is
    ``log 2`` for the non-saturating loss ``-E log D(G(z))`` and ``-log 2`` for the minimax ``E log(1 - D(G(z)))``.
    """
    check_choice("loss", loss, LOSSES)
    if loss not in ("gan", "ns"):
        return {}
    d_ref = (math.log(4.0), f"D loss at D = 1/2: log 4 ≈ {math.log(4.0):.3f}")
    if loss == "ns":
        g_ref = (math.log(2.0), f"G loss at D = 1/2: log 2 ≈ {math.log(2.0):.3f}")
    else:
        g_ref = (-math.log(2.0), f"G loss at D = 1/2: -log 2 ≈ {-math.log(2.0):.3f}")
    return {"d_loss": d_ref, "g_loss": g_ref}


_LOSS_COLORS = {"d_loss": "tab:blue", "g_loss": "tab:orange", "penalty": "tab:green"}


def plot_losses(
    ax: Axes, history: Mapping[str, Sequence[float]], *, smooth: int = 20, loss: str | None = None
) -> Axes:
    """Discriminator and generator losses (and the penalty if any) against the step, with a moving average.

    With ``loss`` (the run's loss name) the values at the equilibrium D = 1/2 of the cross-entropy losses
    (see :func:`equilibrium_losses`) are drawn as dashed lines in the colour of their curve. A run too short
    to have logged a loss gets a note in the axes instead of curves.
    """
    references = {} if loss is None else equilibrium_losses(loss)
    steps = np.asarray(history["step"])
    drawn = []
    for key, color in _LOSS_COLORS.items():
        y = np.asarray(history.get(key, []), dtype=float)
        if y.size == 0 or (key == "penalty" and not np.any(y)):
            continue
        ax.plot(steps, y, color=color, alpha=0.25, lw=0.8)
        k = max(1, min(smooth, y.size))
        ys = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], ys, color=color, lw=1.5, label=key.replace("_", " "))
        drawn.append(key)
    for key in drawn:
        if key in references:
            value, label = references[key]
            ax.axhline(value, color=_LOSS_COLORS[key], ls="--", lw=1.0, alpha=0.9, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no losses logged yet", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.grid(alpha=0.3)
    return ax


class Snapshot(dict):
    """One animation frame: ``step``, generated ``fake`` samples and the discriminator ``heat`` on a grid.

    2D: ``heat`` is (n, n) over :func:`heatmap_grid`; 1D: (n,) over ``np.linspace(-extent, extent, n)``.
    """


def _heat_limits(frames: Sequence[Snapshot]) -> tuple[float, float]:
    """One colour scale for all frames: [0, 1] for probabilities, else the range over the frames."""
    lo = min(float(np.min(fr["heat"])) for fr in frames)
    hi = max(float(np.max(fr["heat"])) for fr in frames)
    if 0.0 <= lo and hi <= 1.0:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def animation_frame(
    frame: Snapshot,
    *,
    real: np.ndarray,
    extent: float,
    vmin: float | None = None,
    vmax: float | None = None,
    label: str = "D(x)",
    title: str = "",
) -> Figure:
    """The figure of one animation frame: generated samples over ``real`` ones and the discriminator.

    2D: over the heatmap, with a colour bar labelled ``label`` (scale ``vmin``..``vmax``); 1D: histograms under
    the curve of D on a twin axis. Titled ``"<title>, step <step>"``.
    """
    import matplotlib.pyplot as plt

    heat = np.asarray(frame["heat"], dtype=float)
    step_title = f"{title}, step {frame['step']}" if title else f"step {frame['step']}"
    if real.shape[1] == 1:
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=80)
        xs = np.linspace(-extent, extent, len(heat))
        d_limits = None if vmin is None or vmax is None else (vmin, vmax)
        twin = _draw_1d(ax, real, frame["fake"], xs, heat, None, extent, label, d_limits)
        _legend(ax, twin, loc="upper right", fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(4.8, 4), dpi=80)
        im = _heat_image(ax, heat, extent, vmin=vmin, vmax=vmax)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
        fake = frame["fake"]
        ax.scatter(fake[:, 0], fake[:, 1], **{**FAKE_STYLE, "s": 3})
        ax.scatter(real[:, 0], real[:, 1], **{**REAL_STYLE, "s": 5, "linewidths": 0.25})
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(step_title)
    fig.tight_layout()
    return fig


def save_animation(
    frames: Sequence[Snapshot],
    path: str | Path,
    *,
    real: np.ndarray,
    extent: float,
    fps: int = 4,
    label: str = "D(x)",
    title: str = "",
) -> Path:
    """Render ``frames`` (from :class:`Snapshot`) to an animated GIF with Pillow, one colour scale for all."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    if not frames:
        raise ValueError("save_animation needs at least one frame")
    vmin, vmax = _heat_limits(frames)
    images = []
    for fr in frames:
        fig = animation_frame(fr, real=real, extent=extent, vmin=vmin, vmax=vmax, label=label, title=title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        buf.seek(0)
        images.append(Image.open(buf).convert("P", palette=Image.ADAPTIVE))
    path = Path(path)
    atomic_write(path, lambda fh: images[0].save(fh, format="GIF", save_all=True, append_images=images[1:],
                                                 duration=int(1000 / fps), loop=0))
    return path
