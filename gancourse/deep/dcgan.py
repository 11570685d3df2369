"""DCGAN generator and discriminator, and the WGAN-GP critic, for small square images.

Architecture guidelines of Radford et al. (2016), "Unsupervised representation
learning with deep convolutional generative adversarial networks":

- no pooling: the generator upsamples with strided transposed convolutions,
  the discriminator downsamples with strided convolutions;
- batch norm in both networks, except on the generator's output layer and the
  discriminator's input layer;
- ReLU in the generator with tanh on the output (images live in [-1, 1]);
  LeakyReLU(0.2) in the discriminator;
- weights drawn from N(0, 0.02) (batch-norm gains from N(1, 0.02)).

For ``image_size = 32`` and width ``w`` the generator is
``z (N, z_dim) -> (N, 4w, 4, 4) -> (N, 2w, 8, 8) -> (N, w, 16, 16) -> (N, C, 32, 32)``
and the discriminator mirrors it. The WGAN-GP critic (Gulrajani et al. 2017)
is the discriminator without batch norm -- the gradient penalty is taken per
sample, and batch norm would couple the samples of a batch -- with layer norm
as an option (``GroupNorm(1, C)``: each sample normalised over (C, H, W)).

Two options come from Salimans et al. (2016), "Improved techniques for training GANs"
(:mod:`gancourse.deep.tricks`): the generator's batch norm can be replaced by virtual batch
norm against a fixed reference batch of noise (``norm="virtual"``), and the discriminator can
end in a minibatch-discrimination layer (``minibatch_kernels > 0``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gancourse.deep.tricks import MBD_KERNEL_DIM, MinibatchDiscrimination, VirtualBatchNorm2d
from gancourse.errors import check_choice, check_positive_int

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "WGANCritic", "init_dcgan_weights", "count_parameters",
           "stride2_stages", "CRITIC_NORMS", "G_NORMS"]

CRITIC_NORMS = ("none", "layer")
G_NORMS = ("batch", "virtual")  # the generator's normalization: batch norm, or virtual batch norm


def stride2_stages(image_size: int) -> int:
    """The number of stride-2 stages between 4x4 and ``image_size`` (a power of two >= 8)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8 \
            or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size!r}")
    return int(math.log2(image_size)) - 2


def _check_int(name: str, value: int) -> int:
    return check_positive_int(name, value)


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation, applied with ``net.apply(init_dcgan_weights)``.

    Convolution weights ~ N(0, 0.02), normalisation gains ~ N(1, 0.02), biases 0
    (Radford et al. 2016, section 4; also used by CycleGAN).
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, VirtualBatchNorm2d)) \
            and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class DCGANGenerator(nn.Module):
    """``G(z)``: noise (N, z_dim) -> images (N, channels, image_size, image_size) in [-1, 1].

    Layers: a 4x4 transposed convolution from the 1x1 noise map to ``w * 2^(k-1)``
    channels, then ``k - 1`` stride-2 transposed convolutions that halve the
    channels and double the side, each followed by BN + ReLU, and a last
    stride-2 transposed convolution to ``channels`` with tanh (no BN).

    ``norm="virtual"`` replaces each BN by :class:`~gancourse.deep.tricks.VirtualBatchNorm2d`: the
    constructor draws a reference batch of ``n_reference`` noise vectors ``z_reference`` (a buffer,
    so it is saved with the weights), and every forward pass runs ``[z_reference; z]`` through the
    network and returns the rows of ``z``. Each image then depends on its own ``z`` and the
    reference batch only, and the network has no train/eval difference.
    """

    def __init__(self, z_dim: int = 100, channels: int = 1, width: int = 64, image_size: int = 32,
                 norm: str = "batch", n_reference: int = 64):
        super().__init__()
        self.z_dim = _check_int("z_dim", z_dim)
        _check_int("channels", channels)
        _check_int("width", width)
        self.norm = check_choice("norm", norm, G_NORMS)
        self.n_reference = _check_int("n_reference", n_reference) if norm == "virtual" else 0
        k = stride2_stages(image_size)
        self.image_size = image_size

        def bn(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else VirtualBatchNorm2d(c, n_reference)

        c = width * 2 ** (k - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), bn(c), nn.ReLU(True)]
        for _ in range(k - 1):  # (N, c, s, s) -> (N, c/2, 2s, 2s)
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), bn(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]  # no BN on the output
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)
        if norm == "virtual":  # chosen once, after the weights, from the same (seeded) random stream
            self.register_buffer("z_reference", torch.randn(n_reference, z_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        if self.norm == "virtual":
            z = torch.cat([self.z_reference.to(z.dtype), z])  # (R + N, z_dim): the reference batch first
            return self.net(z[:, :, None, None])[self.n_reference:]  # (R + N, C, S, S) -> (N, C, S, S)
        return self.net(z[:, :, None, None])  # (N, z_dim, 1, 1) -> (N, C, S, S)


def _down_stack(channels: int, width: int, image_size: int, norm: str) -> nn.Sequential:
    """Strided 4x4 convolutions ``(N, C, S, S) -> (N, 1)`` (logits), LeakyReLU(0.2), no norm on the input."""
    k = stride2_stages(image_size)
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    c = width
    for _ in range(k - 1):  # (N, c, s, s) -> (N, 2c, s/2, s/2)
        layers.append(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=norm == "none"))  # a norm layer has its own bias
        if norm == "batch":
            layers.append(nn.BatchNorm2d(2 * c))
        elif norm == "layer":
            layers.append(nn.GroupNorm(1, 2 * c))  # layer norm over (C, H, W), per-channel gain and bias
        layers.append(nn.LeakyReLU(0.2, True))
        c *= 2
    layers += [nn.Conv2d(c, 1, 4, 1, 0), nn.Flatten(0)]  # (N, c, 4, 4) -> (N, 1, 1, 1) -> (N,)
    return nn.Sequential(*layers)


class DCGANDiscriminator(nn.Module):
    """``D(x)``: images (N, channels, S, S) -> logits (N,); BN on every layer but the first.

    ``minibatch_kernels = B > 0`` ends D with minibatch discrimination: the last 4x4 feature map
    is flattened to ``f`` (N, A) with ``A = 16 * channels of that map``,
    :class:`~gancourse.deep.tricks.MinibatchDiscrimination` appends B batch-similarity features,
    and a linear layer reads all ``A + B`` of them (without the trick the last layer is a 4x4
    convolution over that map, the same map from A features to one logit).
    """

    def __init__(self, channels: int = 1, width: int = 64, image_size: int = 32, minibatch_kernels: int = 0,
                 kernel_dim: int = MBD_KERNEL_DIM):
        super().__init__()
        _check_int("channels", channels)
        _check_int("width", width)
        check_positive_int("minibatch_kernels", minibatch_kernels, minimum=0)
        self.channels, self.image_size = channels, image_size
        self.net = _down_stack(channels, width, image_size, "batch")
        self.minibatch: MinibatchDiscrimination | None = None
        if minibatch_kernels:
            last = self.net[-2]  # Conv2d(c, 1, 4): the logit from the (N, c, 4, 4) feature map
            a = last.in_channels * 4 * 4
            self.net = self.net[:-2]  # now (N, C, S, S) -> (N, c, 4, 4)
            self.minibatch = MinibatchDiscrimination(a, minibatch_kernels, kernel_dim)
            self.head = nn.Linear(a + minibatch_kernels, 1)
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, self.image_size)
        if self.minibatch is None:
            return self.net(x)
        f = self.net(x).flatten(1)  # (N, c, 4, 4) -> (N, A)
        return self.head(self.minibatch(f))[:, 0]  # (N, A) -> (N, A + B) -> (N, 1) -> (N,)


class WGANCritic(nn.Module):
    """``f(x)``: images (N, channels, S, S) -> unbounded scores (N,); no batch norm.

    ``norm="none"`` (default) or ``"layer"`` (layer norm per sample, as the
    WGAN-GP paper suggests as a drop-in for batch norm).
    """

    def __init__(self, channels: int = 1, width: int = 64, image_size: int = 32, norm: str = "none"):
        super().__init__()
        _check_int("channels", channels)
        _check_int("width", width)
        check_choice("norm", norm, CRITIC_NORMS)
        self.channels, self.image_size, self.norm = channels, image_size, norm
        self.net = _down_stack(channels, width, image_size, norm)
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, self.image_size)
        return self.net(x)


def _check_images(x: torch.Tensor, channels: int, size: int) -> None:
    if x.ndim != 4 or x.shape[1:] != (channels, size, size):
        raise ValueError(f"x must have shape (N, {channels}, {size}, {size}), got {tuple(x.shape)}")
