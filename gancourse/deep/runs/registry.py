"""The image models that ``gancourse train`` trains, by name.

Each entry names its model, says in one line what it is, and imports its
:class:`~gancourse.deep.runs.spec.ModelSpec` only when the model is used, so that listing the models
(``gancourse --help``) does not import torch. Adding a model: write its ``ModelSpec`` (see
``gancourse.deep.runs.gan`` for an example), then add one line to ``MODELS``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from gancourse.errors import check_choice

if TYPE_CHECKING:  # pragma: no cover
    from gancourse.deep.runs.spec import ModelSpec

__all__ = ["ModelEntry", "MODELS", "get_spec", "model_of_checkpoint"]


@dataclass(frozen=True)
class ModelEntry:
    """A model of ``gancourse train``: its ``name`` (the sub-command), a one-line ``summary`` with the paper,
    and ``load``, which imports and returns its :class:`ModelSpec`."""

    name: str
    summary: str
    load: Callable[[], ModelSpec]


MODELS: dict[str, ModelEntry] = {e.name: e for e in (
    ModelEntry("dcgan", "DCGAN on MNIST-5k (Radford et al. 2016)",
               lambda: import_module("gancourse.deep.runs.gan").DCGAN),
    ModelEntry("wgan-gp", "WGAN-GP on MNIST-5k (Gulrajani et al. 2017)",
               lambda: import_module("gancourse.deep.runs.gan").WGAN_GP),
    ModelEntry("cyclegan", "CycleGAN, MNIST <-> MNIST-M-style, unpaired (Zhu et al. 2017)",
               lambda: import_module("gancourse.deep.runs.cyclegan").CYCLEGAN),
    ModelEntry("cgan", "Conditional GAN with a projection discriminator on MNIST-5k (Mirza & Osindero 2014; Miyato & Koyama 2018)", lambda: import_module("gancourse.deep.runs.cgan").CGAN),
    ModelEntry("gancls", "GAN-CLS: text-to-image with a matching-aware discriminator, on captioned MNIST-5k digits (Reed et al. 2016)", lambda: import_module("gancourse.deep.runs.gancls").GANCLS),
    ModelEntry("bigan", "BiGAN / ALI: an encoder learned adversarially, with a linear probe (Donahue et al. 2017; Dumoulin et al. 2017)", lambda: import_module("gancourse.deep.runs.bigan").BIGAN),
    ModelEntry("pix2pix", "pix2pix, paired image-to-image translation, with the L1 / cGAN / L1 + cGAN ablation (Isola et al. 2017)", lambda: import_module("gancourse.deep.runs.pix2pix").PIX2PIX),
    ModelEntry("ssgan", "Semi-supervised GAN: a K+1-class discriminator with feature matching, 100 labels of MNIST-5k (Salimans et al. 2016)", lambda: import_module("gancourse.deep.runs.ssgan").SSGAN),
    ModelEntry("pggan", "Progressive GAN: G and D grown 4 -> 32 with fade-in, equalized LR, pixel norm, minibatch stddev (Karras et al. 2018)", lambda: import_module("gancourse.deep.runs.pggan").PGGAN),
    ModelEntry("r3gan", "R3GAN: the relativistic pairing loss with R1 + R2 on a normalisation-free ResNeXt-style ConvNet (Huang et al. 2024)", lambda: import_module("gancourse.deep.runs.r3gan").R3GAN),
    ModelEntry("stylegan", "A small StyleGAN: mapping network, AdaIN or modulated convolutions, noise, style mixing, truncation, PPL (Karras et al. 2019; 2020)", lambda: import_module("gancourse.deep.runs.stylegan").STYLEGAN),
    ModelEntry("stackedmnist", "StackedMNIST, 1000 modes: DCGAN vs PacGAN packing, modes and reverse KL on 26,000 samples (Metz et al. 2017; Lin et al. 2018)", lambda: import_module("gancourse.deep.runs.stacked").STACKED),
    ModelEntry("biggan", "BigGAN in miniature: shared embedding, hierarchical latents, spectral norm, orthogonal regularisation, truncation (Brock et al. 2019)", lambda: import_module("gancourse.deep.runs.biggan").BIGGAN),
)}


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of model ``name``; a ValueError lists the models."""
    return MODELS[check_choice("model", name, MODELS)].load()


def model_of_checkpoint(state: dict) -> str | None:
    """The name of the model whose trainer wrote the checkpoint dict ``state``, or None if none did."""
    for name, entry in MODELS.items():
        if entry.load().owns(state):
            return name
    return None
