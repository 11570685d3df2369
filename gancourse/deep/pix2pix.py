"""pix2pix networks: a U-Net generator with skip connections and a PatchGAN discriminator on image pairs.

Isola, Zhu, Zhou and Efros (2017), "Image-to-image translation with conditional adversarial networks",
section 3.2 and appendix 6.1, scaled down to 32x32 images:

- **U-Net generator** ``G: x (N, C_in, S, S) -> y (N, C_out, S, S)`` in [-1, 1]. An encoder of ``depth``
  stride-2 4x4 convolutions ``C_w - C_2w - C_4w - C_8w - C_8w ...`` (LeakyReLU 0.2, batch norm except on the
  first and the innermost layer) takes a 32x32 image down to 1x1; a decoder of stride-2 4x4 transposed
  convolutions (ReLU, batch norm) brings it back. Decoder layer ``i`` receives the encoder's output at the
  same resolution, concatenated along channels (the *skip connections*): low-level structure such as the
  position of edges passes straight across instead of through the bottleneck. The last layer maps to
  ``C_out`` channels with tanh.
- **Dropout as noise.** pix2pix has no noise input ``z``: the generator learned to ignore it. Its only source of
  randomness is dropout (rate 0.5) in the first ``n_dropout`` decoder layers, in training and, in the paper,
  at test time too. Here dropout draws its masks from an optional ``torch.Generator`` (so a training run is
  reproducible from its seed), and :meth:`UNetGenerator.forward` takes ``dropout=`` to keep it on or off
  regardless of the module's train/eval mode.
- **PatchGAN discriminator** ``D(x, y)``: the input ``x`` and an output ``y`` (real or generated) concatenated
  along channels, then 4x4 convolutions ``C_w - C_2w - ...`` (LeakyReLU 0.2, batch norm except on the first)
  ending in one channel. It returns a *map* of logits (N, 1, S', S'); each one judges whether one
  ``r x r`` patch of the pair is real (``r`` = :func:`patch_receptive_field`), and the loss averages them:
  a texture / local-style loss, while L1 takes care of the low frequencies.

Weights are initialised from N(0, 0.02), batch-norm gains from N(1, 0.02) (the paper's code).
"""
from __future__ import annotations

import torch
from torch import nn

from gancourse.deep.cyclegan import patch_receptive_field
from gancourse.deep.dcgan import init_dcgan_weights
from gancourse.errors import check_positive, check_positive_int

__all__ = ["UNetGenerator", "PatchGAN", "patch_receptive_field", "unet_widths", "seeded_dropout"]


def unet_widths(width: int, depth: int) -> list[int]:
    """Channels of the encoder's layers: ``width * 2^i`` capped at ``8 * width`` (``C64-C128-C256-C512-C512``)."""
    return [width * min(2 ** i, 8) for i in range(depth)]


def seeded_dropout(h: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout ``h * m / (1 - p)``, ``m_ij ~ Bernoulli(1 - p)`` drawn from ``generator``
    (the global generator if None), so that ``E[output] = h``."""
    if p <= 0:
        return h
    keep = torch.rand(h.shape, generator=generator, device=h.device) >= p  # (N, C, H, W) bool
    return h * keep / (1.0 - p)


class UNetGenerator(nn.Module):
    """``G(x)``: (N, in_channels, S, S) -> (N, out_channels, S, S) in [-1, 1]; ``S`` divisible by ``2^depth``.

    ``depth`` stride-2 stages down and up (5 takes 32x32 to 1x1); dropout of rate ``p_dropout`` in the first
    ``n_dropout`` decoder layers (those nearest the bottleneck).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 64, depth: int = 5,
                 n_dropout: int = 3, p_dropout: float = 0.5):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                        ("depth", depth)):
            check_positive_int(name, v)
        check_positive_int("n_dropout", n_dropout, minimum=0)
        if n_dropout > depth - 1:
            raise ValueError(f"n_dropout must be at most depth - 1 = {depth - 1} (the output layer has no "
                             f"dropout), got {n_dropout!r}")
        if check_positive("p_dropout", p_dropout, allow_zero=True) >= 1:
            raise ValueError(f"p_dropout must lie in [0, 1), got {p_dropout!r}")
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.n_dropout, self.p_dropout = n_dropout, p_dropout
        widths = unet_widths(width, depth)
        self.down = nn.ModuleList()
        c_in = in_channels
        for i, c in enumerate(widths):  # (N, c_in, s, s) -> (N, c, s/2, s/2)
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=i in (0, depth - 1)))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(c))
            self.down.append(nn.Sequential(*layers))
            c_in = c
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # decoder layer at the resolution of encoder layer i - 1
            c_in = widths[i] if i == depth - 1 else 2 * widths[i]  # the innermost has no skip to concatenate
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()))
            else:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, widths[i - 1], 4, 2, 1, bias=False),
                                             nn.BatchNorm2d(widths[i - 1])))
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                dropout: bool | None = None) -> torch.Tensor:
        """``G(x)``. ``dropout`` (default: the module's training mode) switches the decoder's dropout on or off;
        its masks come from ``generator`` (the global generator if None)."""
        s = 2 ** self.depth
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % s or x.shape[3] % s:
            raise ValueError(f"x must have shape (N, {self.in_channels}, H, W) with H and W divisible by {s}, "
                             f"got {tuple(x.shape)}")
        p = self.p_dropout if (self.training if dropout is None else dropout) else 0.0
        skips = []
        h = x
        for layer in self.down:  # (N, C_in, S, S) -> ... -> (N, 8w, S / 2^depth, S / 2^depth)
            h = layer(h)
            skips.append(h)
        skips.pop()  # the bottleneck feeds the first decoder layer directly
        for j, layer in enumerate(self.up):
            h = layer(h)
            if j < self.n_dropout:
                h = seeded_dropout(h, p, generator)
            if skips:
                h = torch.cat([h, skips.pop()], dim=1)  # (N, c, s, s) + (N, c, s, s) -> (N, 2c, s, s)
        return h


class PatchGAN(nn.Module):
    """``D(x, y)``: a pair (N, in_channels, S, S), (N, out_channels, S, S) -> patch logits (N, 1, S', S').

    ``n_layers`` stride-2 convolutions (widths ``w, 2w, 4w, ...`` up to ``8w``), one stride-1 convolution and a
    stride-1 convolution to one channel, all 4x4 with padding 1 (the paper's 70x70 PatchGAN is ``n_layers=3``).
    On 32x32 pairs ``n_layers=1`` gives a 14x14 map of logits, each judging a 16x16 patch; ``n_layers=2`` a 6x6
    map of 34x34 windows (the whole image, padded): see :func:`patch_receptive_field`.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 64, n_layers: int = 1):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                        ("n_layers", n_layers)):
            check_positive_int(name, v)
        self.in_channels, self.out_channels, self.n_layers = in_channels, out_channels, n_layers
        layers: list[nn.Module] = [nn.Conv2d(in_channels + out_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_layers + 1):
            c_out = width * min(2 ** i, 8)
            layers += [nn.Conv2d(c, c_out, 4, 2 if i < n_layers else 1, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, S', S') for the pairs ``(x_i, y_i)``; positive means "a real pair"."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if y.ndim != 4 or y.shape[1] != self.out_channels or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:]:
            raise ValueError(f"y must have shape ({x.shape[0]}, {self.out_channels}, {x.shape[2]}, {x.shape[3]}) "
                             f"to pair with x, got {tuple(y.shape)}")
        return self.net(torch.cat([x, y], dim=1))  # (N, C_in + C_out, S, S) -> (N, 1, S', S')
