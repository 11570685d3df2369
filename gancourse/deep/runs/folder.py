"""The run folder of ``gancourse train``: checked before training, then filled with the run's files.

``OUT/checkpoint.pt`` (the whole training state), ``OUT/metrics.json`` (written last: a folder that holds it
holds a finished run), ``OUT/samples.npz``, ``OUT/samples.png`` and ``OUT/snapshots/step-NNNNNNN.png`` (the
samples kept during training). Nothing else in the folder is touched; every file is written atomically
(:func:`gancourse.io.atomic_write`).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from gancourse.errors import OutputPathError
from gancourse.io import atomic_write, check_output_folder, json_dumps
from gancourse.viz.images import make_grid

__all__ = ["RunFolder", "default_out", "check_run_folder"]

CHECKPOINT, METRICS, SAMPLES_NPZ, SAMPLES_PNG, SNAPSHOTS = (
    "checkpoint.pt", "metrics.json", "samples.npz", "samples.png", "snapshots")
#: files whose presence means that a folder holds a run
RUN_FILES = (CHECKPOINT, METRICS)


def default_out(model: str, preset: str, seed: int) -> Path:
    """``gancourse-out/train/MODEL-PRESET-seedS``, relative to the working folder."""
    return Path("gancourse-out") / "train" / f"{model}-{preset}-seed{seed}"


@dataclass(frozen=True)
class RunFolder:
    """The files of one run under ``path``."""

    path: Path

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def samples_npz(self) -> Path:
        return self.path / SAMPLES_NPZ

    @property
    def samples_png(self) -> Path:
        return self.path / SAMPLES_PNG

    def snapshot_png(self, step: int) -> Path:
        return self.path / SNAPSHOTS / f"step-{step:07d}.png"

    def write_json(self, record: dict[str, Any]) -> Path:
        """``metrics.json``: strict JSON (non-finite numbers become null)."""
        text = json_dumps(record, indent=1) + "\n"
        return atomic_write(self.metrics, lambda fh: fh.write(text.encode("utf-8")))

    def write_npz(self, arrays: dict[str, np.ndarray]) -> Path:
        """``samples.npz`` (compressed), loadable with ``np.load`` without pickle."""
        return atomic_write(self.samples_npz, lambda fh: np.savez_compressed(fh, **arrays))


def write_png(path: Path, images: Any, nrow: int) -> Path:
    """Tile images (N, C, H, W) in [-1, 1] with :func:`gancourse.viz.images.make_grid` into a PNG (grey if C = 1)."""
    grid = make_grid(images, nrow=nrow)  # (rows, cols, C) in [0, 1]
    buf = io.BytesIO()
    if grid.shape[2] == 1:
        plt.imsave(buf, grid[:, :, 0], cmap="gray", vmin=0.0, vmax=1.0, format="png")
    else:
        plt.imsave(buf, grid, format="png")
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _same_folder(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def check_run_folder(out: Path, resume: Path | None) -> RunFolder:
    """Refuse, before any training, a run folder that cannot or must not be written; nothing is created here.

    Refused with an :class:`~gancourse.errors.OutputPathError` (a ValueError): ``out`` exists and is not a
    folder; ``out`` already holds a run (a checkpoint.pt or metrics.json) and ``resume`` is not a file in it;
    any of the run's files that cannot be written (a folder in its place, no permission).
    """
    folder = RunFolder(out)
    files = (folder.checkpoint, folder.metrics, folder.samples_npz, folder.samples_png, folder.snapshot_png(0))
    check_output_folder(out, [p.relative_to(out) for p in files], holds="the run's files")
    held = [name for name in RUN_FILES if os.path.lexists(out / name)]
    if held and not (resume is not None and _same_folder(resume.parent, out)):
        raise OutputPathError(f"--out {out} already holds a run ({', '.join(held)}); continue it with --resume "
                              f"{folder.checkpoint}, or choose another --out")
    return folder
