"""The PyTorch track: devices, bundled image data, models, training loops and image metrics.

Everything under ``gancourse.deep`` imports torch; the rest of the package does not.
Import the sub-modules directly, for example ``from gancourse.deep.data import mnist5k``:
this file imports nothing, so that ``import gancourse.deep`` stays cheap.

- ``device``: device selection (CUDA, then MPS, then CPU) and seeding;
- ``data``, ``idx``: MNIST-5k, the 8x8 digits, the MNIST-M-style domain, checksummed IDX files;
- ``lenet``: the small LeNet behind the image metrics; ``metrics``: FD-LeNet and friends;
- ``dcgan``, ``cyclegan``, ``losses``, ``pool``, ``latent``: networks, losses, history pool, latent walks;
- ``runtime``, ``checkpoint``, ``loop``, ``train_gan``, ``train_cyclegan``: training loops and their plumbing;
- ``splits``, ``results``: the real-vs-real reference halves, and a notebook's numbers written as JSON.
"""
__all__ = [
    "checkpoint",
    "cyclegan",
    "data",
    "dcgan",
    "device",
    "idx",
    "latent",
    "lenet",
    "loop",
    "losses",
    "metrics",
    "pool",
    "results",
    "runtime",
    "splits",
    "train_cyclegan",
    "train_gan",
]
