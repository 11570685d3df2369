"""Image metrics on the course's own LeNet, and the floor / ceiling report that frames them.

- ``fd_lenet``: the Fréchet distance between Gaussians fitted to LeNet features (the FID recipe of
  Heusel et al. 2017 with the course's LeNet in place of Inception-v3; we call it FD-LeNet, not FID);
- ``classifier_score``: the inception-score formula (Salimans et al. 2016) on LeNet probabilities;
- ``class_histogram_kl``: KL(q || uniform) of the predicted-class histogram q (mode coverage);
- image-to-image: ``domain_acceptance`` with ``train_domain_classifier``, ``label_preservation``,
  ``paired_l1``;
- ``metric_report`` / ``format_report``: each metric for two disjoint real halves (the floor), the
  trained generator, and an untrained generator (the ceiling), side by side;
- reference samplers: ``noise_images`` and ``pca_gaussian_samples`` (a non-adversarial baseline).

Images are (N, 1, 32, 32) in [-1, 1]; three-channel images are turned grey with ``to_grayscale``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gancourse.deep.lenet import LeNet, load_lenet, to_grayscale
from gancourse.deep.runtime import eval_mode
from gancourse.divergences import (
    frechet_distance,
    gaussian_stats,
    inception_score,
    kl_divergence,
)
from gancourse.errors import check_choice, check_positive_int

__all__ = [
    "lenet_features",
    "lenet_probabilities",
    "fd_from_features",
    "fd_lenet",
    "classifier_score",
    "class_histogram",
    "class_histogram_kl",
    "DomainClassifier",
    "train_domain_classifier",
    "domain_acceptance",
    "label_preservation",
    "paired_l1",
    "noise_images",
    "pca_gaussian_samples",
    "metric_report",
    "add_metric",
    "format_report",
]

N_CLASSES = 10


def _check_images(name: str, x: Any, channels: tuple[int, ...] = (1, 3)) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images (N, C, 32, 32), got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] not in channels or tuple(x.shape[2:]) != (32, 32):
        want = " or ".join(str(c) for c in channels)
        raise ValueError(
            f"{name} must have shape (N, {want}, 32, 32), got {tuple(x.shape)}; resize other sizes with "
            f"gancourse.deep.data.resize_images(x, 32)"
        )
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _lenet(lenet: LeNet | None, x: torch.Tensor) -> LeNet:
    if lenet is None:
        return load_lenet(x.device)
    if not isinstance(lenet, nn.Module):
        raise TypeError(f"lenet must be a LeNet module or None, got {type(lenet).__name__}")
    return lenet


@torch.no_grad()
def _batched(fn, x: torch.Tensor, model: nn.Module, batch_size: int) -> np.ndarray:
    check_positive_int("batch_size", batch_size)
    dev = next(model.parameters()).device
    # metrics in float32 even inside a bf16 region
    with eval_mode(model), torch.autocast(device_type=dev.type, enabled=False):
        out = [fn(to_grayscale(x[i: i + batch_size]).to(dev, torch.float32)).double().cpu()
               for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def lenet_features(x: torch.Tensor, lenet: LeNet | None = None, batch_size: int = 500) -> np.ndarray:
    """LeNet penultimate features, float64 (N, 128), of images (N, 1 or 3, 32, 32)."""
    x = _check_images("x", x)
    model = _lenet(lenet, x)
    return _batched(model.features, x, model, batch_size)


def lenet_probabilities(x: torch.Tensor, lenet: LeNet | None = None, batch_size: int = 500) -> np.ndarray:
    """LeNet class probabilities ``softmax(logits)``, float64 (N, 10)."""
    x = _check_images("x", x)
    model = _lenet(lenet, x)
    return _batched(lambda b: F.softmax(model(b).double(), dim=1), x, model, batch_size)


def fd_from_features(f_real: np.ndarray, f_fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D):

        FD = ||mu_r - mu_f||^2 + tr(C_r + C_f - 2 (C_r^{1/2} C_f C_r^{1/2})^{1/2}),

    computed by ``gancourse.divergences.gaussian_stats`` and ``frechet_distance``.
    """
    mu_r, c_r = gaussian_stats(f_real)
    mu_f, c_f = gaussian_stats(f_fake)
    return frechet_distance(mu_r, c_r, mu_f, c_f)


def fd_lenet(x_real: torch.Tensor, x_fake: torch.Tensor, lenet: LeNet | None = None, batch_size: int = 500) -> float:
    """FD-LeNet: the Fréchet distance between LeNet features of real and generated images.

    The estimate is biased upwards for small N (two real samples of 500 give a larger value than two
    of 5,000), so compare numbers computed with the same sample sizes.
    """
    x_real, x_fake = _check_images("x_real", x_real), _check_images("x_fake", x_fake)
    model = _lenet(lenet, x_real)
    return fd_from_features(lenet_features(x_real, model, batch_size), lenet_features(x_fake, model, batch_size))


def classifier_score(x: torch.Tensor, lenet: LeNet | None = None) -> float:
    """IS-style score ``exp(E_x KL(p(y|x) || p(y)))`` with LeNet probabilities, in [1, 10].

    The formula is ``gancourse.divergences.inception_score`` (one split over all of ``x``).
    """
    return inception_score(lenet_probabilities(x, lenet))


def _histogram_of(probs: np.ndarray) -> np.ndarray:
    """Predicted-class shares q (10,) from class probabilities (N, 10): ``q_k = #{argmax = k} / N``."""
    pred = probs.argmax(axis=1)  # (N,)
    return np.bincount(pred, minlength=N_CLASSES) / len(pred)


def _kl_to_uniform(q: np.ndarray) -> float:
    return kl_divergence(q, np.full(N_CLASSES, 1.0 / N_CLASSES))


def class_histogram(x: torch.Tensor, lenet: LeNet | None = None) -> np.ndarray:
    """Share of images that LeNet assigns to each class: q (10,), ``q_k = #{argmax = k} / N``."""
    return _histogram_of(lenet_probabilities(x, lenet))


def class_histogram_kl(x: torch.Tensor, lenet: LeNet | None = None) -> float:
    """``KL(q || u) = sum_k q_k log(K q_k) = log K - H(q)`` of the predicted-class histogram q against
    the uniform u over K = 10 classes: 0 when every digit is produced equally often, log(10/m) when
    only m classes are produced (evenly)."""
    return _kl_to_uniform(class_histogram(x, lenet))


class DomainClassifier(nn.Module):
    """A tiny CNN giving the logit of "x belongs to the target domain" for (N, 1 or 3, 32, 32) images.

    One-channel images are repeated over three channels, so both MNIST and the colour domain fit.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),  # (N, 3, 32, 32) -> (N, w, 16, 16)
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),  # -> (N, 2w, 8, 8)
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),  # -> (N, 4w, 4, 4)
            nn.Flatten(), nn.Linear(4 * width * 16, 1),  # -> (N, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (N, 1, H, W) -> (N, 3, H, W)
        return self.net(x)[:, 0]  # (N,)


def _shuffle_pixels(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Permute the pixel positions of each image (the same permutation for all its channels): colour
    statistics are kept, spatial structure is destroyed."""
    n, c, h, w = x.shape
    perm = torch.argsort(torch.rand(n, h * w, generator=gen), dim=1).to(x.device)  # (N, HW)
    flat = x.reshape(n, c, h * w)
    return torch.gather(flat, 2, perm[:, None, :].expand(n, c, h * w)).reshape(n, c, h, w)


def train_domain_classifier(
    a: torch.Tensor,
    b: torch.Tensor,
    steps: int = 300,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> DomainClassifier:
    """Train a ``DomainClassifier`` whose positive class is domain ``b`` (the target) and negative
    class is domain ``a``, plus pixel-shuffled copies of ``b``. The shuffled negatives have the right
    colours but no shapes, so a colour histogram alone is not enough to be accepted. Adam with a
    cosine decay of the learning rate to 0; a few hundred steps take seconds on a CPU.

    For the other direction, swap the arguments: ``train_domain_classifier(b, a)`` accepts domain a.
    The classifier is trained on the device that holds ``b``; random draws come from a CPU generator,
    so the result depends only on ``seed`` (and on the device's arithmetic).
    """
    a, b = _check_images("a", a), _check_images("b", b)
    steps = check_positive_int("steps", steps)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dev = b.device
    a = a.to(dev)
    model = DomainClassifier().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)  # decay to 0: a settled classifier
    half = max(1, batch_size // 2)
    for _ in range(steps):
        pos = b[torch.randint(len(b), (half,), generator=gen)]
        neg_a = a[torch.randint(len(a), (half - half // 2,), generator=gen)]
        neg_b = _shuffle_pixels(b[torch.randint(len(b), (half // 2,), generator=gen)], gen)
        logits = torch.cat([model(pos), model(neg_a), model(neg_b)])  # (2 * half,)
        target = torch.cat([torch.ones(half, device=dev), torch.zeros(half, device=dev)])
        loss = F.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def domain_acceptance(x: torch.Tensor, domain_classifier: nn.Module, batch_size: int = 500) -> float:
    """Share of images ``x`` that ``domain_classifier`` accepts as its target domain (logit > 0)."""
    x = _check_images("x", x)
    if not isinstance(domain_classifier, nn.Module):
        raise TypeError(f"domain_classifier must be an nn.Module, got {type(domain_classifier).__name__}")
    dev = next(domain_classifier.parameters()).device
    with eval_mode(domain_classifier):
        logits = torch.cat([domain_classifier(x[i: i + batch_size].to(dev)).cpu() for i in range(0, len(x), batch_size)])
    return float((logits > 0).double().mean())


def label_preservation(x_translated_to_mnist: torch.Tensor, labels: torch.Tensor, lenet: LeNet | None = None) -> float:
    """Share of translated images whose LeNet label equals the source digit's label."""
    x = _check_images("x_translated_to_mnist", x_translated_to_mnist)
    if not isinstance(labels, torch.Tensor) or labels.shape != (len(x),):
        raise ValueError(f"labels must be a tensor of shape ({len(x)},), got {getattr(labels, 'shape', labels)!r}")
    pred = lenet_probabilities(x, lenet).argmax(axis=1)  # (N,)
    return float((pred == labels.cpu().numpy()).mean())


def paired_l1(x_translated: torch.Tensor, x_true: torch.Tensor) -> float:
    """Mean absolute pixel difference ``mean |x_translated - x_true|`` to the hidden true pair (same shape)."""
    if not isinstance(x_translated, torch.Tensor) or not isinstance(x_true, torch.Tensor):
        raise TypeError("x_translated and x_true must be torch.Tensors")
    if x_translated.shape != x_true.shape:
        raise ValueError(f"x_translated and x_true must have the same shape, got {tuple(x_translated.shape)} "
                         f"and {tuple(x_true.shape)}")
    return float((x_translated.detach().double().cpu() - x_true.detach().double().cpu()).abs().mean())


def noise_images(n: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Uniform noise images (n, channels, 32, 32) in [-1, 1]: a reference no generator should be worse than."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, 32, 32, generator=gen) * 2 - 1


def pca_gaussian_samples(x: torch.Tensor, n: int, n_components: int = 20, seed: int = 0) -> torch.Tensor:
    """Samples of a Gaussian fitted to ``x`` (N, C, H, W) in its top ``n_components`` principal
    directions, clipped to [-1, 1]: ``mean + (z * sqrt(lambda_k)) @ V_k``, ``z ~ N(0, I_k)``, with
    ``lambda_k, V_k`` the top eigenpairs of the pixel covariance. A simple non-adversarial generator:
    blurry, but digit-like."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or len(x) < 2:
        raise ValueError(f"x must be a tensor (N, C, H, W) with N >= 2, got {getattr(x, 'shape', type(x).__name__)}")
    flat = x.reshape(len(x), -1).double().cpu().numpy()  # (N, P)
    mean = flat.mean(0)
    xc = flat - mean
    k = int(min(n_components, *xc.shape))
    cov = xc.T @ xc / (len(x) - 1)  # (P, N) @ (N, P) -> (P, P)
    lam, vec = np.linalg.eigh(cov)  # ascending eigenvalues
    lam, vec = np.clip(lam[::-1][:k], 0, None), vec[:, ::-1][:, :k]  # top k: (k,), (P, k)
    z = np.random.default_rng(seed).standard_normal((n, k))
    samples = mean + (z * np.sqrt(lam)) @ vec.T  # (n, k) @ (k, P) -> (n, P)
    return torch.from_numpy(samples).clamp(-1, 1).to(x.dtype).reshape(n, *x.shape[1:])


_BETTER = {"fd_lenet": "lower", "classifier_score": "higher", "class_histogram_kl": "lower"}


def add_metric(report: dict, name: str, floor: float, trained: float, ceiling: float, better: str) -> dict:
    """Add a row ``name -> {floor, trained, ceiling, better}`` to ``report`` (in place) and return it."""
    check_choice("better", better, ("lower", "higher"))
    report[name] = {"floor": float(floor), "trained": float(trained), "ceiling": float(ceiling), "better": better}
    return report


def metric_report(
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    fake: torch.Tensor,
    untrained_fake: torch.Tensor,
    lenet: LeNet | None = None,
) -> dict:
    """FD-LeNet, classifier score and class-histogram KL, each as floor / trained / ceiling.

    ``real_a`` is the reference set; ``real_b`` a disjoint real set (the floor: what a perfect generator
    would score), ``fake`` the trained generator's images, ``untrained_fake`` an untrained generator's
    (the ceiling). FD-LeNet compares each of the three with ``real_a``; the other two metrics score each
    set on its own. ``real_b``, ``fake`` and ``untrained_fake`` must have the same size, since FD's
    bias depends on it.
    """
    sets = {"real_b": real_b, "fake": fake, "untrained_fake": untrained_fake}
    for k, v in {"real_a": real_a, **sets}.items():
        _check_images(k, v)
    sizes = {k: len(v) for k, v in sets.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"real_b, fake and untrained_fake must hold the same number of images, got {sizes}")
    model = _lenet(lenet, real_a)
    ref_stats = gaussian_stats(lenet_features(real_a, model))
    fd = [frechet_distance(*ref_stats, *gaussian_stats(lenet_features(v, model))) for v in sets.values()]
    probs = [lenet_probabilities(v, model) for v in sets.values()]  # one LeNet pass per set serves both scores
    report: dict = {}
    add_metric(report, "fd_lenet", *fd, better="lower")
    add_metric(report, "classifier_score", *(inception_score(p) for p in probs), better="higher")
    add_metric(report, "class_histogram_kl", *(_kl_to_uniform(_histogram_of(p)) for p in probs), better="lower")
    return report


def format_report(report: dict) -> str:
    """A plain-text table: metric | floor (real vs real) | trained | ceiling (untrained) | better."""
    if not isinstance(report, dict) or not report:
        raise ValueError("report must be a non-empty dict made by metric_report / add_metric")
    head = f"{'metric':<22}{'floor (real)':>14}{'trained':>12}{'ceiling':>12}  better"
    lines = [head, "-" * len(head)]
    for name, row in report.items():
        lines.append(f"{name:<22}{row['floor']:>14.4g}{row['trained']:>12.4g}{row['ceiling']:>12.4g}  {row['better']}")
    return "\n".join(lines)
