"""StackedMNIST in ``gancourse train``: 1000 modes, counted the VEEGAN / PacGAN way (notebook 20).

The evaluation draws ``N_SCORE = 26,000`` samples (2,600 for a smoke run) from noise with
:meth:`StackedTrainer.sample`'s fixed seed, reads each channel with the course's LeNet, and reports, each
beside its floor and ceiling:

- ``modes``: how many of the 1000 modes have at least one sample; floor: as many real stacked images
  built from the 1,000 held-out digits (:func:`gancourse.deep.stacked_mnist.real_floor`), ceiling: the same
  networks untrained;
- ``reverse_kl``: ``KL(q || uniform)`` of the generated mode histogram (same floor and ceiling).

They are the first two rows of ``metrics.json``'s ``report`` (``report["modes"]["trained"]``).

``samples.npz``: ``images`` uint8 (26000, 3, 32, 32), the samples as ``round((x + 1) * 127.5)``; map them
back to [-1, 1] with ``x / 127.5 - 1`` (:func:`gancourse.deep.stacked_mnist.from_uint8`); ``modes`` int64
(26000,), each sample's mode as the LeNet read it. :func:`score_samples` recomputes both numbers from the
file. ``samples.png``: the first 100 samples, 10 to a row.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.stacked_mnist import (
    N_SCORE,
    from_uint8,
    mode_histogram,
    modes_covered,
    real_floor,
    reverse_kl,
    sample_modes,
    score_samples,
    to_uint8,
)
from gancourse.deep.train_stacked import StackedConfig, StackedTrainer, stacked_preset
from gancourse.tiers import pick

__all__ = ["STACKED", "N_SCORE", "N_GRID", "n_scored", "score_samples", "build", "evaluate"]

N_GRID = 100  # samples in samples.png


def n_scored(preset: str) -> int:
    """Samples scored and kept: the protocol's 26,000, or 2,600 for a smoke run (a test of seconds)."""
    return pick(preset, smoke=N_SCORE // 10, lecture=N_SCORE, full=N_SCORE)


@lru_cache(maxsize=4)
def _floor(n: int) -> tuple[int, float]:
    f = real_floor(n)
    return f["modes"], f["reverse_kl"]


def build(config: StackedConfig, device: torch.device) -> StackedTrainer:
    """A trainer on stacks of the 4,000 MNIST-5k training digits."""
    digits, labels = mnist5k("train")
    return StackedTrainer(config, digits, labels, device)


def evaluate(trainer: StackedTrainer, preset: str) -> Evaluation:
    """The rows of the module docstring, the samples (uint8) with their modes, and a grid of 100."""
    n = n_scored(preset)
    lenet = load_lenet(trainer.device)
    images = to_uint8(trainer.sample(n))  # (n, 3, 32, 32) uint8, as samples.npz keeps them
    samples = from_uint8(images)  # scored as stored, so that score_samples(samples.npz) gives the same numbers
    untrained = StackedTrainer(trainer.config, trainer.digits, trainer.digit_labels, trainer.device).sample(n)
    modes = sample_modes(samples, lenet)
    counts, ceiling = mode_histogram(modes), mode_histogram(sample_modes(untrained, lenet))
    floor_modes, floor_kl = _floor(n)
    report: dict = {}
    add_metric(report, "modes", floor_modes, modes_covered(counts), modes_covered(ceiling), better="higher")
    add_metric(report, "reverse_kl", floor_kl, reverse_kl(counts), reverse_kl(ceiling), better="lower")
    arrays = {"images": images, "modes": np.asarray(modes, dtype=np.int64)}
    summary = {"modes": report["modes"]["trained"], "reverse_kl": report["reverse_kl"]["trained"]}
    return Evaluation(report, arrays, Grid(samples[:N_GRID], nrow=10), summary)


def snapshot_grid(trainer: StackedTrainer, snapshot: tuple) -> Grid:
    """``G(fixed_z)`` at one step of training, 8 to a row."""
    _, images = snapshot
    return Grid(images, nrow=8)


STACKED = ModelSpec(config_class=StackedConfig, preset=stacked_preset, kind=StackedTrainer.KIND, build=build,
                    evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=3, image_size=32),
                    ignored=())
