"""Progressive GAN's three layer-level ideas, shared by PGGAN and StyleGAN (Karras et al. 2018, section 4).

- **Equalized learning rate** (section 4.1): weights are stored as ``N(0, 1)`` and scaled at run time by He's
  constant ``c = gain / sqrt(fan_in)``, so ``y = (c w) x + b``. Adam's step is then the same size for every layer
  relative to its effective weight. ``lr_mul`` (StyleGAN's mapping network uses 0.01) stores ``w / lr_mul`` and
  multiplies back, which divides the layer's effective learning rate by ``1 / lr_mul``.
- **Pixelwise feature normalization** (section 4.2): ``b_{x,y} = a_{x,y} / sqrt(mean_j (a^j_{x,y})^2 + eps)``
  over the channels ``j`` of each pixel; it replaces batch norm in the generator.
- **Minibatch standard deviation** (section 3): the standard deviation of each feature over a group of
  samples, averaged to one number per group and appended as an extra constant feature map, so the
  discriminator can see how varied a batch is.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.errors import check_positive, check_positive_int

__all__ = ["EqualizedLinear", "EqualizedConv2d", "PixelNorm", "pixel_norm", "MinibatchStdDev", "minibatch_stddev"]


class EqualizedLinear(nn.Module):
    """``y = x (c W)^T + b_mul b`` with ``W ~ N(0, 1) / lr_mul`` and ``c = gain * lr_mul / sqrt(in_features)``.

    x: (N, in_features) -> (N, out_features). ``bias_init`` sets the effective bias (StyleGAN's AdaIN scales
    start at 1).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = math.sqrt(2),
                 lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        self.lr_mul = check_positive("lr_mul", lr_mul)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.scale = check_positive("gain", gain) * lr_mul / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, scale={self.scale:.4g}, lr_mul={self.lr_mul}"


class EqualizedConv2d(nn.Module):
    """A convolution with equalized learning rate: ``conv(x, c W) + b``, ``W ~ N(0, 1)``,
    ``c = gain / sqrt(in_channels * k * k)``. x: (N, C_in, H, W) -> (N, C_out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = True,
                 gain: float = math.sqrt(2)):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size)):
            check_positive_int(name, v)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = check_positive("gain", gain) / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, padding={self.padding}, scale={self.scale:.4g}"


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x / sqrt(mean_c x_c^2 + eps)`` over dimension 1 (channels, or the features of a vector)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """:func:`pixel_norm` as a layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Append one feature map: within each group of ``group_size`` samples (samples ``i``, ``i + N/G``, ...,
    as in the reference code), the standard deviation of every feature and pixel over the group, averaged
    over features and pixels. (N, C, H, W) -> (N, C + 1, H, W). The group is ``min(group_size, N)``
    and must divide N."""
    n, c, h, w = x.shape
    g = min(check_positive_int("group_size", group_size), n)
    if n % g:
        raise ValueError(f"the minibatch standard deviation needs a batch ({n}) divisible by its group size ({g})")
    y = x.reshape(g, n // g, c, h, w)  # (G, M, C, H, W): sample i sits in group i mod M
    y = (y - y.mean(dim=0)).square().mean(dim=0)  # (M, C, H, W): the variance over the group
    y = (y + eps).sqrt().mean(dim=(1, 2, 3))  # (M,)
    y = y.repeat(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)  # (N, 1, H, W)
    return torch.cat([x, y], dim=1)


class MinibatchStdDev(nn.Module):
    """:func:`minibatch_stddev` as a layer; adds one channel."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = check_positive_int("group_size", group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"
