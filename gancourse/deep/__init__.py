"""The PyTorch track: devices, bundled image data, models, training loops and image metrics.

Everything under ``gancourse.deep`` imports torch; the rest of the package does not.
Import the sub-modules directly, for example ``from gancourse.deep.data import mnist5k``:
this file imports nothing, so that ``import gancourse.deep`` stays cheap.

- ``device``: device selection (CUDA, then MPS, then CPU) and seeding;
- ``data``, ``idx``: MNIST-5k, the 8x8 digits, the MNIST-M-style domain, checksummed IDX files;
- ``lenet``: the small LeNet behind the image metrics; ``metrics``: FD-LeNet and friends;
- ``dcgan``, ``cyclegan``, ``losses``, ``pool``, ``latent``: networks, losses, history pool, latent walks;
- ``tricks``: virtual batch norm and minibatch discrimination (Salimans et al. 2016);
- ``conditional``, ``pix2pix``, ``paired``, ``ssgan``, ``bigan``, ``probe``: the conditional GAN's layers, pix2pix's
  U-Net and PatchGAN with its paired tasks, the semi-supervised GAN, BiGAN and its linear probe; ``captions``, ``gancls``: GAN-CLS's captions and networks; ``explorer_widget``: the latent-walk and truncation widget;
- ``equalized``: equalized learning rate, pixel norm and the minibatch standard deviation (PGGAN, StyleGAN);
- ``runtime``, ``checkpoint``, ``loop``, ``train_gan``, ``train_cyclegan``, ``train_cgan``, ``train_ssgan``,
  ``train_bigan``, ``train_gancls``, ``train_pix2pix``: training loops and their plumbing; ``runs``, ``train_command``: ``gancourse train``;
- ``splits``, ``results``: the real-vs-real reference halves, and a notebook's numbers written as JSON.
"""
__all__ = [
    "train_gancls",
    "gancls",
    "captions",
    "bigan",
    "checkpoint",
    "conditional",
    "cyclegan",
    "data",
    "dcgan",
    "device",
    "equalized",
    "explorer_widget",
    "idx",
    "latent",
    "lenet",
    "loop",
    "losses",
    "metrics",
    "paired",
    "pix2pix",
    "pool",
    "probe",
    "results",
    "runs",
    "runtime",
    "splits",
    "ssgan",
    "train_bigan",
    "train_cgan",
    "train_command",
    "train_cyclegan",
    "train_gan",
    "train_pix2pix",
    "train_ssgan",
    "tricks",
]
