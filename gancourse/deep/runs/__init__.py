"""What ``gancourse train`` runs: the image models it knows, their presets, the run folder and the evaluation.

- ``registry``: the models by name (``MODELS``), each with a loader of its
  :class:`~gancourse.deep.runs.spec.ModelSpec`, which is imported only when the model is used (it imports torch);
- ``spec``: :class:`ModelSpec`, everything the command needs to know about one model (config class, presets,
  data, trainer, evaluation, sample grids), and the :class:`Evaluation` it returns;
- ``gan``, ``cyclegan``, ``cgan``, ``pix2pix``, ``ssgan``, ``bigan``, ``gancls``, ``pggan``, ``stylegan``, ``biggan``,
  ``r3gan``, ``stacked``: the specs of DCGAN, WGAN-GP, CycleGAN, the conditional GAN, pix2pix, the semi-supervised
  GAN, BiGAN, GAN-CLS, the progressive GAN, StyleGAN, BigGAN, R3GAN and StackedMNIST;
- ``folder``: the run folder (checked before training) and the files written into it.

A new model (a conditional GAN, pix2pix, ...) is a ``ModelSpec`` in a module of its own and one line in
``registry.MODELS``. This file imports nothing, so that reading the registry does not import torch.
"""
__all__ = ["bigan", "biggan", "cgan", "cyclegan", "folder", "gan", "gancls", "pggan", "pix2pix", "r3gan", "registry",
           "spec", "ssgan", "stacked", "stylegan"]
