"""R3GAN in ``gancourse train``: MNIST-5k, and the metric report of notebook 19.

The training digits, the report and ``samples.npz`` are DCGAN's (:mod:`gancourse.deep.runs.digits`): FD-LeNet,
classifier score and class-histogram KL of ``N_EVAL`` samples of the EMA generator against held-out digits, beside
a floor of real digits and a ceiling of the untrained networks.
"""
from __future__ import annotations

from gancourse.deep.runs.digits import N_EVAL, N_SAMPLES, digits_builder, evaluate_digits, snapshot_grid
from gancourse.deep.runs.spec import ModelSpec
from gancourse.deep.train_r3gan import R3GANConfig, R3GANTrainer, r3gan_preset

__all__ = ["R3GAN", "N_EVAL", "N_SAMPLES"]

R3GAN = ModelSpec(config_class=R3GANConfig, preset=r3gan_preset, kind=R3GANTrainer.KIND,
                  build=digits_builder(R3GANTrainer), evaluate=evaluate_digits, snapshot_grid=snapshot_grid,
                  fixed=dict(channels=1, image_size=32))
