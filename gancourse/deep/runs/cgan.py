"""The conditional GAN in ``gancourse train``: MNIST-5k with its labels, and notebook 10's report.

The evaluation draws ``N_SAMPLES`` digits, ``N_SAMPLES / 10`` of each class (labels ``0, 1, ..., 9, 0, 1, ...``)
from noise with :meth:`CGANTrainer.sample`'s fixed seed, and reports, each beside its floor and ceiling:

- ``label accuracy``: the share of samples that the LeNet reads as their conditioning class; floor: the
  LeNet's accuracy on the 1,000 held-out real digits (what a perfect generator would reach), ceiling: the same
  networks untrained;
- ``worst class accuracy``: the lowest of the ten per-class accuracies (same floor and ceiling); a generator
  that draws nine digits well and the tenth badly shows here, not in the mean;
- ``fd_lenet``: FD-LeNet of the first ``N_EVAL`` samples (balanced over the classes) against ``N_EVAL``
  held-out digits; floor: another ``N_EVAL`` held-out digits
  (:func:`gancourse.deep.splits.reference_halves`, as for DCGAN);
- ``class k accuracy`` for k = 0..9: the per-class accuracies (floor: the LeNet on held-out digits of class k).
  An untrained generator draws much the same blob for every class, so the LeNet may read all of them as one
  digit: that class's ceiling can then be high. The two rows above are the ones to judge the run by.

``samples.npz``: ``images`` float32 (N_SAMPLES, 1, 32, 32) in [-1, 1] and ``labels`` int64 (N_SAMPLES,), the
conditioning classes. ``samples.png``: one row per class, ``N_PER_ROW`` samples each.
"""
from __future__ import annotations

import numpy as np
import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric, fd_lenet, lenet_probabilities
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_cgan import CGANConfig, CGANTrainer, cgan_preset

__all__ = ["CGAN", "N_EVAL", "N_SAMPLES", "N_PER_ROW", "eval_labels", "class_accuracies"]

N_EVAL = 500  # images per set in FD-LeNet, as for DCGAN (FD's bias depends on it)
N_SAMPLES = 1000  # samples scored for the label rows and kept in samples.npz: 100 per class
N_PER_ROW = 10  # samples per class in samples.png


def eval_labels(n: int = N_SAMPLES, n_classes: int = 10) -> torch.Tensor:
    """The conditioning classes of the evaluation: ``0, 1, ..., K-1, 0, 1, ...`` (n,) int64."""
    return torch.arange(n) % n_classes


def class_accuracies(images: torch.Tensor, labels: torch.Tensor, lenet: torch.nn.Module,
                     n_classes: int = 10) -> tuple[float, np.ndarray]:
    """How often the LeNet reads each image as its class: the share over all images, and the share within
    each class ``k`` (K,) float64 (NaN for a class with no images)."""
    pred = torch.from_numpy(lenet_probabilities(images, lenet).argmax(axis=1))  # (N,)
    labels = labels.cpu()
    hit = (pred == labels).double()  # (N,)
    per_class = np.array([hit[labels == k].mean().item() if (labels == k).any() else np.nan for k in range(n_classes)])
    return float(hit.mean()), per_class


def build(config: CGANConfig, device: torch.device) -> CGANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits and their labels."""
    images, labels = mnist5k("train")
    return CGANTrainer(config, images, labels, device)


def evaluate(trainer: CGANTrainer, preset: str) -> Evaluation:
    """The rows of the module docstring, the samples with their classes, and a grid with one row per class."""
    k = trainer.config.n_classes
    held, held_labels = mnist5k("heldout")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    labels = eval_labels(N_SAMPLES, k)
    samples = trainer.sample(labels)  # (N_SAMPLES, 1, 32, 32)
    untrained = CGANTrainer(trainer.config, trainer.images, trainer.labels, trainer.device).sample(labels)
    lenet = load_lenet(trainer.device)
    (acc_floor, floor), (acc_trained, trained), (acc_ceiling, ceiling) = (
        class_accuracies(x, y, lenet, k) for x, y in ((held, held_labels), (samples, labels), (untrained, labels)))
    report: dict = {}
    add_metric(report, "label accuracy", acc_floor, acc_trained, acc_ceiling, better="higher")
    add_metric(report, "worst class accuracy", floor.min(), trained.min(), ceiling.min(), better="higher")
    add_metric(report, "fd_lenet", fd_lenet(real_a, real_b, lenet), fd_lenet(real_a, samples[:N_EVAL], lenet),
               fd_lenet(real_a, untrained[:N_EVAL], lenet), better="lower")
    for c in range(k):
        add_metric(report, f"class {c} accuracy", floor[c], trained[c], ceiling[c], better="higher")
    rows = torch.cat([samples[labels == c][:N_PER_ROW] for c in range(k)])  # (K * N_PER_ROW, 1, 32, 32)
    return Evaluation(report, {"images": samples.numpy(), "labels": labels.numpy()}, Grid(rows, nrow=N_PER_ROW))


def snapshot_grid(trainer: CGANTrainer, snapshot: tuple) -> Grid:
    """``G(fixed_z, k)`` at one step of training: one row per class ``k``, the same noise in every row."""
    _, images = snapshot
    return Grid(images, nrow=trainer.config.n_samples)


CGAN = ModelSpec(config_class=CGANConfig, preset=cgan_preset, kind=CGANTrainer.KIND, build=build, evaluate=evaluate,
                 snapshot_grid=snapshot_grid, fixed=dict(n_classes=10, channels=1, image_size=32))
