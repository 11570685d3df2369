"""Class-conditional GAN networks: a generator ``G(z, y)`` and two discriminators ``D(x, y)``.

A conditional GAN (Mirza & Osindero 2014, "Conditional generative adversarial nets") gives both players the
class ``y``: the generator must draw a digit *of class y*, and the discriminator judges the pair ``(x, y)``,
so a good "3" presented as a "7" is rejected. The game is the GAN game on pairs,

    min_G max_D  E_{x, y ~ data} log D(x, y) + E_{z, y} log(1 - D(G(z, y), y)).

How the label enters each network:

- generator: ``z`` concatenated with a learned label embedding ``e(y)``, fed to a DCGAN stack; as an option
  every batch norm is a :class:`ClassConditionalBatchNorm2d` (de Vries et al. 2017, "Modulating early visual
  processing by language"; Dumoulin et al. 2017, "A learned representation for artistic style"), so the
  label also sets a gain and bias per channel in every layer;
- :class:`ConcatDiscriminator`: the one-hot label of Mirza & Osindero as K constant planes (N, K, S, S),
  concatenated with the image at the discriminator's **input**;
- :class:`ProjectionDiscriminator` (Miyato & Koyama 2018, "cGANs with projection discriminator"):
  ``D(x, y) = psi(phi(x)) + <v_y, phi(x)>``, a feature map ``phi``, an unconditional head ``psi`` and one
  embedding ``v_y`` per class. It is the form of the optimal discriminator's logit
  ``log q(x, y) / p(x, y) = log q(y|x) / p(y|x) + log q(x) / p(x)`` (data q, generator p) when both class
  posteriors are softmax models on ``phi(x)``: the first term is then linear in ``phi(x)`` with a vector per
  class. The label is compared with what the image looks like instead of being mixed into the pixels.

Shapes at width ``w`` and 32x32: ``G: (N, z_dim) + (N,) -> (N, 4w, 4, 4) -> (N, 2w, 8, 8) -> (N, w, 16, 16)
-> (N, C, 32, 32)``; both discriminators' ``phi`` map ``(N, C, 32, 32)`` to the flattened last feature map
(N, 4w * 4 * 4), and ``psi`` is a linear layer on it (the 4x4 convolution that ends DCGAN's discriminator,
written as a matrix). Miyato & Koyama sum-pool ``phi`` over positions in their ResNets; at 4x4 we keep the
positions, so that ``v_y`` can ask for ink in different places for different digits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.deep.dcgan import init_dcgan_weights, stride2_stages
from gancourse.errors import check_choice, check_positive_int

__all__ = ["ClassConditionalBatchNorm2d", "ConditionalGenerator", "ConcatDiscriminator", "ProjectionDiscriminator",
           "check_labels", "one_hot_planes", "DISCRIMINATORS", "EMBED_INIT_STD", "make_discriminator"]

DISCRIMINATORS = ("projection", "concat")
#: the spread of the generator's label embedding at initialisation: small beside z ~ N(0, I)
EMBED_INIT_STD = 0.1


def check_labels(y: torch.Tensor, n_classes: int, n: int | None = None) -> torch.Tensor:
    """``y`` if it is an integer tensor (N,) of classes in ``0 .. n_classes - 1``, else a ValueError.

    ``n`` is the batch the labels go with (N must equal it). The range is checked for labels on the CPU
    (one look at their min and max); on an accelerator that look would stall the device every call, so
    there the embedding lookup's own index check is left to catch a bad label.
    """
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype.is_floating_point or y.dtype.is_complex \
            or y.dtype == torch.bool:
        got = f"{y.dtype} tensor of shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"labels must be an integer tensor of shape (N,), got a {got}")
    if n is not None and len(y) != n:
        raise ValueError(f"labels must hold one class per image ({n}), got {len(y)}")
    if y.device.type == "cpu" and len(y):
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"labels must lie in 0..{n_classes - 1} (n_classes = {n_classes}), got values from "
                             f"{lo} to {hi}")
    return y


def one_hot_planes(y: torch.Tensor, n_classes: int, size: int) -> torch.Tensor:
    """Labels (N,) -> constant one-hot planes (N, K, size, size): plane ``y_i`` of image ``i`` is 1, the rest 0."""
    return F.one_hot(y, n_classes).float()[:, :, None, None].expand(-1, -1, size, size)  # (N, K) -> (N, K, S, S)


class ClassConditionalBatchNorm2d(nn.Module):
    """Batch norm whose affine part depends on the class: ``out = gamma_y * (x - mu_B) / sqrt(var_B + eps) + beta_y``.

    ``mu_B, var_B`` are the usual per-channel batch statistics (running averages in eval mode), shared by all
    classes; ``gamma_y, beta_y`` (C,) are rows ``y`` of two embeddings, initialised at 1 and 0, so that before
    training the layer is a plain batch norm with unit gain. Class-conditional BN (de Vries et al. 2017,
    Dumoulin et al. 2017) is how the label reaches every layer of the generators of the projection-cGAN paper
    (Miyato & Koyama 2018) and of BigGAN (Brock et al. 2019).

    ``forward(x, y)``: x (N, C, H, W), y (N,) integer classes -> (N, C, H, W). The per-image gain and bias
    come from :meth:`affine`; a layer conditioned on a vector instead of a class (BigGAN's shared embedding
    with a chunk of ``z``, mapped linearly to ``1 + gain`` and ``bias``) overrides that method alone.
    """

    def __init__(self, num_features: int, n_classes: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        self.n_classes = check_positive_int("n_classes", n_classes)
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Embedding(n_classes, num_features)  # gamma_k, row k for class k
        self.bias = nn.Embedding(n_classes, num_features)  # beta_k
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every class's gain 1 and bias 0 (and fresh running statistics)."""
        self.bn.reset_running_stats()
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def affine(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gamma_y, beta_y)`` of each image's class: two (N, C) tensors."""
        check_labels(y, self.n_classes)
        return self.gain(y), self.bias(y)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (N, {self.num_features}, H, W), got {tuple(x.shape)}")
        gamma, beta = self.affine(y)  # (N, C) each
        if gamma.shape != (len(x), self.num_features) or beta.shape != gamma.shape:
            raise ValueError(f"the condition must give one gain and bias per image, shape ({len(x)}, "
                             f"{self.num_features}), got {tuple(gamma.shape)} and {tuple(beta.shape)}")
        h = self.bn(x)  # (N, C, H, W), normalised per channel
        return h * gamma[:, :, None, None] + beta[:, :, None, None]  # (N, C) -> (N, C, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, n_classes={self.n_classes}"


class ConditionalGenerator(nn.Module):
    """``G(z, y)``: noise (N, z_dim) and classes (N,) -> images (N, channels, S, S) in [-1, 1].

    The input is ``[z, e(y)]`` (N, z_dim + embed_dim) with ``e`` a learned embedding, read as a 1x1 map; then
    DCGAN's stack: a 4x4 transposed convolution to ``w * 2^(k-1)`` channels and ``k - 1`` stride-2 ones that
    halve the channels, each followed by a norm and ReLU, and a last stride-2 transposed convolution with
    tanh. The norm is batch norm, or with ``conditional_bn`` a :class:`ClassConditionalBatchNorm2d` (the label
    then acts in every layer).

    ``e`` starts small, N(0, ``EMBED_INIT_STD``^2) per entry: with codes as large as ``z`` (N(0, 1)) the first
    batch norm spends much of each channel's spread on the class, and on MNIST-5k the generator then learned
    to ignore ``z``, drawing one image per class; starting small, it learns how much room the class needs.
    """

    def __init__(self, z_dim: int = 100, n_classes: int = 10, embed_dim: int = 32, channels: int = 1,
                 width: int = 64, image_size: int = 32, conditional_bn: bool = True):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.n_classes = check_positive_int("n_classes", n_classes)
        check_positive_int("embed_dim", embed_dim)
        check_positive_int("channels", channels)
        check_positive_int("width", width)
        k = stride2_stages(image_size)
        self.image_size, self.conditional_bn = image_size, bool(conditional_bn)
        self.embed = nn.Embedding(n_classes, embed_dim)  # e(y)
        nn.init.normal_(self.embed.weight, 0.0, EMBED_INIT_STD)
        c = width * 2 ** (k - 1)
        convs = [nn.ConvTranspose2d(z_dim + embed_dim, c, 4, 1, 0, bias=False)]  # (N, z+e, 1, 1) -> (N, c, 4, 4)
        sizes = [c]
        for _ in range(k - 1):  # (N, c, s, s) -> (N, c/2, 2s, 2s)
            convs.append(nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False))
            c //= 2
            sizes.append(c)
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(ClassConditionalBatchNorm2d(s, n_classes) if conditional_bn else nn.BatchNorm2d(s)
                                   for s in sizes)
        self.out = nn.ConvTranspose2d(c, channels, 4, 2, 1)  # no norm on the output
        self.apply(init_dcgan_weights)  # convolutions N(0, 0.02), BN gains N(1, 0.02); embeddings untouched

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        check_labels(y, self.n_classes, len(z))
        h = torch.cat([z, self.embed(y)], dim=1)[:, :, None, None]  # (N, z_dim + embed_dim, 1, 1)
        for conv, norm in zip(self.convs, self.norms):
            h = conv(h)
            h = F.relu(norm(h, y) if self.conditional_bn else norm(h))
        return torch.tanh(self.out(h))  # (N, C, S, S)


def _phi(in_channels: int, width: int, image_size: int) -> tuple[nn.Sequential, int]:
    """DCGAN's discriminator stack without its last layer: ``(N, in, S, S) -> (N, D)``, D = 4w * 4 * 4 at S = 32.

    Strided 4x4 convolutions with LeakyReLU(0.2), batch norm on every layer but the first, and the last
    4x4 feature map flattened.
    """
    k = stride2_stages(image_size)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    c = width
    for _ in range(k - 1):  # (N, c, s, s) -> (N, 2c, s/2, s/2)
        layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
        c *= 2
    layers.append(nn.Flatten())  # (N, c, 4, 4) -> (N, 16c)
    return nn.Sequential(*layers), c * 16


class _ConditionalDiscriminator(nn.Module):
    """What both discriminators share: the checks, ``phi`` and the unconditional head ``psi``."""

    def __init__(self, in_channels: int, channels: int, n_classes: int, width: int, image_size: int):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.n_classes = check_positive_int("n_classes", n_classes)
        check_positive_int("width", width)
        self.image_size = image_size
        self.phi, self.feature_dim = _phi(in_channels, width, image_size)
        self.psi = nn.Linear(self.feature_dim, 1)  # (N, D) -> (N, 1)

    def _check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        s = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, s, s):
            raise ValueError(f"x must have shape (N, {self.channels}, {s}, {s}), got {tuple(x.shape)}")
        check_labels(y, self.n_classes, len(x))


class ConcatDiscriminator(_ConditionalDiscriminator):
    """``D(x, y) = psi(phi([x, onehot(y)]))``: the label as K constant one-hot planes beside the image's channels.

    The first convolution sees (N, C + K, S, S); the label can only act through that layer's weights on the
    planes, i.e. as a per-class bias of the first feature map (constant but near the border, where the zero
    padding cuts the planes). Logits (N,).
    """

    def __init__(self, channels: int = 1, n_classes: int = 10, width: int = 64, image_size: int = 32):
        super().__init__(channels + n_classes, channels, n_classes, width, image_size)
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x, y)
        planes = one_hot_planes(y, self.n_classes, self.image_size)  # (N, K, S, S)
        return self.psi(self.phi(torch.cat([x, planes.to(x.dtype)], dim=1)))[:, 0]  # (N, C + K, S, S) -> (N,)


class ProjectionDiscriminator(_ConditionalDiscriminator):
    """``D(x, y) = psi(phi(x)) + <v_y, phi(x)>`` (Miyato & Koyama 2018, eq. 3): logits (N,).

    ``phi(x)`` (N, D) sees the image only; ``psi`` (a linear layer) says how real it looks whatever its
    class; ``v_y``, row ``y`` of the embedding ``V`` (K, D), says how well it matches class ``y``. With ``V = 0``
    this is DCGAN's unconditional discriminator.
    """

    def __init__(self, channels: int = 1, n_classes: int = 10, width: int = 64, image_size: int = 32):
        super().__init__(channels, channels, n_classes, width, image_size)
        self.embed = nn.Embedding(n_classes, self.feature_dim)  # V, one row v_k per class
        self.apply(init_dcgan_weights)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)  # the scale of psi's weights

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x, y)
        h = self.phi(x)  # (N, C, S, S) -> (N, D)
        return self.psi(h)[:, 0] + (self.embed(y) * h).sum(dim=1)  # (N,) + sum_D (N, D) * (N, D) -> (N,)


def make_discriminator(kind: str, channels: int = 1, n_classes: int = 10, width: int = 64,
                       image_size: int = 32) -> _ConditionalDiscriminator:
    """A ``"projection"`` or ``"concat"`` discriminator (a ValueError lists the kinds)."""
    check_choice("discriminator", kind, DISCRIMINATORS)
    cls = ProjectionDiscriminator if kind == "projection" else ConcatDiscriminator
    return cls(channels, n_classes, width, image_size)
