"""BigGAN in miniature in ``gancourse train``: MNIST-5k with its labels, and notebook 18's report.

The evaluation samples from the generator that samples (the moving average of G's weights unless
``--ema-decay 0``) and reports, each beside its floor (real held-out digits) and ceiling (the untrained networks),
exactly as :mod:`gancourse.deep.runs.cgan` does for untruncated noise ``z ~ N(0, I)``:

- ``label accuracy``, ``worst class accuracy``: how often the LeNet reads ``N_SAMPLES`` samples (100 per class)
  as their conditioning class, over all and for the worst class;
- ``fd_lenet``: FD-LeNet of ``N_EVAL`` samples against ``N_EVAL`` held-out digits (floor: another ``N_EVAL``);

and **the truncation curve**: for each threshold ``t`` in ``TRUNCATIONS`` the same samples drawn from noise
truncated at ``t`` (:func:`gancourse.deep.biggan.truncated_normal`, same seed), with the rows
``label accuracy (truncation t)`` (fidelity: does the digit look like its class?) and ``fd_lenet (truncation t)``
(fidelity and variety together: too little variety raises it). The untruncated point of the curve is the three
rows above. Each ceiling is the untrained networks at the same threshold.

``samples.npz``: ``images`` float32 (N_SAMPLES, 1, 32, 32) in [-1, 1] from untruncated noise and ``labels``
int64 (N_SAMPLES,). ``samples.png``: one row per class, ``N_PER_ROW`` samples each.
"""
from __future__ import annotations

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric, fd_lenet
from gancourse.deep.runs.cgan import N_EVAL, N_PER_ROW, N_SAMPLES, class_accuracies, eval_labels
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_biggan import BigGANConfig, BigGANTrainer, biggan_preset

__all__ = ["BIGGAN", "TRUNCATIONS", "build", "evaluate", "truncation_rows", "snapshot_grid"]

#: the thresholds of the truncation curve (None, plain N(0, I), is the report's main rows)
TRUNCATIONS = (0.25, 0.5, 1.0, 1.5, 2.0)


def build(config: BigGANConfig, device: torch.device) -> BigGANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits and their labels."""
    images, labels = mnist5k("train")
    return BigGANTrainer(config, images, labels, device)


def truncation_rows(t: float | None) -> tuple[str, str]:
    """The names of the two report rows of threshold ``t`` (the main rows for None)."""
    if t is None:
        return "label accuracy", "fd_lenet"
    return f"label accuracy (truncation {t:g})", f"fd_lenet (truncation {t:g})"


def evaluate(trainer: BigGANTrainer, preset: str) -> Evaluation:
    """The rows of the module docstring, the samples with their classes, and a grid with one row per class."""
    k = trainer.config.n_classes
    held, held_labels = mnist5k("heldout")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    labels = eval_labels(N_SAMPLES, k)
    untrained_trainer = BigGANTrainer(trainer.config, trainer.images, trainer.labels, trainer.device)
    lenet = load_lenet(trainer.device)
    acc_floor, floor = class_accuracies(held, held_labels, lenet, k)
    fd_floor = fd_lenet(real_a, real_b, lenet)
    report: dict = {}
    samples = None
    for t in (None, *TRUNCATIONS):
        trained, untrained = trainer.sample(labels, truncation=t), untrained_trainer.sample(labels, truncation=t)
        (acc_t, per_t), (acc_u, per_u) = (class_accuracies(x, labels, lenet, k) for x in (trained, untrained))
        acc_name, fd_name = truncation_rows(t)
        add_metric(report, acc_name, acc_floor, acc_t, acc_u, better="higher")
        if t is None:
            samples = trained
            add_metric(report, "worst class accuracy", floor.min(), per_t.min(), per_u.min(), better="higher")
        add_metric(report, fd_name, fd_floor, fd_lenet(real_a, trained[:N_EVAL], lenet),
                   fd_lenet(real_a, untrained[:N_EVAL], lenet), better="lower")
    rows = torch.cat([samples[labels == c][:N_PER_ROW] for c in range(k)])  # (K * N_PER_ROW, 1, 32, 32)
    return Evaluation(report, {"images": samples.numpy(), "labels": labels.numpy()}, Grid(rows, nrow=N_PER_ROW))


def snapshot_grid(trainer: BigGANTrainer, snapshot: tuple) -> Grid:
    """The sampler's ``G(fixed_z, k)`` at one step of training: one row per class ``k``, the same noise in every
    row."""
    _, images = snapshot
    return Grid(images, nrow=trainer.config.n_samples)


BIGGAN = ModelSpec(config_class=BigGANConfig, preset=biggan_preset, kind=BigGANTrainer.KIND, build=build,
                   evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(n_classes=10, channels=1, image_size=32))
