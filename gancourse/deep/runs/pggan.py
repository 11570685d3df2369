"""The Progressive GAN in ``gancourse train``: MNIST-5k grown 4 -> 8 -> 16 -> 32, and notebook 16's report.

The report is DCGAN's (:mod:`gancourse.deep.runs.digits`): FD-LeNet, classifier score and class-histogram KL of
``N_EVAL`` samples at 32x32 (alpha = 1, the averaged generator) against ``N_EVAL`` held-out digits, beside the
floor (another ``N_EVAL`` held-out digits) and the ceiling (the same networks before training). The images seen
and the final resolution go to ``metrics.json`` with the losses (``final_losses``: ``images_seen``,
``resolution``, ``alpha``), beside the training wall time (``seconds``).

``samples.npz``: ``images`` float32 (N_SAMPLES, 1, 32, 32) in [-1, 1]. Snapshots taken at 4x4 .. 16x16 are
upsampled (nearest neighbour) to 32x32 for their grids, so every grid has the same size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gancourse.deep.runs.digits import N_EVAL, N_SAMPLES, digits_builder, evaluate_digits
from gancourse.deep.runs.spec import Grid, ModelSpec
from gancourse.deep.train_pggan import PGGANConfig, PGGANTrainer, pggan_preset

__all__ = ["PGGAN", "N_EVAL", "N_SAMPLES", "to_size"]


def to_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, r, r) upsampled by nearest neighbour to (N, C, size, size) (unchanged if r = size)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="nearest")


def snapshot_grid(trainer: PGGANTrainer, snapshot: tuple) -> Grid:
    """``G_ema(fixed_z)`` at one step of training, at that step's resolution, upsampled to the final size."""
    _, images = snapshot
    return Grid(to_size(images, trainer.config.image_size), nrow=8)


PGGAN = ModelSpec(config_class=PGGANConfig, preset=pggan_preset, kind=PGGANTrainer.KIND,
                  build=digits_builder(PGGANTrainer), evaluate=evaluate_digits, snapshot_grid=snapshot_grid,
                  fixed=dict(channels=1, image_size=32))
