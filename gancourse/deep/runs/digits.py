"""What the unconditional digit generators of ``gancourse train`` share (DCGAN, WGAN-GP, PGGAN, R3GAN): the
training digits, the metric report and the snapshot grids.

The report (:func:`gancourse.deep.metrics.metric_report`) compares ``N_EVAL`` generated digits with ``N_EVAL``
held-out ones, beside the floor (another ``N_EVAL`` held-out digits, disjoint:
:func:`gancourse.deep.splits.reference_halves`) and the ceiling (the same networks before training: a fresh
trainer of the same config). ``samples.npz`` holds ``images``: ``N_SAMPLES`` samples, float32 (N, 1, 32, 32) in
[-1, 1], drawn with the trainer's fixed noise seed; the report scores the first ``N_EVAL`` of them.

A trainer here is built as ``Trainer(config, images, device)`` and draws with ``sample(n)``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import metric_report
from gancourse.deep.runs.spec import Evaluation, Grid
from gancourse.deep.splits import reference_halves

__all__ = ["N_EVAL", "N_SAMPLES", "N_GRID", "digits_builder", "evaluate_digits", "snapshot_grid"]

N_EVAL = 500  # images per set in the metric report (FD's bias depends on it)
N_SAMPLES = 1000  # samples kept in samples.npz
N_GRID = 64  # samples shown in samples.png


def digits_builder(trainer_class: type) -> Callable[[object, torch.device], object]:
    """``build(config, device)``: a ``trainer_class`` on the 4,000 MNIST-5k training digits."""

    def build(config, device: torch.device):
        images, _ = mnist5k("train")
        return trainer_class(config, images, device)

    build.__doc__ = f"A {trainer_class.__name__} on the 4,000 MNIST-5k training digits."
    return build


def evaluate_digits(trainer, preset: str) -> Evaluation:
    """FD-LeNet, classifier score and class-histogram KL against the held-out digits (floor, trained, ceiling)."""
    held, _ = mnist5k("heldout")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    samples = trainer.sample(N_SAMPLES)  # (N_SAMPLES, 1, 32, 32)
    untrained = type(trainer)(trainer.config, trainer.images, trainer.device).sample(N_EVAL)
    report = metric_report(real_a, real_b, samples[:N_EVAL], untrained, load_lenet(trainer.device))
    return Evaluation(report, {"images": samples.numpy()}, Grid(samples[:N_GRID], nrow=8))


def snapshot_grid(trainer, snapshot: tuple) -> Grid:
    """The generator's images of its fixed noise at one step of training (a snapshot ``(step, images)``)."""
    _, images = snapshot
    return Grid(images, nrow=8)
