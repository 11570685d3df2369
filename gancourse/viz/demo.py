"""``gancourse demo``: a preset recipe on a toy dataset, its metrics (with published rows on grid25), figures."""
from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gancourse.errors import check_choice
from gancourse.io import atomic_write, check_output_folder, json_dumps
from gancourse.toy.config import ToyConfig, plain_gan, recommended
from gancourse.toy.distributions import DATASETS, GaussianMixture
from gancourse.toy.report import PUBLISHED_GRID25, comparison_table, format_metrics
from gancourse.toy.trainer import ToyGAN

__all__ = ["run_demo", "PRESETS"]

#: the recipes ``run_demo`` trains: name -> (builder of the config for a dataset, words for messages and titles)
PRESETS: dict[str, tuple[Callable[..., ToyConfig], str]] = {
    "recommended": (recommended, "recommended recipe"),
    "plain": (plain_gan, "plain GAN"),
}
_ROW_NAMES = {"recommended": "gancourse recipe", "plain": "gancourse plain GAN"}
_GRID = 80  # heatmap (or curve) resolution of the animation frames


def _snapshot_callback(frames: list, extent: float, dim: int) -> Callable[[ToyGAN], None]:
    """A training callback that appends a :class:`Snapshot` (raw generator, discriminator on a grid) to ``frames``."""
    from gancourse.viz.toy import Snapshot, heatmap_grid

    if dim == 1:
        pts = np.linspace(-extent, extent, 2 * _GRID)[:, None]  # (n, 1)
        shape: tuple[int, ...] = (len(pts),)
    else:
        xs, ys, pts = heatmap_grid(extent, _GRID)
        shape = (len(ys), len(xs))

    def callback(gan: ToyGAN) -> None:
        heat = gan.discriminator(pts).reshape(shape)
        frames.append(Snapshot(step=gan.step, fake=gan.sample(600, raw=True), heat=heat))

    return callback


def _save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _summary(metrics: dict, n_modes: int | None) -> str:
    """The headline metrics of a run, for a panel title."""
    if "modes" in metrics:
        return f"{metrics['modes']}/{n_modes} modes, HQ {100 * metrics['hq']:.1f}%"
    if "energy" in metrics:
        return f"energy distance {metrics['energy']:.3g}"
    if "w1" in metrics:
        return f"W1 {metrics['w1']:.3g}"
    return ""


def _print_metrics(data: str, row: dict, metrics: dict) -> None:
    """The comparison table: with the published rows on grid25, the course's row (or metrics) alone elsewhere."""
    print()
    if data == "grid25":
        print(comparison_table([*PUBLISHED_GRID25, row]))
        return
    print(comparison_table([row]) if "modes" in metrics else f"{row['method']}\n{format_metrics(metrics)}")
    print("(published rows exist only for grid25)")


def run_demo(
    out: str | Path = "gancourse-out/demo",
    seed: int = 0,
    steps: int | None = None,
    gif: bool = True,
    progress: bool | None = None,
    n_frames: int = 24,
    data: str = "grid25",
    preset: str = "recommended",
) -> dict:
    """Train ``preset`` (``"recommended"`` or ``"plain"``) on the toy dataset ``data``, print its metrics.

    Writes ``samples.png``, ``losses.png``, ``training.gif`` (unless ``gif=False``: about ``n_frames`` frames
    from step 0 to the last) and ``metrics.json`` to the folder ``out``; returns the metrics. Invalid names
    raise a ValueError listing the valid ones, before training.
    """
    check_choice("data", data, DATASETS)
    check_choice("preset", preset, PRESETS)
    build, words = PRESETS[preset]
    cfg = build(data, seed=seed)
    if steps is not None:
        cfg = cfg.replace(steps=steps)  # validated there: a whole number of steps
    out = check_output_folder(out, ["metrics.json"], holds="the figures")  # before training

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from gancourse.viz.toy import data_extent, plot_losses, plot_samples, save_animation

    gan = ToyGAN(cfg)
    ds = gan.dataset
    extent = data_extent(ds)
    centers = ds.centers if isinstance(ds, GaussianMixture) else None
    n_modes = None if centers is None else len(centers)
    frames: list = []
    snapshot = _snapshot_callback(frames, extent, gan.dim)
    every = max(1, math.ceil(cfg.steps / n_frames))
    print(f"Training the {words} on {data} ({cfg.steps} steps, seed {seed}) ...", flush=True)
    result = {"data": cfg.data, "preset": preset, "seed": seed}

    t0 = time.perf_counter()
    if gif:
        snapshot(gan)  # step 0: before training
    gan.train(callbacks=[snapshot] if gif else [], callback_every=every, progress=progress)
    if gif and frames[-1]["step"] != gan.step:
        snapshot(gan)
    metrics = gan.evaluate()
    result.update(metrics, steps=gan.step, seconds=round(time.perf_counter() - t0, 1))

    row = {"method": f"{_ROW_NAMES[preset]} (seed {seed})", **metrics}
    _print_metrics(data, row, metrics)
    print(f"\n{gan.step} steps in {result['seconds']} s")

    real = ds.sample(2500, np.random.default_rng(seed + 100))
    fake = gan.sample(2500)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    plot_samples(axes[0], real, None, gan.discriminator, extent=extent, title="real data over D(x)")
    plot_samples(axes[1], real, fake, gan.discriminator, extent=extent,
                 title=f"generated: {_summary(metrics, n_modes)}", centers=centers)
    fig.suptitle(f"{data}, {words}: {gan.step} steps, seed {seed}")
    fig.tight_layout()
    _save_figure(fig, out / "samples.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    n_logged = len(gan.history["step"])
    plot_losses(ax, gan.history, smooth=min(20, max(1, n_logged // 5)), loss=cfg.loss)
    ax.set_title(f"{data}, {words}: losses during training")
    fig.tight_layout()
    _save_figure(fig, out / "losses.png")
    plt.close(fig)

    written = ["samples.png", "losses.png"]
    if gif:
        save_animation(frames, out / "training.gif", real=real[:1000], extent=extent, title=data)
        written.append("training.gif")
    text = json_dumps(result, indent=2)
    atomic_write(out / "metrics.json", lambda fh: fh.write(text.encode("utf-8")))
    written.append("metrics.json")
    print(f"Figures written to {out.resolve()}/: {', '.join(written)}")
    return result
