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
- ``pggan``, ``stylegan``, ``path_length``, ``biggan``, ``r3gan``, ``stability``, ``stacked_mnist``: the progressive GAN,
  a small StyleGAN and its perceptual path length, BigGAN's tricks, R3GAN and its stability grid, StackedMNIST;
- ``draggan``, ``draggan_eval``, ``draggan_widget``, ``draggan_canvas``: DragGAN on the small StyleGAN, its slider
  demo and its click-and-drag canvas; ``inversion``, ``spade``,
  ``vector_quantize``: GAN inversion and editing, SPADE and vector quantisation (lecture 22);
- ``runtime``, ``checkpoint``, ``loop``, ``train_gan``, ``train_cyclegan``, ``train_cgan``, ``train_ssgan``,
  ``train_bigan``, ``train_gancls``, ``train_pix2pix``, ``train_pggan``, ``train_stylegan``, ``train_biggan``,
  ``train_r3gan``, ``train_stacked``: training loops and their plumbing; ``runs``, ``train_command``: ``gancourse train``;
- ``splits``, ``results``: the real-vs-real reference halves, and a notebook's numbers written as JSON.
"""
__all__ = [
    "bigan",
    "biggan",
    "captions",
    "checkpoint",
    "conditional",
    "cyclegan",
    "data",
    "dcgan",
    "device",
    "draggan",
    "draggan_canvas",
    "draggan_eval",
    "draggan_widget",
    "equalized",
    "explorer_widget",
    "gancls",
    "idx",
    "inversion",
    "latent",
    "lenet",
    "loop",
    "losses",
    "metrics",
    "paired",
    "path_length",
    "pggan",
    "pix2pix",
    "pool",
    "probe",
    "r3gan",
    "results",
    "runs",
    "runtime",
    "spade",
    "splits",
    "ssgan",
    "stability",
    "stacked_mnist",
    "stylegan",
    "train_bigan",
    "train_biggan",
    "train_cgan",
    "train_command",
    "train_cyclegan",
    "train_gan",
    "train_gancls",
    "train_pggan",
    "train_pix2pix",
    "train_r3gan",
    "train_ssgan",
    "train_stacked",
    "train_stylegan",
    "tricks",
    "vector_quantize",
]
