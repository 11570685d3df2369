"""DCGAN and WGAN-GP in ``gancourse train``: MNIST-5k, and the metric report of notebooks 07 and 08.

The training digits, the report and ``samples.npz`` are those of every unconditional digit generator
(:mod:`gancourse.deep.runs.digits`): FD-LeNet, classifier score and class-histogram KL of ``N_EVAL`` samples
against held-out digits, beside a floor of real digits and a ceiling of the untrained network.

``TRICKS`` and :func:`trick_config` define the ablation of lecture 12: the DCGAN preset with one trick of
Salimans et al. (2016) at a time (the same configs as ``gancourse train dcgan --label-smoothing 0.9`` and so on),
at ``ABLATION_STEPS`` steps.
"""
from __future__ import annotations

from gancourse.deep.runs.digits import N_EVAL, N_SAMPLES, digits_builder, evaluate_digits, snapshot_grid
from gancourse.deep.runs.spec import ModelSpec
from gancourse.deep.train_gan import GANConfig, GANTrainer, dcgan_preset, wgan_gp_preset
from gancourse.errors import check_choice
from gancourse.tiers import pick

__all__ = ["DCGAN", "WGAN_GP", "N_EVAL", "N_SAMPLES", "TRICKS", "ABLATION_STEPS", "trick_config"]

_COMMON = dict(config_class=GANConfig, kind=GANTrainer.KIND, build=digits_builder(GANTrainer),
               evaluate=evaluate_digits, snapshot_grid=snapshot_grid)
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
