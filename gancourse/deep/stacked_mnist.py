"""StackedMNIST: three MNIST digits stacked as the colour channels of one image, a benchmark with 1000 modes.

An image is ``x = [d_a, d_b, d_c]`` (3, 32, 32): each channel a grey MNIST digit (N, 1, 32, 32) in [-1, 1],
the three drawn independently and uniformly from the 4,000 MNIST-5k training digits, so that its *mode* is
the triple of classes ``(a, b, c)`` and its label ``100 a + 10 b + c`` in 0..999. Real data puts mass
1/1000 on every mode; a generator that drops modes, or favours some, is seen in the histogram of the modes
of its samples. (Metz et al. 2017, "Unrolled generative adversarial networks", section 3.3; Srivastava et
al. 2017, "VEEGAN"; Lin et al. 2018, "PacGAN".)

Protocol (VEEGAN / PacGAN, kept here): draw ``N_SCORE = 26,000`` samples; classify each channel with a
pretrained MNIST classifier (here the course's LeNet, :func:`gancourse.deep.lenet.load_lenet`), which gives
each sample a mode; then

- ``modes``: the number of modes with at least one sample (of 1000);
- ``reverse_kl``: ``KL(q || p) = sum_m q_m log(q_m / p_m)`` of the generated mode histogram ``q`` against
  the uniform ``p_m = 1/1000`` of the real data (= ``log 1000 - H(q)``; 0 when q is uniform,
  ``log 1000 = 6.91`` when all samples share one mode).

Published rows (26,000 samples, the same two numbers, each paper with its own classifier and networks):
DCGAN 99 modes / KL 3.40, ALI 16 / 5.40, Unrolled GAN 48.7 / 4.32, VEEGAN 150 / 2.95 (VEEGAN's table 2,
repeated in PacGAN's); PacDCGAN2 1000 / 0.06, PacDCGAN3 1000 / 0.06, PacDCGAN4 1000 / 0.07 (PacGAN's
table 2); Huang et al. 2024 ("The GAN is dead; long live the GAN!"): the loss ablation on a small
network, GAN + R1 + R2 693 / 0.927 and RpGAN + R1 + R2 1000 / 0.0781 (RpGAN + R1 alone fails), and R3GAN
1000 / 0.029. ``PUBLISHED`` holds them.

Their classifiers and ours differ, so score the floor too: :func:`real_floor` scores 26,000 *real* stacked
images in the same way. Even a perfect generator does not reach KL 0: with 26 samples per mode the histogram
is noisy (``E KL ~ (K - 1) / (2 N) = 0.019`` for K = 1000, N = 26,000), and the classifier's errors move
samples between modes. Measured: 26,000 stacks of held-out digits cover all 1000 modes with KL 0.019 (0.018
from the true labels; the LeNet reads 94% of the triples right, 99% on training digits).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gancourse.deep.lenet import LeNet, load_lenet

__all__ = [
    "N_MODES", "N_SCORE", "PUBLISHED", "StackedMNIST", "stacked_mnist", "draw_triples", "stack",
    "mode_of_classes", "classes_of_modes", "channel_classes", "sample_modes", "mode_histogram", "modes_covered", "reverse_kl",
    "kl_decomposition", "score_images", "real_floor", "to_uint8", "from_uint8", "score_samples",
]

N_MODES = 1000
N_SCORE = 26_000  # samples scored, as in VEEGAN and PacGAN
#: (method, modes, reverse KL, source), as published with 26,000 samples
PUBLISHED = (
    ("DCGAN", 99.0, 3.40, "Srivastava et al. 2017, VEEGAN, table 2"),
    ("ALI", 16.0, 5.40, "Srivastava et al. 2017, VEEGAN, table 2"),
    ("Unrolled GAN", 48.7, 4.32, "Srivastava et al. 2017, VEEGAN, table 2"),
    ("VEEGAN", 150.0, 2.95, "Srivastava et al. 2017, VEEGAN, table 2"),
    ("PacDCGAN2", 1000.0, 0.06, "Lin et al. 2018, PacGAN, table 2"),
    ("PacDCGAN3", 1000.0, 0.06, "Lin et al. 2018, PacGAN, table 2"),
    ("PacDCGAN4", 1000.0, 0.07, "Lin et al. 2018, PacGAN, table 2"),
    ("GAN + R1 + R2 (small net)", 693.0, 0.927, "Huang et al. 2024, loss ablation"),
    ("RpGAN + R1 + R2 (small net)", 1000.0, 0.0781, "Huang et al. 2024, loss ablation"),
    ("R3GAN", 1000.0, 0.029, "Huang et al. 2024, StackedMNIST comparison"),
)


@dataclass(frozen=True)
class StackedMNIST:
    """Stacked images ``digits[triples[i]]`` (the three digits as channels), built on demand.

    digits : (D, 1, 32, 32) float32 in [-1, 1]; digit_labels : (D,) int64; triples : (N, 3) int64 in [0, D)
    """

    digits: torch.Tensor
    digit_labels: torch.Tensor
    triples: torch.Tensor

    def __len__(self) -> int:
        return len(self.triples)

    def images(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Images ``idx`` (all if None): (n, 3, 32, 32) float32 in [-1, 1]."""
        t = self.triples if idx is None else self.triples[idx]
        return stack(self.digits, t)

    def labels(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Modes ``100 a + 10 b + c`` of images ``idx`` (all if None): (n,) int64."""
        t = self.triples if idx is None else self.triples[idx]
        return mode_of_classes(self.digit_labels[t])


def draw_triples(n: int, n_digits: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` triples of digit indices drawn independently and uniformly from ``[0, n_digits)``: (n, 3) int64."""
    return torch.randint(n_digits, (n, 3), generator=generator, device=generator.device)


def stack(digits: torch.Tensor, triples: torch.Tensor) -> torch.Tensor:
    """The digits of each triple as the three channels: (D, 1, S, S) and (n, 3) -> (n, 3, S, S)."""
    if digits.ndim != 4 or digits.shape[1] != 1:
        raise ValueError(f"digits must have shape (D, 1, S, S), got {tuple(digits.shape)}")
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape (n, 3), got {tuple(triples.shape)}")
    return digits[:, 0][triples]  # (n, 3) -> (n, 3, S, S)


def stacked_mnist(split: str = "train", n: int = N_SCORE, seed: int = 0) -> StackedMNIST:
    """``n`` stacked images from the MNIST-5k ``split`` ("train": 4,000 digits, "heldout": 1,000), the
    triples drawn with a generator seeded by ``seed``."""
    from gancourse.deep.data import mnist5k

    digits, labels = mnist5k(split)
    triples = draw_triples(n, len(digits), torch.Generator().manual_seed(seed))
    return StackedMNIST(digits, labels, triples)


def mode_of_classes(classes: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """The mode ``100 a + 10 b + c`` of each class triple: (n, 3) -> (n,)."""
    if classes.ndim != 2 or classes.shape[1] != 3:
        raise ValueError(f"classes must have shape (n, 3), got {tuple(classes.shape)}")
    return classes[:, 0] * 100 + classes[:, 1] * 10 + classes[:, 2]


def classes_of_modes(modes: np.ndarray | torch.Tensor) -> np.ndarray:
    """The class triple ``(a, b, c)`` of each mode ``100 a + 10 b + c``: (n,) -> (n, 3) int64 (inverse of
    :func:`mode_of_classes`)."""
    m = np.asarray(modes).astype(np.int64).ravel()
    if m.size and (m.min() < 0 or m.max() >= N_MODES):
        raise ValueError(f"modes must lie in [0, {N_MODES}), got values in [{m.min()}, {m.max()}]")
    return np.stack([m // 100, m // 10 % 10, m % 10], axis=1)


@torch.no_grad()
def channel_classes(images: torch.Tensor, lenet: LeNet | None = None, batch_size: int = 3000) -> np.ndarray:
    """The LeNet's class of every channel of images (n, 3, 32, 32) in [-1, 1]: (n, 3) int64."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (3, 32, 32):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (n, 3, 32, 32), got {got}")
    lenet = load_lenet() if lenet is None else lenet
    dev = next(lenet.parameters()).device
    grey = images.reshape(-1, 1, 32, 32)  # (n, 3, 32, 32) -> (3n, 1, 32, 32): one channel, one digit
    out = [lenet(grey[i: i + batch_size].to(dev, torch.float32)).argmax(1).cpu()
           for i in range(0, len(grey), batch_size)]
    return torch.cat(out).reshape(-1, 3).numpy().astype(np.int64)


def sample_modes(images: torch.Tensor, lenet: LeNet | None = None) -> np.ndarray:
    """The mode of each image as the LeNet reads it: (n, 3, 32, 32) -> (n,) int64 in 0..999."""
    return mode_of_classes(channel_classes(images, lenet))


def mode_histogram(modes: np.ndarray | torch.Tensor, n_modes: int = N_MODES) -> np.ndarray:
    """How many samples fall in each mode: (n,) ints in [0, n_modes) -> counts (n_modes,) int64."""
    m = np.asarray(modes).astype(np.int64).ravel()
    if m.size and (m.min() < 0 or m.max() >= n_modes):
        raise ValueError(f"modes must lie in [0, {n_modes}), got values in [{m.min()}, {m.max()}]")
    return np.bincount(m, minlength=n_modes)


def _check_counts(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or (c < 0).any() or c.sum() <= 0:
        raise ValueError(f"counts must be a non-empty 1-D histogram of non-negative counts with a positive total, "
                         f"got shape {c.shape} and total {c.sum() if c.size else 0}")
    return c


def modes_covered(counts: np.ndarray) -> int:
    """The number of modes with at least one sample."""
    return int((_check_counts(counts) > 0).sum())


def reverse_kl(counts: np.ndarray) -> float:
    """``KL(q || uniform) = sum_m q_m log(K q_m) = log K - H(q)`` with ``q = counts / sum(counts)`` over K modes
    (empty modes add nothing): 0 for a uniform histogram, ``log K`` for a single mode."""
    c = _check_counts(counts)
    q = c / c.sum()
    nz = q > 0
    return float(np.sum(q[nz] * np.log(len(q) * q[nz])))


def kl_decomposition(classes: np.ndarray) -> dict:
    """Split the reverse KL of the mode histogram of class triples (n, 3) into the channels and their dependence:

    ``KL(q || U_1000) = sum_c KL(q_c || U_10) + TC(q)``, exactly, for the empirical ``q``: ``q_c`` is channel c's
    class histogram and the *total correlation* ``TC(q) = KL(q || q_0 x q_1 x q_2)`` measures how far the three
    digits are from being drawn independently (0 when they are). Returns ``{"channels": [KL(q_c || U_10)] * 3,
    "dependence": TC, "total": the reverse KL}``. With n samples, even independent channels show a TC of about
    ``(1000 - 1 - 3 * 9) / (2 n)`` (0.019 for 26,000) from sampling noise alone.
    """
    c = np.asarray(classes)
    if c.ndim != 2 or c.shape[1] != 3 or c.size == 0 or c.min() < 0 or c.max() > 9:
        raise ValueError(f"classes must be a non-empty (n, 3) array of digit classes 0..9, got shape {c.shape}")
    channels = [reverse_kl(np.bincount(c[:, k], minlength=10)) for k in range(3)]
    total = reverse_kl(mode_histogram(mode_of_classes(c.astype(np.int64))))
    return {"channels": channels, "dependence": total - sum(channels), "total": total}


def score_images(images: torch.Tensor, lenet: LeNet | None = None) -> dict:
    """``modes``, ``reverse_kl`` and the ``histogram`` (1000,) of images (n, 3, 32, 32) in [-1, 1]."""
    counts = mode_histogram(sample_modes(images, lenet))
    return {"modes": modes_covered(counts), "reverse_kl": reverse_kl(counts), "histogram": counts}


def real_floor(n: int = N_SCORE, seed: int = 0, split: str = "heldout", lenet: LeNet | None = None) -> dict:
    """:func:`score_images` of ``n`` real stacked images: what a perfect generator would score, with the
    classifier's errors and the sampling noise of ``n`` draws. Also ``true_modes`` and ``true_reverse_kl``
    from the true digit labels (the sampling noise alone) and the classifier's ``mode_accuracy``."""
    data = stacked_mnist(split, n, seed)
    images = data.images()
    predicted = sample_modes(images, lenet)
    true = data.labels().numpy()
    counts, true_counts = mode_histogram(predicted), mode_histogram(true)
    return {"modes": modes_covered(counts), "reverse_kl": reverse_kl(counts), "histogram": counts,
            "true_modes": modes_covered(true_counts), "true_reverse_kl": reverse_kl(true_counts),
            "mode_accuracy": float((predicted == true).mean())}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] -> uint8 0..255 by ``round((x + 1) * 127.5)`` (the inverse is :func:`from_uint8`)."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1] by ``x / 127.5 - 1``."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 127.5 - 1.0)


def score_samples(path: str | Path, lenet: LeNet | None = None) -> dict:
    """Recompute ``modes``, ``reverse_kl`` and the ``histogram`` from a ``samples.npz`` of ``gancourse train
    stackedmnist``: its ``images`` (n, 3, 32, 32), uint8 (mapped by :func:`from_uint8`) or float in [-1, 1]."""
    with np.load(Path(path), allow_pickle=False) as f:
        if "images" not in f:
            raise ValueError(f"{path} has no 'images' array (it holds {', '.join(f.files)})")
        x = f["images"]
    images = from_uint8(x) if x.dtype == np.uint8 else torch.from_numpy(np.asarray(x, dtype=np.float32))
    return score_images(images, lenet)
