"""The Progressive GAN in ``gancourse train``: MNIST-5k grown 4 -> 8 -> 16 -> 32, and notebook 16's report.

The report is DCGAN's (:func:`gancourse.deep.metrics.metric_report`): FD-LeNet, classifier score and
class-histogram KL of ``N_EVAL`` samples at 32x32 (alpha = 1, the averaged generator) against ``N_EVAL``
held-out digits, beside the floor (another ``N_EVAL`` held-out digits) and the ceiling (the same networks before
training). The images seen and the final resolution go to ``metrics.json`` with the losses (``final_losses``:
``images_seen``, ``resolution``, ``alpha``), beside the training wall time (``seconds``).

``samples.npz``: ``images`` float32 (N_SAMPLES, 1, 32, 32) in [-1, 1]. Snapshots taken at 4x4 .. 16x16 are
upsampled (nearest neighbour) to 32x32 for their grids, so every grid has the same size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import metric_report
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_pggan import PGGANConfig, PGGANTrainer, pggan_preset

__all__ = ["PGGAN", "N_EVAL", "N_SAMPLES", "to_size"]

N_EVAL = 500  # images per set in the metric report, as for DCGAN (FD's bias depends on it)
N_SAMPLES = 1000  # samples kept in samples.npz
N_GRID = 64  # samples shown in samples.png


def to_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, r, r) upsampled by nearest neighbour to (N, C, size, size) (unchanged if r = size)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="nearest")


def build(config: PGGANConfig, device: torch.device) -> PGGANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits."""
    images, _ = mnist5k("train")
    return PGGANTrainer(config, images, device)


def evaluate(trainer: PGGANTrainer, preset: str) -> Evaluation:
    """FD-LeNet, classifier score and class-histogram KL at 32x32 (floor, trained, ceiling)."""
    held, _ = mnist5k("heldout")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    samples = trainer.sample(N_SAMPLES)  # (N_SAMPLES, 1, 32, 32), the final resolution
    untrained = PGGANTrainer(trainer.config, trainer.images, trainer.device).sample(N_EVAL)
    report = metric_report(real_a, real_b, samples[:N_EVAL], untrained, load_lenet(trainer.device))
    return Evaluation(report, {"images": samples.numpy()}, Grid(samples[:N_GRID], nrow=8))


def snapshot_grid(trainer: PGGANTrainer, snapshot: tuple) -> Grid:
    """``G_ema(fixed_z)`` at one step of training, at that step's resolution, upsampled to the final size."""
    _, images = snapshot
    return Grid(to_size(images, trainer.config.image_size), nrow=8)


PGGAN = ModelSpec(config_class=PGGANConfig, preset=pggan_preset, kind=PGGANTrainer.KIND, build=build,
                  evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=1, image_size=32))
