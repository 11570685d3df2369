"""DCGAN and WGAN-GP in ``gancourse train``: MNIST-5k, and the metric report of notebooks 07 and 08.

The report (:func:`gancourse.deep.metrics.metric_report`) compares ``N_EVAL`` generated digits with
``N_EVAL`` held-out ones, beside the floor (another ``N_EVAL`` held-out digits, disjoint:
:func:`gancourse.deep.splits.reference_halves`) and the ceiling (the same network before training).
``samples.npz`` holds ``images``: ``N_SAMPLES`` samples, float32 (N, 1, 32, 32) in [-1, 1], drawn with
:meth:`GANTrainer.sample`'s fixed noise seed; the report scores the first ``N_EVAL`` of them.

``TRICKS`` and :func:`trick_config` define the ablation of lecture 12: the DCGAN preset with one trick of
Salimans et al. (2016) at a time (the same configs as ``gancourse train dcgan --label-smoothing 0.9`` and so on),
at ``ABLATION_STEPS`` steps.
"""
from __future__ import annotations

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import metric_report
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_gan import GANConfig, GANTrainer, dcgan_preset, wgan_gp_preset
from gancourse.errors import check_choice
from gancourse.tiers import pick

__all__ = ["DCGAN", "WGAN_GP", "N_EVAL", "N_SAMPLES", "TRICKS", "ABLATION_STEPS", "trick_config"]

N_EVAL = 500  # images per set in the metric report, as in the notebooks (FD's bias depends on it)
N_SAMPLES = 1000  # samples kept in samples.npz
N_GRID = 64  # samples shown in samples.png


def build(config: GANConfig, device: torch.device) -> GANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits."""
    images, _ = mnist5k("train")
    return GANTrainer(config, images, device)


def evaluate(trainer: GANTrainer, preset: str) -> Evaluation:
    """FD-LeNet, classifier score and class-histogram KL against the held-out digits (floor, trained, ceiling)."""
    held, _ = mnist5k("heldout")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    samples = trainer.sample(N_SAMPLES)  # (N_SAMPLES, 1, 32, 32)
    untrained = GANTrainer(trainer.config, trainer.images, trainer.device).sample(N_EVAL)
    report = metric_report(real_a, real_b, samples[:N_EVAL], untrained, load_lenet(trainer.device))
    return Evaluation(report, {"images": samples.numpy()}, Grid(samples[:N_GRID], nrow=8))


def snapshot_grid(trainer: GANTrainer, snapshot: tuple) -> Grid:
    """``G(fixed_z)`` at one step of training."""
    _, images = snapshot
    return Grid(images, nrow=8)


_COMMON = dict(config_class=GANConfig, kind=GANTrainer.KIND, build=build, evaluate=evaluate,
               snapshot_grid=snapshot_grid)
_DATA = dict(channels=1, image_size=32)  # MNIST-5k, padded to 32x32

DCGAN = ModelSpec(preset=dcgan_preset, fixed=dict(loss="dcgan", **_DATA), **_COMMON,
                  ignored=("n_critic", "gp_lambda", "critic_norm"))  # one D step per G step, no penalty, batch norm
WGAN_GP = ModelSpec(preset=wgan_gp_preset, fixed=dict(loss="wgan-gp", **_DATA), **_COMMON,
                    ignored=("label_smoothing", "minibatch_discrimination"))  # a critic: no labels, per-sample penalty


#: one trick at a time on top of the DCGAN preset: the config fields each sets
TRICKS: dict[str, dict] = {
    "baseline": {},
    "label smoothing 0.9": {"label_smoothing": 0.9},
    "minibatch discrimination": {"minibatch_discrimination": 32},
    "virtual batch norm": {"g_norm": "virtual"},
}
#: steps of each ablation run by tier: four runs must fit the lecture tier's 10 minutes on a 2-core CPU,
#: so the lecture runs are half the DCGAN lecture preset's 3,000 steps; full keeps the full preset's length
ABLATION_STEPS = dict(smoke=100, lecture=1500, full=dcgan_preset(tier="full").steps)


def trick_config(trick: str, tier: str, **fields) -> GANConfig:
    """The DCGAN preset of ``tier`` with ``TRICKS[trick]`` on, at ``ABLATION_STEPS[tier]`` steps
    (``fields`` override both)."""
    check_choice("trick", trick, TRICKS)
    steps = pick(tier, **ABLATION_STEPS)
    return DCGAN.config(tier, **{"steps": steps, **TRICKS[trick], **fields})
