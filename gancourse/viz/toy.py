"""Figures for the toy GANs: samples over the discriminator's heatmap, loss curves, training animations."""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from gancourse.io import atomic_write

__all__ = ["heatmap_grid", "plot_samples", "plot_losses", "Snapshot", "save_animation"]


def heatmap_grid(extent: float, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square grid over [-extent, extent]^2: returns ``(xs, ys, points)`` with points of shape (n*n, 2)."""
    xs = np.linspace(-extent, extent, n)
    X, Y = np.meshgrid(xs, xs)
    return xs, xs, np.column_stack([X.ravel(), Y.ravel()])  # (n*n, 2)


def plot_samples(
    ax,
    real: np.ndarray,
    fake: np.ndarray,
    d_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    extent: float | None = None,
    title: str = "",
    centers: np.ndarray | None = None,
):
    """Real (grey) and generated (red) 2D samples over a heatmap of ``d_fn`` (the discriminator)."""
    if extent is None:
        extent = 1.15 * float(np.abs(real).max())
    if d_fn is not None:
        xs, ys, pts = heatmap_grid(extent)
        z = d_fn(pts).reshape(len(ys), len(xs))
        im = ax.imshow(z, origin="lower", extent=(-extent, extent, -extent, extent), cmap="viridis", alpha=0.85)
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.85", alpha=0.6, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.6, label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", s=20, c="k", linewidths=0.8, label="modes")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    return ax


def plot_losses(ax, history: Mapping[str, Sequence[float]], *, smooth: int = 20):
    """Discriminator and generator losses (and the penalty if any) against the step, with a moving average.

    A run too short to have logged a loss gets a note in the axes instead of curves.
    """
    steps = np.asarray(history["step"])
    drawn = False
    for key, color in (("d_loss", "tab:blue"), ("g_loss", "tab:orange"), ("penalty", "tab:green")):
        y = np.asarray(history.get(key, []), dtype=float)
        if y.size == 0 or (key == "penalty" and not np.any(y)):
            continue
        ax.plot(steps, y, color=color, alpha=0.25, lw=0.8)
        k = max(1, min(smooth, y.size))
        ys = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], ys, color=color, lw=1.5, label=key.replace("_", " "))
        drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if drawn:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no losses logged yet", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.grid(alpha=0.3)
    return ax


class Snapshot(dict):
    """One animation frame: ``step``, generated ``fake`` samples and the discriminator ``heat`` on a grid."""


def save_animation(
    frames: Sequence[Snapshot],
    path: str | Path,
    *,
    real: np.ndarray,
    extent: float,
    fps: int = 4,
) -> Path:
    """Render ``frames`` (from :class:`Snapshot`) to an animated GIF with Pillow."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    if not frames:
        raise ValueError("save_animation needs at least one frame")
    images = []
    for fr in frames:
        fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
        ax.imshow(fr["heat"], origin="lower", extent=(-extent, extent, -extent, extent), cmap="viridis", alpha=0.85)
        ax.scatter(real[:, 0], real[:, 1], s=1, c="0.85", alpha=0.5)
        ax.scatter(fr["fake"][:, 0], fr["fake"][:, 1], s=1, c="tab:red", alpha=0.6)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_title(f"step {fr['step']}")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        buf.seek(0)
        images.append(Image.open(buf).convert("P", palette=Image.ADAPTIVE))
    path = Path(path)
    atomic_write(path, lambda fh: images[0].save(fh, format="GIF", save_all=True, append_images=images[1:],
                                                 duration=int(1000 / fps), loop=0))
    return path
