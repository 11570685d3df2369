"""R3GAN in ``gancourse train``: MNIST-5k, and the metric report of notebook 19.

As for DCGAN (:mod:`gancourse.deep.runs.gan`), the report (:func:`gancourse.deep.metrics.metric_report`)
compares ``N_EVAL`` generated digits with ``N_EVAL`` held-out ones, beside the floor (another ``N_EVAL``
held-out digits, disjoint: :func:`gancourse.deep.splits.reference_halves`) and the ceiling (the same
networks before training): FD-LeNet, classifier score and class-histogram KL. ``samples.npz`` holds
``images``: ``N_SAMPLES`` samples of the EMA generator, float32 (N, 1, 32, 32) in [-1, 1], drawn with
:meth:`R3GANTrainer.sample`'s fixed noise seed; the report scores the first ``N_EVAL`` of them.
"""
from __future__ import annotations

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import metric_report
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_r3gan import R3GANConfig, R3GANTrainer, r3gan_preset

__all__ = ["R3GAN", "N_EVAL", "N_SAMPLES"]

N_EVAL = 500  # images per set in the metric report, as for DCGAN (FD's bias depends on it)
N_SAMPLES = 1000  # samples kept in samples.npz
N_GRID = 64  # samples shown in samples.png


def build(config: R3GANConfig, device: torch.device) -> R3GANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits."""
    images, _ = mnist5k("train")
    return R3GANTrainer(config, images, device)


def evaluate(trainer: R3GANTrainer, preset: str) -> Evaluation:
    """FD-LeNet, classifier score and class-histogram KL against the held-out digits (floor, trained, ceiling)."""
    held, _ = mnist5k("heldout")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    samples = trainer.sample(N_SAMPLES)  # (N_SAMPLES, 1, 32, 32)
    untrained = R3GANTrainer(trainer.config, trainer.images, trainer.device).sample(N_EVAL)
    report = metric_report(real_a, real_b, samples[:N_EVAL], untrained, load_lenet(trainer.device))
    return Evaluation(report, {"images": samples.numpy()}, Grid(samples[:N_GRID], nrow=8))


def snapshot_grid(trainer: R3GANTrainer, snapshot: tuple) -> Grid:
    """The EMA generator's ``G(fixed_z)`` at one step of training."""
    _, images = snapshot
    return Grid(images, nrow=8)


R3GAN = ModelSpec(config_class=R3GANConfig, preset=r3gan_preset, kind=R3GANTrainer.KIND, build=build,
                  evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=1, image_size=32))
