"""Progressive GAN's networks and growth schedule (Karras et al. 2018, "Progressive growing of GANs for improved
quality, stability, and variation").

Both networks are built for the final resolution from the start, one block per resolution ``4, 8, ..., S``, but a
forward pass at resolution ``r`` runs only the blocks up to ``r``. Training starts at 4x4 and *grows*: each new
resolution is first **faded in** over a number of images, then trained alone (**stabilised**). During the fade at
resolution ``r`` with blend ``alpha`` in [0, 1] (section 3, figure 2):

- generator: ``G_r(z) = (1 - alpha) * up(toRGB_{r/2}(h_{r/2})) + alpha * toRGB_r(block_r(h_{r/2}))``, with
  ``up`` nearest-neighbour upsampling and ``h_{r/2}`` the features of the blocks up to ``r/2``;
- discriminator, mirrored: ``h = (1 - alpha) * fromRGB_{r/2}(pool(x)) + alpha * block_r(fromRGB_r(x))``, with
  ``pool`` 2x2 average pooling, then the blocks below ``r/2`` as usual.

At ``alpha = 0`` the networks are exactly the ``r/2`` ones (the new layers are there but weigh nothing), so
growing never jolts training; at ``alpha = 1`` the old toRGB / fromRGB layers drop out.

Blocks (every convolution and linear layer is an :class:`~gancourse.deep.equalized.EqualizedConv2d` /
:class:`~gancourse.deep.equalized.EqualizedLinear`, LeakyReLU(0.2) throughout):

- G at 4x4: ``z`` pixel-normed, a linear layer to (C, 4, 4), a 3x3 convolution; at ``r > 4``: upsample, two
  3x3 convolutions; each convolution followed by :func:`~gancourse.deep.equalized.pixel_norm` (section 4.2).
  toRGB is a linear 1x1 convolution (no tanh, as in the paper; samples are clipped to [-1, 1]).
- D at ``r > 4``: two 3x3 convolutions and 2x2 average pooling; at 4x4: the minibatch standard deviation
  (section 3), a 3x3 convolution, a linear layer to C features and a linear layer to the score. fromRGB is a
  1x1 convolution with LeakyReLU.

Channels: ``width`` at the final resolution, doubling at each halving up to ``width_max`` (the paper's 512 at
1024x1024 down to 16; here 16 at 32x32 up to 128 at 4x4, a CPU size).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.deep.equalized import EqualizedConv2d, EqualizedLinear, minibatch_stddev, pixel_norm
from gancourse.errors import check_positive_int

__all__ = ["GrowSchedule", "PGGenerator", "PGDiscriminator", "resolutions", "blend", "downsample", "upsample",
           "channels_at"]

START = 4  # the first resolution


def resolutions(image_size: int) -> tuple[int, ...]:
    """``(4, 8, ..., image_size)``; ``image_size`` must be a power of two >= 8."""
    check_positive_int("image_size", image_size)
    if image_size < 2 * START or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two of at least {2 * START}, got {image_size}")
    return tuple(START * 2 ** k for k in range(int(math.log2(image_size // START)) + 1))


def channels_at(r: int, image_size: int, width: int, width_max: int) -> int:
    """Feature maps at resolution ``r``: ``min(width * image_size / r, width_max)``."""
    return min(width * (image_size // r), width_max)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling: (N, C, H, W) -> (N, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling: (N, C, H, W) -> (N, C, H/2, W/2)."""
    return F.avg_pool2d(x, 2)


def blend(low: torch.Tensor, high: torch.Tensor, alpha: float) -> torch.Tensor:
    """The fade-in ``(1 - alpha) * low + alpha * high``; exactly ``low`` at ``alpha = 0`` (``high`` finite)."""
    return (1.0 - alpha) * low + alpha * high


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    return alpha


class GrowSchedule:
    """Images seen -> ``(resolution, alpha)``: the phases of progressive growing.

    The run starts at 4x4 and stays there for ``stable[0]`` images; then for each next resolution ``r`` it fades
    ``r`` in over ``fade[i]`` images (``alpha`` rising linearly from 0 to 1) and stabilises for ``stable[i + 1]``
    images; the final resolution, once faded in, is kept to the end of the run (its stabilising phase is open).
    So ``stable`` has one entry per resolution below the final one and ``fade`` one per resolution above 4.
    The paper uses 800k images for every phase; here low resolutions are cheap and short.
    """

    def __init__(self, image_size: int, stable: Sequence[int], fade: Sequence[int]):
        self.resolutions = resolutions(image_size)
        k = len(self.resolutions) - 1
        stable, fade = tuple(stable), tuple(fade)
        if len(stable) != k or len(fade) != k:
            raise ValueError(f"growing 4 -> {image_size} takes {k} stable phases (at {self.resolutions[:-1]}) and "
                             f"{k} fades (into {self.resolutions[1:]}), got {len(stable)} and {len(fade)}")
        for name, values in (("stable", stable), ("fade", fade)):
            for v in values:
                check_positive_int(f"{name} images", v)
        self.stable, self.fade = stable, fade
        # the phases in order: (resolution, first image, images, fading?)
        self.phases: list[tuple[int, int, int, bool]] = []
        start = 0
        for i, r in enumerate(self.resolutions[:-1]):
            self.phases.append((r, start, stable[i], False))
            start += stable[i]
            self.phases.append((self.resolutions[i + 1], start, fade[i], True))
            start += fade[i]
        self.growth_images = start  # images until the final resolution is fully faded in

    def __call__(self, images_seen: int) -> tuple[int, float]:
        """``(resolution, alpha)`` after ``images_seen`` images; alpha = 1 outside the fades."""
        if images_seen < 0:
            raise ValueError(f"images_seen must be >= 0, got {images_seen}")
        for r, start, length, fading in self.phases:
            if images_seen < start + length:
                return (r, (images_seen - start) / length) if fading else (r, 1.0)
        return self.resolutions[-1], 1.0

    def boundaries(self) -> list[int]:
        """The image counts at which a phase starts (after the first)."""
        return [start for _, start, _, _ in self.phases[1:]] + [self.growth_images]

    def __repr__(self) -> str:
        return f"GrowSchedule(resolutions={self.resolutions}, stable={self.stable}, fade={self.fade})"


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class PGGenerator(nn.Module):
    """``G(z, resolution, alpha)``: (N, z_dim) -> (N, channels, resolution, resolution), grown as in the module
    docstring. The output is linear (not squashed); :meth:`forward` with ``alpha = 1`` skips the old branch."""

    def __init__(self, z_dim: int = 128, channels: int = 1, image_size: int = 32, width: int = 16,
                 width_max: int = 128):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.channels = check_positive_int("channels", channels)
        check_positive_int("width", width)
        check_positive_int("width_max", width_max)
        self.resolutions = resolutions(image_size)
        self.image_size = image_size
        ch = [channels_at(r, image_size, width, width_max) for r in self.resolutions]
        c0 = ch[0]
        self.c0 = c0
        # the paper's first layer: a dense layer to 4x4 with gain sqrt(2)/4, then a 3x3 convolution
        self.dense = EqualizedLinear(z_dim, c0 * 16, gain=math.sqrt(2) / 4)
        self.blocks = nn.ModuleList([nn.ModuleList([EqualizedConv2d(c0, c0, 3, padding=1)])])
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            self.blocks.append(nn.ModuleList([EqualizedConv2d(c_in, c_out, 3, padding=1),
                                              EqualizedConv2d(c_out, c_out, 3, padding=1)]))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, channels, 1, gain=1.0) for c in ch)

    def _block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        if i > 0:
            h = upsample(h)  # (N, C, r/2, r/2) -> (N, C, r, r)
        for conv in self.blocks[i]:
            h = pixel_norm(_lrelu(conv(h)))
        return h

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        resolution = self.image_size if resolution is None else resolution
        if resolution not in self.resolutions:
            raise ValueError(f"resolution must be one of {self.resolutions}, got {resolution}")
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        alpha = _check_alpha(alpha)
        k = self.resolutions.index(resolution)
        h = _lrelu(self.dense(pixel_norm(z))).reshape(len(z), self.c0, START, START)  # (N, C0, 4, 4)
        h = pixel_norm(h)
        for i in range(k):
            h = self._block(i, h)  # (N, C_i, r_i, r_i)
        high = self.to_rgb[k](self._block(k, h))  # (N, channels, r, r)
        if k == 0 or alpha == 1.0:
            return high
        low = upsample(self.to_rgb[k - 1](h))  # (N, channels, r/2, r/2) -> (N, channels, r, r)
        return blend(low, high, alpha)


class PGDiscriminator(nn.Module):
    """``D(x, alpha)``: (N, channels, r, r) -> scores (N,), for any ``r`` in ``4 .. image_size`` (read from x),
    mirrored from the generator (module docstring). ``mbstd_group`` is the minibatch-stddev group size
    (the batch must be divisible by ``min(mbstd_group, N)``)."""

    def __init__(self, channels: int = 1, image_size: int = 32, width: int = 16, width_max: int = 128,
                 mbstd_group: int = 4):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        check_positive_int("width", width)
        check_positive_int("width_max", width_max)
        self.mbstd_group = check_positive_int("mbstd_group", mbstd_group)
        self.resolutions = resolutions(image_size)
        self.image_size = image_size
        ch = [channels_at(r, image_size, width, width_max) for r in self.resolutions]
        self.c0 = c0 = ch[0]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, c, 1) for c in ch)
        # blocks[i] takes (N, ch[i], r_i, r_i) to (N, ch[i-1], r_i/2, r_i/2); blocks[0] ends in the score
        self.blocks = nn.ModuleList([nn.ModuleList([EqualizedConv2d(c0 + 1, c0, 3, padding=1),
                                                    EqualizedLinear(c0 * 16, c0),
                                                    EqualizedLinear(c0, 1, gain=1.0)])])
        for c_low, c_high in zip(ch[:-1], ch[1:]):
            self.blocks.append(nn.ModuleList([EqualizedConv2d(c_high, c_high, 3, padding=1),
                                              EqualizedConv2d(c_high, c_low, 3, padding=1)]))

    def _block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        if i == 0:
            conv, dense, out = self.blocks[0]
            h = minibatch_stddev(h, self.mbstd_group)  # (N, C0, 4, 4) -> (N, C0 + 1, 4, 4)
            h = _lrelu(conv(h)).flatten(1)  # (N, C0 * 16)
            return out(_lrelu(dense(h)))[:, 0]  # (N,)
        for conv in self.blocks[i]:
            h = _lrelu(conv(h))
        return downsample(h)  # (N, C_{i-1}, r/2, r/2)

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] != x.shape[3] \
                or x.shape[2] not in self.resolutions:
            raise ValueError(f"x must have shape (N, {self.channels}, r, r) with r in {self.resolutions}, got "
                             f"{tuple(x.shape)}")
        alpha = _check_alpha(alpha)
        k = self.resolutions.index(x.shape[2])
        h = self._block(k, _lrelu(self.from_rgb[k](x))) if k > 0 else _lrelu(self.from_rgb[0](x))
        if k > 0 and alpha != 1.0:
            low = _lrelu(self.from_rgb[k - 1](downsample(x)))  # (N, C_{k-1}, r/2, r/2)
            h = blend(low, h, alpha)
        for i in range(k - 1, -1, -1) if k > 0 else [0]:
            h = self._block(i, h)
        return h

