"""The three networks of BiGAN / ALI: an encoder ``E: x -> z``, a generator ``G: z -> x`` and a joint
discriminator ``D(x, z)`` that judges image *and* code together.

Donahue, Krähenbühl and Darrell (2017), "Adversarial feature learning" (BiGAN), and Dumoulin et al. (2017),
"Adversarially learned inference" (ALI), add an encoder to the GAN game. ``D`` sees pairs: a real image with
its code ``(x, E(x))``, or a generated image with the noise it came from ``(G(z), z)``. The only way for ``E``
and ``G`` to make the two kinds of pairs indistinguishable is to agree: at the optimum the joint distributions
``p(x) delta(z - E(x))`` and ``p(z) delta(x - G(z))`` are equal, so ``E = G^{-1}`` where the data lie.

- :class:`Encoder` is **deterministic**, as in BiGAN: ``z = E(x)``. ALI's encoder is Gaussian,
  ``z = mu(x) + sigma(x) * eps`` (reparameterised); its features for a probe would be ``mu(x)`` anyway. A
  deterministic ``E`` keeps the identity ``E = G^{-1}`` exact and lets the linear probe read exactly the code that
  ``D`` judged. Its body mirrors the DCGAN discriminator ``(N, C, 32, 32) -> (N, 4w, 4, 4)`` (batch norm after the
  first layer) and ends in a linear 4x4 convolution to ``z_dim`` numbers, optionally standardised over the batch
  (``standardize``: batch norm without gain or bias). The prior is ``N(0, I)``; standardised codes match its mean
  and variance from the first step, so ``D`` cannot tell the two kinds of pairs apart by the code's first two
  moments alone and has to look at how codes go with images.
- the generator is :class:`gancourse.deep.dcgan.DCGANGenerator`, unchanged.
- :class:`JointDiscriminator`: a convolutional path for ``x`` (DCGAN's, optionally with batch norm), an MLP path for
  ``z``, the two feature vectors concatenated and an MLP to one logit; optionally dropout after every activation,
  as in ALI's discriminator, with masks from a seeded generator (:class:`SeededDropout`). Weights are initialised
  as in DCGAN (N(0, 0.02)).
"""
from __future__ import annotations

import torch
from torch import nn

from gancourse.deep.dcgan import init_dcgan_weights
from gancourse.errors import check_positive_int

__all__ = ["Encoder", "JointDiscriminator", "SeededDropout", "IMAGE_SIZE"]

IMAGE_SIZE = 32  # the networks are written for 32x32 images (MNIST-5k padded)


def _check_images(x: torch.Tensor, channels: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (channels, IMAGE_SIZE, IMAGE_SIZE):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (N, {channels}, {IMAGE_SIZE}, {IMAGE_SIZE}), got {got}")


class SeededDropout(nn.Module):
    """Dropout whose masks come from ``self.generator`` (a ``torch.Generator`` the trainer sets; None: the global
    one), so that a run's every random number comes from its seed: in training, each unit is zeroed with
    probability ``p`` and the others scaled by ``1 / (1 - p)``; in eval mode it is the identity."""

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {p!r}")
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return h
        keep = torch.rand(h.shape, generator=self.generator, device=h.device) >= self.p  # (same shape as h)
        return h * keep.to(h.dtype) / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _act(dropout: float | None) -> list[nn.Module]:
    """LeakyReLU(0.2), followed by dropout when ``dropout`` is not None."""
    return [nn.LeakyReLU(0.2)] + ([] if dropout is None else [SeededDropout(dropout)])


def _conv_body(channels: int, width: int, batch_norm: bool, dropout: float | None = None) -> nn.Sequential:
    """``(N, C, 32, 32) -> (N, 4w, 4, 4)``: three strided 4x4 convolutions, LeakyReLU(0.2), no norm on the input."""
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), *_act(dropout)]  # -> (N, w, 16, 16)
    c = width
    for _ in range(2):  # (N, c, s, s) -> (N, 2c, s/2, s/2)
        layers.append(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(2 * c))
        layers += _act(dropout)
        c *= 2
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """``E(x)``: images (N, channels, 32, 32) -> codes (N, z_dim), deterministic (BiGAN).

    DCGAN discriminator body of base width ``width`` then a linear 4x4 convolution:
    ``(N, C, 32, 32) -> (N, 4w, 4, 4) -> (N, z_dim, 1, 1) -> (N, z_dim)``, then with ``standardize`` each code
    dimension standardised over the batch (its running mean and variance in eval mode).
    """

    def __init__(self, z_dim: int = 32, channels: int = 1, width: int = 32, standardize: bool = False):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.channels = check_positive_int("channels", channels)
        check_positive_int("width", width)
        self.body = _conv_body(channels, width, batch_norm=True)
        self.head = nn.Conv2d(4 * width, z_dim, 4, 1, 0)  # (N, 4w, 4, 4) -> (N, z_dim, 1, 1)
        # each code dimension standardised over the batch (running statistics in eval mode): the first two
        # moments of E(x) then match the prior N(0, I) by construction
        self.out_norm = nn.BatchNorm1d(z_dim, affine=False) if standardize else nn.Identity()
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels)
        return self.out_norm(self.head(self.body(x)).flatten(1))  # (N, z_dim, 1, 1) -> (N, z_dim)


class JointDiscriminator(nn.Module):
    """``D(x, z)``: a pair of images (N, channels, 32, 32) and codes (N, z_dim) -> logits (N,).

    ``h_x = conv(x)`` (N, 4w * 16), ``h_z = mlp(z)`` (N, hidden), ``D = mlp([h_x, h_z])``: one logit per pair.
    ``batch_norm`` adds batch norm to the image path (not on its input layer); ``dropout`` > 0 adds
    :class:`SeededDropout` after every activation (call :meth:`set_generator` to seed its masks).
    """

    def __init__(self, z_dim: int = 32, channels: int = 1, width: int = 32, hidden: int = 256, dropout: float = 0.0,
                 batch_norm: bool = False):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.channels = check_positive_int("channels", channels)
        check_positive_int("width", width)
        check_positive_int("hidden", hidden)
        p = SeededDropout(dropout).p if dropout else None  # checks the range
        self.x_path = nn.Sequential(_conv_body(channels, width, batch_norm, p), nn.Flatten(1))  # -> (N, 4w * 16)
        self.z_path = nn.Sequential(nn.Linear(z_dim, hidden), *_act(p),
                                    nn.Linear(hidden, hidden), *_act(p))  # (N, z_dim) -> (N, hidden)
        self.joint = nn.Sequential(nn.Linear(4 * width * 16 + hidden, hidden), *_act(p),
                                   nn.Linear(hidden, 1), nn.Flatten(0))  # (N, 4w * 16 + hidden) -> (N,)
        self.apply(init_dcgan_weights)

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Draw every dropout mask from ``generator``."""
        for m in self.modules():
            if isinstance(m, SeededDropout):
                m.generator = generator

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels)
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or tuple(z.shape) != (len(x), self.z_dim):
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape ({len(x)}, {self.z_dim}) to pair with x, got {got}")
        h = torch.cat([self.x_path(x), self.z_path(z)], dim=1)  # (N, 4w * 16) + (N, hidden) -> (N, 4w * 16 + hidden)
        return self.joint(h)
