"""The semi-supervised GAN in ``gancourse train``: 100 labels of MNIST-5k, and notebook 13's report.

Training sees the 4,000 MNIST-5k training digits, of which ``labels_per_class`` per class keep their labels
(:func:`gancourse.deep.train_ssgan.draw_labeled`); the 1,000 held-out digits are the test set. The report:

- ``held-out error``: the share of held-out digits misclassified, with floor = the course's LeNet
  (:func:`gancourse.deep.lenet.load_lenet`, a convolutional net trained on all 4,000 labels: what full
  supervision reaches), trained = the SSGAN's discriminator as a classifier, ceiling = the baseline, the same
  network trained on the labeled digits alone in the same run (what the labels give without the GAN);
- ``fd_lenet``, ``classifier_score``, ``class_histogram_kl`` of ``N_EVAL`` generated digits, as for DCGAN
  (:func:`gancourse.deep.metrics.metric_report`: floor = real held-out digits, ceiling = the untrained
  generator). Feature matching is known to give poor-looking samples; these rows say how poor.

``samples.npz`` holds ``images``: ``N_SAMPLES`` samples, float32 (N, 1, 32, 32) in [-1, 1], drawn with
:meth:`SSGANTrainer.sample`'s fixed noise seed; ``samples.png`` shows the first ``N_GRID`` of them.
"""
from __future__ import annotations

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric, lenet_probabilities, metric_report
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_ssgan import SSGANConfig, SSGANTrainer, ssgan_preset

__all__ = ["SSGAN", "N_EVAL", "N_SAMPLES", "ERROR_ROW", "lenet_error"]

N_EVAL = 500  # images per set in the sample-quality rows, as in the other image notebooks
N_SAMPLES = 1000  # samples kept in samples.npz
N_GRID = 100  # samples shown in samples.png, 10 to a row
ERROR_ROW = "held-out error"


def build(config: SSGANConfig, device: torch.device) -> SSGANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits (their labels are kept only for the drawn ones)."""
    images, labels = mnist5k("train")
    return SSGANTrainer(config, images, labels, device)


def lenet_error(x: torch.Tensor, y: torch.Tensor, device: torch.device | str = "cpu") -> float:
    """Share of digits ``x`` (N, 1, 32, 32) that the course's LeNet (trained on all 4,000 labels) misreads."""
    pred = torch.from_numpy(lenet_probabilities(x, load_lenet(device)).argmax(axis=1))  # (N,)
    return float((pred != y.cpu()).double().mean())


def evaluate(trainer: SSGANTrainer, preset: str) -> Evaluation:
    """The held-out error of both classifiers beside the LeNet's, and the quality of the generated digits."""
    held, held_labels = mnist5k("heldout")
    report: dict = {}
    add_metric(report, ERROR_ROW, lenet_error(held, held_labels, trainer.device),
               trainer.error(held, held_labels, "ssgan"), trainer.error(held, held_labels, "baseline"),
               better="lower")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    samples = trainer.sample(N_SAMPLES)  # (N_SAMPLES, 1, 32, 32)
    untrained = SSGANTrainer(trainer.config, *mnist5k("train"), trainer.device).sample(N_EVAL)
    report.update(metric_report(real_a, real_b, samples[:N_EVAL], untrained, load_lenet(trainer.device)))
    return Evaluation(report, {"images": samples.numpy()}, Grid(samples[:N_GRID], nrow=10))


def snapshot_grid(trainer: SSGANTrainer, snapshot: tuple) -> Grid:
    """``G(fixed_z)`` at one step of training."""
    _, images = snapshot
    return Grid(images, nrow=8)


def scheduled(config: SSGANConfig) -> str | None:
    """The learning rate decays to 0 over the planned steps unless ``decay_start`` is 1."""
    if config.decay_start >= 1:
        return None
    return (f"its learning rate decays linearly to 0 from step {int(config.decay_start * config.steps)} to step "
            f"{config.steps} (decay_start {config.decay_start})")


SSGAN = ModelSpec(config_class=SSGANConfig, preset=ssgan_preset, kind=SSGANTrainer.KIND, build=build,
                  evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=1, image_size=32, border=2),
                  scheduled=scheduled)
