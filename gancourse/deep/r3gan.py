"""R3GAN's networks, sized for 32x32 digits (Huang, Gokaslan, Kuleshov & Tompkin 2024, "The GAN is dead;
long live the GAN! A Modern GAN Baseline", section 3).

A modern ConvNet in the ResNeXt mould, with **no normalisation layer** anywhere (no batch, layer, group or
pixel norm) and none of StyleGAN's machinery (no mapping network, style modulation, noise inputs or
minibatch stddev):

- a residual block is ``x + W3 phi(W2 phi(W1 x))``: a 1x1 convolution widening the channels by
  ``expansion`` (an *inverted bottleneck*), a 3x3 *grouped* convolution (groups of ``group_size``
  channels), a 1x1 convolution back to the block's width, with leaky ReLU (slope 0.2) ``phi``;
- *fix-up initialisation* (Zhang et al. 2019, as the paper): every convolution is drawn with He's variance
  times ``L^(-1/2)`` over the branch's two inner layers, i.e. a gain ``L^(-1/4)`` per layer for ``L``
  residual blocks in the network, and the branch's last convolution ``W3`` starts at **zero**, so that
  every block starts as the identity and the network as a plain stack of transitions;
- resolution changes in *transition layers*: bilinear upsampling then a 1x1 convolution in G; a 1x1
  convolution then bilinear downsampling by 2 in D (halving bilinearly is the mean of each 2x2 patch);
- G starts from a learned 4x4 *generative basis* (a (C, 4, 4) tensor per channel, scaled by a linear
  function of ``z``) and ends with a linear 1x1 convolution, as in the paper: no ``tanh``, whose saturation
  at the digits' black background (-1) can stall a young generator for good; samples are clipped to
  [-1, 1] when they are drawn for use (:meth:`R3GANGenerator.images`, as StyleGAN's image export). D mirrors
  G and ends with a 4x4 depthwise convolution (the *discriminative basis*) and a linear layer to one logit.

The stage widths are ``(2w, 2w, w, w)`` at 4, 8, 16 and 32 pixels in G (reversed in D) for a base width
``w``, with ``blocks`` residual blocks per stage (the paper: two per stage, widths 768 on CIFAR-10,
expansion 2, 16 channels per group).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.errors import check_positive_int

__all__ = ["ResidualBlock", "R3GANGenerator", "R3GANDiscriminator", "NORM_LAYERS", "stage_widths", "SLOPE"]

SLOPE = 0.2  # leaky ReLU slope
_GAIN = math.sqrt(2.0 / (1.0 + SLOPE ** 2))  # He's gain for a leaky ReLU
#: the normalisation layers that R3GAN's networks must not hold (checked by the tests)
NORM_LAYERS = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm)
_SIZE = 32
_STAGES = 4  # 4, 8, 16, 32 pixels


def stage_widths(width: int) -> tuple[int, ...]:
    """G's channels at 4, 8, 16 and 32 pixels for base width ``w``: ``(2w, 2w, w, w)`` (D uses them reversed)."""
    w = check_positive_int("width", width)
    return (2 * w, 2 * w, w, w)


def _conv(c_in: int, c_out: int, kernel: int, gain: float, groups: int = 1) -> nn.Conv2d:
    """A bias-carrying convolution drawn from ``N(0, gain^2 / fan_in)`` (zero weights when ``gain = 0``)."""
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups)
    fan_in = (c_in // groups) * kernel * kernel
    if gain > 0:
        nn.init.normal_(conv.weight, 0.0, gain / math.sqrt(fan_in))
    else:
        nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ResidualBlock(nn.Module):
    """``x + W3 phi(W2 phi(W1 x))``: inverted bottleneck (``expansion``), grouped 3x3, fix-up init.

    ``n_blocks`` is the number of residual blocks ``L`` in the whole network: the inner layers get the gain
    ``He * L^(-1/4)`` and ``W3`` starts at zero, so a fresh block is the identity. Shapes: (N, C, H, W) ->
    (N, C, H, W).
    """

    def __init__(self, channels: int, n_blocks: int, expansion: int = 2, group_size: int = 16):
        super().__init__()
        c = check_positive_int("channels", channels)
        hidden = c * check_positive_int("expansion", expansion)
        g = check_positive_int("group_size", group_size)
        if hidden % g:
            raise ValueError(f"group_size ({g}) must divide the expanded width channels * expansion ({hidden})")
        gain = _GAIN * check_positive_int("n_blocks", n_blocks) ** -0.25
        self.expand = _conv(c, hidden, 1, gain)
        self.grouped = _conv(hidden, hidden, 3, gain, groups=hidden // g)
        self.project = _conv(hidden, c, 1, 0.0)  # fix-up: the branch starts at zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.expand(x), SLOPE)  # (N, C, H, W) -> (N, eC, H, W)
        y = F.leaky_relu(self.grouped(y), SLOPE)  # (N, eC, H, W), groups of group_size channels
        return x + self.project(y)  # (N, eC, H, W) -> (N, C, H, W)


def _check_args(z_dim: int | None, channels: int, width: int, blocks: int, image_size: int) -> None:
    if z_dim is not None:
        check_positive_int("z_dim", z_dim)
    check_positive_int("channels", channels)
    check_positive_int("width", width)
    check_positive_int("blocks", blocks)
    if image_size != _SIZE:
        raise ValueError(f"R3GAN's networks here are built for image_size {_SIZE} (4 -> 8 -> 16 -> 32), got "
                         f"{image_size}")


class R3GANGenerator(nn.Module):
    """``z`` (N, z_dim) -> images (N, channels, 32, 32), unbounded while training (:meth:`images` clips them
    to [-1, 1]); no normalisation layers."""

    def __init__(self, z_dim: int = 64, channels: int = 1, width: int = 32, blocks: int = 1,
                 expansion: int = 2, group_size: int = 16, image_size: int = 32):
        super().__init__()
        _check_args(z_dim, channels, width, blocks, image_size)
        self.z_dim = z_dim
        widths = stage_widths(width)
        n_blocks = blocks * _STAGES
        self.basis = nn.Parameter(torch.randn(widths[0], 4, 4))  # the generative basis (C, 4, 4)
        self.to_coeffs = nn.Linear(z_dim, widths[0])  # z -> one coefficient per basis channel
        nn.init.normal_(self.to_coeffs.weight, 0.0, 1.0 / math.sqrt(z_dim))
        nn.init.zeros_(self.to_coeffs.bias)
        self.transitions = nn.ModuleList(
            [nn.Identity()] + [_conv(widths[i - 1], widths[i], 1, 1.0) for i in range(1, _STAGES)])
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(w, n_blocks, expansion, group_size) for _ in range(blocks)))
            for w in widths)
        self.to_image = _conv(widths[-1], channels, 1, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        x = self.to_coeffs(z)[:, :, None, None] * self.basis  # (N, C) -> (N, C, 4, 4)
        for i, (transition, stage) in enumerate(zip(self.transitions, self.stages)):
            if i > 0:  # (N, C, S, S) -> (N, C, 2S, 2S) -> (N, C', 2S, 2S)
                x = transition(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
            x = stage(x)
        return self.to_image(x)  # (N, C, 32, 32) -> (N, channels, 32, 32)

    def images(self, z: torch.Tensor) -> torch.Tensor:
        """``G(z)`` clipped to the data's range [-1, 1]: what samples, grids and metrics use."""
        return self(z).clamp(-1.0, 1.0)


class R3GANDiscriminator(nn.Module):
    """Images (N, channels, 32, 32) -> logits (N,); G's mirror image, no normalisation layers."""

    def __init__(self, channels: int = 1, width: int = 32, blocks: int = 1, expansion: int = 2,
                 group_size: int = 16, image_size: int = 32):
        super().__init__()
        _check_args(None, channels, width, blocks, image_size)
        self.channels = channels
        widths = stage_widths(width)[::-1]  # at 32, 16, 8, 4 pixels
        n_blocks = blocks * _STAGES
        self.from_image = _conv(channels, widths[0], 1, _GAIN)
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(w, n_blocks, expansion, group_size) for _ in range(blocks)))
            for w in widths)
        self.transitions = nn.ModuleList(
            [_conv(widths[i], widths[i + 1], 1, 1.0) for i in range(_STAGES - 1)] + [nn.Identity()])
        self.basis = nn.Conv2d(widths[-1], widths[-1], 4, groups=widths[-1])  # depthwise 4x4 -> 1x1
        self.to_logit = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or tuple(x.shape[2:]) != (_SIZE, _SIZE):
            raise ValueError(f"images must have shape (N, {self.channels}, {_SIZE}, {_SIZE}), got {tuple(x.shape)}")
        x = F.leaky_relu(self.from_image(x), SLOPE)  # (N, channels, 32, 32) -> (N, C, 32, 32)
        for i, (stage, transition) in enumerate(zip(self.stages, self.transitions)):
            x = stage(x)
            if i < _STAGES - 1:  # (N, C, S, S) -> (N, C', S, S) -> (N, C', S/2, S/2): bilinear halving
                x = F.avg_pool2d(transition(x), 2)
        x = F.leaky_relu(self.basis(x), SLOPE).flatten(1)  # (N, C, 4, 4) -> (N, C)
        return self.to_logit(x).squeeze(1)  # (N,)
