"""CycleGAN networks: a small ResNet generator and a PatchGAN discriminator.

Zhu et al. (2017), "Unpaired image-to-image translation using cycle-consistent
adversarial networks", appendix 7.2, scaled down for 32x32 images:

- generator ``c7s1-w, d2w, d4w, R4w x n_blocks, u2w, uw, c7s1-C``: a 7x7
  convolution, two stride-2 downsampling convolutions, residual blocks at
  1/4 resolution, two stride-2 transposed convolutions back up and a 7x7
  convolution to the output channels with tanh; instance norm and ReLU,
  reflection padding;
- PatchGAN discriminator: 4x4 convolutions ``C64-C128-C256`` (LeakyReLU 0.2,
  instance norm except on the first) then a 4x4 convolution to one channel.
  Each output logit judges one overlapping patch of the input (the receptive
  field), so the output is a map, not a single number.

Weights are initialised from N(0, 0.02) as in the paper's code.
"""
from __future__ import annotations

import torch
from torch import nn

from gancourse.deep.dcgan import _check_int, init_dcgan_weights

__all__ = ["ResidualBlock", "ResnetGenerator", "PatchDiscriminator", "patch_receptive_field"]


class ResidualBlock(nn.Module):
    """``x + (reflect-pad, conv3x3, IN, ReLU, reflect-pad, conv3x3, IN)(x)``, shape (N, C, H, W) kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """``G: (N, in_channels, S, S) -> (N, out_channels, S, S)`` in [-1, 1]; ``S`` divisible by 4."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 32, n_blocks: int = 6):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                        ("n_blocks", n_blocks)):
            _check_int(name, v)
        self.in_channels, self.out_channels = in_channels, out_channels
        w = width
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, w, 7), nn.InstanceNorm2d(w, affine=True), nn.ReLU(True),
        ]
        for mult in (1, 2):  # (N, w*m, S, S) -> (N, 2w*m, S/2, S/2)
            layers += [nn.Conv2d(w * mult, 2 * w * mult, 3, 2, 1), nn.InstanceNorm2d(2 * w * mult, affine=True),
                       nn.ReLU(True)]
        layers += [ResidualBlock(4 * w) for _ in range(n_blocks)]
        for mult in (4, 2):  # (N, w*m, s, s) -> (N, w*m/2, 2s, 2s)
            layers += [nn.ConvTranspose2d(w * mult, w * mult // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(w * mult // 2, affine=True), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"x must have shape (N, {self.in_channels}, H, W) with H and W divisible by 4, "
                             f"got {tuple(x.shape)}")
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """``D: (N, channels, S, S) -> patch logits (N, 1, S', S')``.

    ``n_layers`` stride-2 convolutions (widths ``w, 2w, 4w, ...``), one stride-1
    convolution and a stride-1 convolution to one channel, all 4x4 with padding 1.
    With ``n_layers=2`` a 32x32 input gives a 6x6 map of logits, each seeing a
    34x34 window (with padding); ``n_layers=1`` gives a 14x14 map of 16x16
    patches; the paper's 70x70 PatchGAN is ``n_layers=3`` (:func:`patch_receptive_field`).
    """

    def __init__(self, channels: int = 3, width: int = 64, n_layers: int = 2):
        super().__init__()
        _check_int("channels", channels)
        _check_int("width", width)
        _check_int("n_layers", n_layers)
        self.channels, self.n_layers = channels, n_layers
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            c_out = width * min(2 ** i, 8)
            layers += [nn.Conv2d(c, c_out, 4, stride, 1), nn.InstanceNorm2d(c_out, affine=True),
                       nn.LeakyReLU(0.2, True)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must have shape (N, {self.channels}, H, W), got {tuple(x.shape)}")
        return self.net(x)


def patch_receptive_field(n_layers: int = 2) -> int:
    """Side of the input patch seen by one output logit of ``PatchDiscriminator(n_layers=...)``.

    Walk back from one output pixel: ``r <- (r - 1) * stride + 4`` through each 4x4 convolution.
    """
    strides = [2] * n_layers + [1, 1]  # first conv + (n_layers - 1) stride-2 convs, then two stride-1 convs
    r = 1
    for s in reversed(strides):
        r = (r - 1) * s + 4
    return r
