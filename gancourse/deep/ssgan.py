"""The semi-supervised GAN of Salimans et al. 2016 ("Improved techniques for training GANs", section 5).

The discriminator is a K-class classifier. With K logits ``l_1..l_K`` and a (K+1)-th "fake" class whose
logit is fixed at 0 (a softmax is unchanged when one subtracts the same number from every logit, so one
logit is free to pin), the classifier's softmax over K+1 classes gives

    p(y = k | x)      = exp(l_k) / (Z(x) + 1),     Z(x) = sum_k exp(l_k(x)),
    D(x) = p(real | x) = Z(x) / (Z(x) + 1) = sigmoid(logsumexp_k l_k(x)).

The discriminator minimises ``L_sup + L_unsup``:

- ``L_sup = -E_{x,y labeled} log p(y | x, y <= K)``: the ordinary K-class cross-entropy (:func:`supervised_loss`);
- ``L_unsup = -E_{x unlabeled} log D(x) - E_z log(1 - D(G(z)))``: the GAN loss (:func:`unsupervised_loss`),
  with ``-log D(x) = softplus(-lse(x))`` and ``-log(1 - D(x)) = softplus(lse(x))`` for ``lse = logsumexp_k l_k``.

The generator minimises the feature-matching loss ``|| E f(x) - E f(G(z)) ||^2`` (:func:`feature_matching_loss`),
``f`` the classifier's last hidden layer, instead of fooling D directly.

Networks (:class:`SSGANClassifier`, :class:`SSGANGenerator`) follow the paper's permutation-invariant MNIST
models: fully connected layers with weight normalisation (Salimans & Kingma 2016, :class:`WeightNormLinear`,
with its data-dependent initialisation), Gaussian noise added to the classifier's input and to every hidden
layer while training, and a generator with batch norm and softplus units.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "N_CLASSES",
    "WeightNormLinear",
    "SSGANClassifier",
    "SSGANGenerator",
    "d_hidden_widths",
    "real_logit",
    "d_of_logits",
    "supervised_loss",
    "unsupervised_loss",
    "feature_matching_loss",
]

N_CLASSES = 10


class WeightNormLinear(nn.Module):
    """``y = g * (v x) / ||v||_row + b``: a linear layer whose rows are a direction ``v`` and a length ``g``
    (Salimans & Kingma 2016). Weight shape (out, in) as in ``nn.Linear``; (N, in) -> (N, out)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.randn(out_features, in_features) * 0.05)
        self.g = nn.Parameter(torch.ones(out_features))
        self.b = nn.Parameter(torch.zeros(out_features))

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight (out, in): each row of ``v`` scaled to length ``g``."""
        return self.v * (self.g / self.v.norm(dim=1))[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the same as F.linear(x, self.weight, self.b), scaling the (N, out) outputs instead of the (out, in) weight
        return F.linear(x, self.v) * (self.g / self.v.norm(dim=1)) + self.b

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> torch.Tensor:
        """Data-dependent initialisation: set ``g`` and ``b`` so that the outputs on the batch ``x`` (N, in)
        have mean 0 and standard deviation 1 per unit; return those outputs (N, out)."""
        t = F.linear(x, self.v / self.v.norm(dim=1, keepdim=True))  # (N, out), unit-length rows
        mean, std = t.mean(0), t.std(0) + 1e-6
        self.g.copy_(1.0 / std)
        self.b.copy_(-mean / std)
        return self(x)


def _check_border(image_size: int, border: int) -> int:
    if not 0 <= border < image_size / 2:
        raise ValueError(f"border must lie in [0, image_size / 2) = [0, {image_size / 2:g}), got {border!r}")
    return border


def d_hidden_widths(d_width: int, d_layers: int) -> tuple[int, ...]:
    """The classifier's hidden widths: ``d_width``, then ``d_layers - 1`` layers of ``d_width // 2``."""
    return (d_width, *(max(1, d_width // 2),) * (d_layers - 1))


class SSGANClassifier(nn.Module):
    """The discriminator-classifier: (N, 1, S, S) images -> K logits, through fully connected layers.

    The ``border`` pixels on each side are skipped (MNIST's 28x28 digits padded to 32x32 by 2 pixels of
    background): the first layer sees the (S - 2 border)^2 inner pixels. ``forward`` gives the logits (N, K);
    ``forward_features`` also the last hidden layer (N, hidden[-1]), the features ``f`` of feature matching. In
    training mode Gaussian noise of std ``input_noise`` is added to the input and of std ``hidden_noise`` to every
    hidden layer, drawn from ``generator``; in eval mode there is none.
    """

    def __init__(self, image_size: int, hidden: Sequence[int], n_classes: int = N_CLASSES,
                 input_noise: float = 0.6, hidden_noise: float = 0.5, border: int = 0) -> None:
        super().__init__()
        self.image_size, self.border = image_size, _check_border(image_size, border)
        widths = [(image_size - 2 * border) ** 2, *hidden]
        self.hidden = nn.ModuleList(WeightNormLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = WeightNormLinear(widths[-1], n_classes)
        self.input_noise, self.hidden_noise = float(input_noise), float(hidden_noise)

    def _inner(self, x: torch.Tensor) -> torch.Tensor:
        s, b = self.image_size, self.border
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, s, s):
            raise ValueError(f"images must have shape (N, 1, {s}, {s}), got {tuple(x.shape)}")
        return x[:, :, b : s - b, b : s - b].flatten(1)  # (N, 1, S, S) -> (N, (S - 2b)^2)

    def _noise(self, h: torch.Tensor, std: float, generator: torch.Generator | None) -> torch.Tensor:
        if not self.training or std == 0:
            return h
        return h + std * torch.randn(h.shape, generator=generator, device=h.device, dtype=h.dtype)

    def forward_features(self, x: torch.Tensor,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (N, K), f(x) (N, hidden[-1]))``, ``f`` the last hidden layer as the output layer sees it, its
        noise included while training (the authors' code takes it before the noise: the same mean, a noisier
        estimate of it)."""
        h = self._noise(self._inner(x), self.input_noise, generator)
        for layer in self.hidden:
            h = self._noise(F.relu(layer(h)), self.hidden_noise, generator)
        return self.out(h), h

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The class logits (N, K)."""
        return self.forward_features(x, generator)[0]

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation of every layer, in order, on the batch ``x`` (N, 1, S, S) (no noise)."""
        h = self._inner(x)
        for layer in self.hidden:
            h = F.relu(layer.init_from_data(h))
        self.out.init_from_data(h)


class SSGANGenerator(nn.Module):
    """``z`` (N, z_dim) -> images (N, 1, S, S) in [-1, 1]: fully connected layers with batch norm and softplus,
    then a weight-normalised output layer and tanh (the paper's MNIST generator, with tanh for our range). It
    draws the (S - 2 border)^2 inner pixels and frames them with ``border`` pixels of background (-1)."""

    def __init__(self, z_dim: int, hidden: Sequence[int], image_size: int = 32, border: int = 0) -> None:
        super().__init__()
        self.image_size, self.border = image_size, _check_border(image_size, border)
        layers: list[nn.Module] = []
        widths = [z_dim, *hidden]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.Softplus()]
        layers += [WeightNormLinear(widths[-1], (image_size - 2 * border) ** 2), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, inner = self.border, self.image_size - 2 * self.border
        x = self.net(z).view(len(z), 1, inner, inner)  # (N, (S - 2b)^2) -> (N, 1, S - 2b, S - 2b)
        return F.pad(x, (b, b, b, b), value=-1.0)  # -> (N, 1, S, S)


def real_logit(logits: torch.Tensor) -> torch.Tensor:
    """``log Z(x) = logsumexp_k l_k``: the logit of D(x), since ``D = Z / (Z + 1) = sigmoid(log Z)``. (N, K) -> (N,)."""
    return torch.logsumexp(logits, dim=1)


def d_of_logits(logits: torch.Tensor) -> torch.Tensor:
    """``D(x) = Z(x) / (Z(x) + 1)``, ``Z = sum_k exp(l_k)``: the probability of "real" when the fake class has
    logit 0. Computed as ``sigmoid(logsumexp l)``, which never overflows. (N, K) -> (N,)."""
    return torch.sigmoid(real_logit(logits))


def supervised_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``-mean log softmax(l)_y``: the K-class cross-entropy on labeled digits, ``p(y | x, y <= K)``."""
    return F.cross_entropy(logits, labels)


def unsupervised_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """``-mean log D(x) - mean log(1 - D(G(z)))`` from the K logits of unlabeled real digits (N, K) and of
    generated ones (M, K): ``mean softplus(-lse(l_real)) + mean softplus(lse(l_fake))``, ``lse = logsumexp_k``.

    It equals the (K+1)-class cross-entropy with a fake logit of 0, taking "any real class" as the target
    of a real digit and class K+1 as the target of a generated one.
    """
    return F.softplus(-real_logit(logits_real)).mean() + F.softplus(real_logit(logits_fake)).mean()


def feature_matching_loss(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """``|| mean_i f(x_i) - mean_j f(G(z_j)) ||^2``: the squared distance between the mean features of a real
    batch (N, F) and a generated batch (M, F) (Salimans et al. 2016, section 3.1)."""
    return (f_real.mean(0) - f_fake.mean(0)).pow(2).sum()
