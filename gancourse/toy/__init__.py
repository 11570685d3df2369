"""1D/2D toy distributions, the NumPy GAN trainer, toy metrics, and the engine experiments (``engine_demos``)."""
from gancourse.toy.config import ToyConfig, plain_gan, recommended
from gancourse.toy.distributions import DATASETS, get_dataset
from gancourse.toy.metrics import energy_distance, mode_metrics, sliced_wasserstein1, toy_metrics, wasserstein1_1d
from gancourse.toy.trainer import ToyGAN, smoke_mode

__all__ = [
    "ToyConfig", "plain_gan", "recommended", "DATASETS", "get_dataset", "ToyGAN", "smoke_mode",
    "mode_metrics", "toy_metrics", "wasserstein1_1d", "energy_distance", "sliced_wasserstein1",
]
