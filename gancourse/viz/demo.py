"""``gancourse demo``: the recommended recipe on grid25, compared with published rows, with figures."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from gancourse.errors import OutputPathError
from gancourse.io import atomic_write, check_output_path, json_dumps
from gancourse.toy.config import recommended
from gancourse.toy.report import PUBLISHED_GRID25, comparison_table
from gancourse.toy.trainer import ToyGAN

__all__ = ["run_demo"]


def _snapshot_callback(frames: list, extent: float, n_frames: int):
    from gancourse.viz.toy import Snapshot, heatmap_grid

    xs, ys, pts = heatmap_grid(extent, 80)

    def callback(gan: ToyGAN) -> None:
        heat = gan.discriminator(pts).reshape(len(ys), len(xs))
        frames.append(Snapshot(step=gan.step, fake=gan.sample(600, raw=True), heat=heat))

    return callback


def _check_out(out: Path) -> None:
    """``out`` must be a folder, or a path where one can be made: checked before training."""
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"--out {out} exists and is not a folder; give a folder for the figures")
    check_output_path(out / "metrics.json", what="--out")


def _save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def run_demo(
    out: str | Path = "gancourse-out/demo",
    seed: int = 0,
    steps: int | None = None,
    gif: bool = True,
    progress: bool | None = None,
    n_frames: int = 24,
) -> dict:
    """Train, print the comparison table, write ``samples.png``, ``losses.png``, ``training.gif`` and ``metrics.json``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from gancourse.viz.toy import plot_losses, plot_samples, save_animation

    cfg = recommended("grid25", seed=seed)
    if steps is not None:
        cfg = cfg.replace(steps=steps)  # validated there: a whole number of steps
    out = Path(out)
    _check_out(out)
    gan = ToyGAN(cfg)
    extent = 5.5
    frames: list = []
    callbacks = [_snapshot_callback(frames, extent, n_frames)] if gif else []
    every = max(1, cfg.steps // n_frames)
    print(f"Training the recommended recipe on grid25 ({cfg.steps} steps, seed {seed}) ...", flush=True)
    result = {"data": cfg.data, "seed": seed}
    import time

    t0 = time.perf_counter()
    gan.train(callbacks=callbacks, callback_every=every, progress=progress)
    metrics = gan.evaluate()
    result.update(metrics, steps=gan.step, seconds=round(time.perf_counter() - t0, 1))

    rows = [*PUBLISHED_GRID25, {"method": f"gancourse recipe (seed {seed})", **metrics}]
    print()
    print(comparison_table(rows))
    print(f"\n{gan.step} steps in {result['seconds']} s")

    real = gan.dataset.sample(2500, np.random.default_rng(seed + 100))
    fake = gan.sample(2500)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    plot_samples(axes[0], real, real[:0], gan.discriminator, extent=extent, title="real data over D(x)")
    plot_samples(axes[1], real, fake, gan.discriminator, extent=extent,
                 title=f"generated: {metrics['modes']} modes, HQ {100 * metrics['hq']:.1f}%",
                 centers=gan.dataset.centers)
    fig.tight_layout()
    _save_figure(fig, out / "samples.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    plot_losses(ax, gan.history)
    ax.set_title("grid25: losses during training")
    fig.tight_layout()
    _save_figure(fig, out / "losses.png")
    plt.close(fig)

    written = ["samples.png", "losses.png"]
    if gif and frames:
        save_animation(frames, out / "training.gif", real=real[:1000], extent=extent)
        written.append("training.gif")
    text = json_dumps(result, indent=2)
    atomic_write(out / "metrics.json", lambda fh: fh.write(text.encode("utf-8")))
    written.append("metrics.json")
    print(f"Figures written to {out.resolve()}/: {', '.join(written)}")
    return result
