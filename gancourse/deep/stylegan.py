"""A small style-based generator (StyleGAN, Karras et al. 2019; StyleGAN2, Karras et al. 2020) and its discriminator.

The generator does not feed the noise ``z`` to its first layer. Instead:

- a **mapping network** ``f: Z -> W`` (pixel-normalised ``z``, then an MLP of equalized linear layers with
  learning-rate multiplier 0.01 and leaky ReLU) turns ``z`` into an intermediate latent ``w``;
- the **synthesis network** starts from a learned constant (N, C, 4, 4) and upsamples 4 -> 8 -> 16 -> 32; every
  layer ``l`` receives a *style*, an affine map ``A_l`` of its own latent ``w_l``. Passing one ``w`` to all
  layers is the usual generator; a tensor ``ws`` (N, L, w_dim) with one ``w`` per layer is the ``W+`` space
  that style mixing (and later image editing) uses: :meth:`StyleGenerator.synthesis` takes ``ws``;
- the style acts by **AdaIN** (StyleGAN): ``AdaIN(x, y) = y_s (x - mu(x)) / sigma(x) + y_b`` per channel and
  per image, or by **weight modulation and demodulation** (StyleGAN2, :class:`ModulatedConv2d`):
  ``w'_ijk = s_i w_ijk``, ``w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)``, which scales the convolution
  instead of the activations and so removes the droplet artefacts that instance norm caused;
- every layer adds **per-pixel noise** ``B_l * n``, ``n ~ N(0, 1)`` one map (N, 1, H, W), with a learned scale
  ``B_l`` per channel: the stochastic detail (where exactly a stroke's edge lies) comes from it, not from ``w``.

Two tricks act on ``W`` only: **style mixing** (:func:`mix_styles`: ``w1`` for the layers before a crossover
``k``, ``w2`` from ``k`` on) used as a regulariser during training, and the **truncation trick**
(:func:`truncate`: ``w' = w_avg + psi (w - w_avg)`` around the running mean ``w_avg`` of ``w``), which trades
variety for typical, clean samples.

Layers and styles at 32x32 (``L = 8`` styles in both variants; resolutions in :attr:`StyleGenerator.resolutions`):

- ``adain``: ``const -> [noise, act, AdaIN_0]`` at 4x4, ``conv, noise, act, AdaIN_1``; at 8, 16 and 32 an
  upsampling conv and a conv, each ``conv, noise, act, AdaIN`` (styles 2..7); a 1x1 equalized conv to pixels;
- ``modulated``: ``const -> modconv_0`` at 4x4; two modulated convs at 8, 16 and 32 (styles 1..6); a 1x1
  modulated conv without demodulation to pixels (style 7).

The output is linear (no tanh), as in StyleGAN; samples are clamped to [-1, 1] where images are saved.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.deep.equalized import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, pixel_norm
from gancourse.errors import check_choice, check_positive, check_positive_int

__all__ = ["SYNTHESIS", "NOISE_MODES", "MappingNetwork", "NoiseInjection", "AdaIN", "ModulatedConv2d",
           "StyleGenerator", "StyleDiscriminator", "truncate", "mix_styles", "instance_norm", "coarse_middle_fine"]

SYNTHESIS = ("adain", "modulated")
NOISE_MODES = ("random", "const", "none")
ACT_GAIN = math.sqrt(2)  # keeps the second moment of leaky ReLU(0.2) outputs near that of its inputs


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * ACT_GAIN


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mu(x)) / sigma(x)`` per image and channel over the pixels: (N, C, H, W) -> (N, C, H, W)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """``w = f(z)``: ``pixel_norm(z)`` then ``n_layers`` equalized linear layers with leaky ReLU(0.2), all with
    ``lr_mul`` (StyleGAN: 8 layers, 0.01). (N, z_dim) -> (N, w_dim)."""

    def __init__(self, z_dim: int, w_dim: int, n_layers: int = 8, lr_mul: float = 0.01):
        super().__init__()
        self.z_dim, self.w_dim = check_positive_int("z_dim", z_dim), check_positive_int("w_dim", w_dim)
        check_positive_int("mapping_layers", n_layers)
        dims = [z_dim] + [w_dim] * n_layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        h = pixel_norm(z)  # z / sqrt(mean z^2): only the direction of z matters
        for layer in self.layers:
            h = _act(layer(h))  # (N, w_dim)
        return h


class NoiseInjection(nn.Module):
    """``x + B * n``: one noise map ``n`` (N, 1, H, W) per image, scaled by a learned ``B`` (C,) that starts at 0.

    ``noise`` given: that map; else by ``mode``: ``"random"`` fresh N(0, 1) draws (from ``generator`` if given),
    ``"const"`` the layer's fixed buffer, ``"none"`` no noise."""

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(check_positive_int("channels", channels)))
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, mode: str = "random", generator: torch.Generator | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        n, _, h, w = x.shape
        if noise is None:
            check_choice("noise_mode", mode, NOISE_MODES)
            if mode == "none":
                return x
            if mode == "const":
                noise = self.const_noise
            else:
                noise = torch.randn(n, 1, h, w, generator=generator, device=x.device, dtype=x.dtype)
        elif noise.ndim != 4 or noise.shape[1] != 1 or tuple(noise.shape[2:]) != (h, w):
            raise ValueError(f"noise must have shape (N, 1, {h}, {w}), got {tuple(noise.shape)}")
        return x + self.weight[None, :, None, None] * noise  # (C,) -> (1, C, 1, 1)


class AdaIN(nn.Module):
    """``AdaIN(x, w) = y_s * instance_norm(x) + y_b`` with ``(y_s, y_b) = A(w)``, an equalized affine map
    (N, w_dim) -> (N, 2C) whose scales start at 1 and biases at 0 (Huang & Belongie 2017; Karras et al. 2019)."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.scale = EqualizedLinear(w_dim, channels, gain=1.0, bias_init=1.0)  # y_s
        self.shift = EqualizedLinear(w_dim, channels, gain=1.0)  # y_b

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y_s, y_b = self.scale(w)[:, :, None, None], self.shift(w)[:, :, None, None]  # (N, C) -> (N, C, 1, 1)
        return y_s * instance_norm(x) + y_b


class ModulatedConv2d(nn.Module):
    """StyleGAN2's convolution (Karras et al. 2020, eqs. 1 and 3): per image, the weights are scaled by the style
    ``s = A(w)`` (N, C_in), ``w'_oikl = c * w_oikl * s_i`` (``c = 1 / sqrt(C_in k^2)``, equalized lr), and with
    ``demodulate`` divided by ``sqrt(sum_ikl w'_oikl^2 + eps)`` so that each output channel has unit expected
    standard deviation for unit-variance inputs. Run as one grouped convolution with N groups.
    ``up=True`` upsamples x2 (bilinear) before the convolution.
    x (N, C_in, H, W), w (N, w_dim) -> (N, C_out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool = True,
                 up: bool = False, eps: float = 1e-8):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size)):
            check_positive_int(name, v)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)  # s starts at 1
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate, self.up, self.eps, self.padding = bool(demodulate), bool(up), eps, kernel_size // 2

    def modulated_weight(self, s: torch.Tensor) -> torch.Tensor:
        """The per-image weights (N, C_out, C_in, k, k) for styles ``s`` (N, C_in)."""
        weight = self.scale * self.weight[None] * s[:, None, :, None, None]  # (1, O, I, k, k) * (N, 1, I, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + self.eps)  # sigma_o
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        if c != self.weight.shape[1]:
            raise ValueError(f"x must have {self.weight.shape[1]} channels, got shape {tuple(x.shape)}")
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        weight = self.modulated_weight(self.affine(w))  # (N, O, I, k, k)
        o, k = weight.shape[1], weight.shape[-1]
        out = F.conv2d(x.reshape(1, n * c, *x.shape[2:]), weight.reshape(n * o, c, k, k), padding=self.padding,
                       groups=n)  # (1, N*I, H, W) -> (1, N*O, H, W): group i sees image i only
        return out.reshape(n, o, *out.shape[2:])


class _AdaINLayer(nn.Module):
    """StyleGAN's layer: ``[upsample, conv,] noise, bias, act, AdaIN`` (no conv on the constant input)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, w_dim: int, conv: bool, up: bool):
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, padding=1, bias=False) if conv else None
        self.up = up
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x, w, mode, generator, noise):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if self.conv is not None:
            x = self.conv(x)
        x = _act(self.noise(x, mode, generator, noise) + self.bias[None, :, None, None])
        return self.adain(x, w)


class _ModulatedLayer(nn.Module):
    """StyleGAN2's layer: ``modulated conv (demodulated), noise, bias, act``."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, w_dim: int, up: bool):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True, up=up)
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x, w, mode, generator, noise):
        x = self.noise(self.conv(x, w), mode, generator, noise)
        return _act(x + self.bias[None, :, None, None])


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick ``w' = w_avg + psi (w - w_avg)`` (Karras et al. 2019, appendix B), on ``ws``
    (N, w_dim) or (N, L, w_dim); with ``cutoff`` only styles ``l < cutoff`` are truncated. psi = 1: ``ws``;
    psi = 0: ``w_avg`` for every latent."""
    psi = float(psi)
    if not math.isfinite(psi):
        raise ValueError(f"psi must be a finite number, got {psi!r}")
    out = w_avg + psi * (ws - w_avg)
    if cutoff is not None and ws.ndim == 3:
        keep = torch.arange(ws.shape[1], device=ws.device) >= cutoff  # (L,)
        out = torch.where(keep[None, :, None], ws, out)
    return out


def mix_styles(ws1: torch.Tensor, ws2: torch.Tensor, crossover: int) -> torch.Tensor:
    """Style mixing: ``ws1`` (N, L, D) for the styles ``l < crossover``, ``ws2`` for ``l >= crossover``."""
    if ws1.shape != ws2.shape or ws1.ndim != 3:
        raise ValueError(f"ws1 and ws2 must be two (N, L, D) tensors of one shape, got {tuple(ws1.shape)} and "
                         f"{tuple(ws2.shape)}")
    if not 0 <= int(crossover) <= ws1.shape[1]:
        raise ValueError(f"crossover must lie in 0..{ws1.shape[1]}, got {crossover}")
    first = torch.arange(ws1.shape[1], device=ws1.device) < int(crossover)  # (L,)
    return torch.where(first[None, :, None], ws1, ws2)


def coarse_middle_fine(resolutions: list[int]) -> dict[str, list[int]]:
    """The style indices by the resolution they act at: coarse 4-8, middle 16, fine 32 (at 32x32; Karras et
    al. 2019 section 3.1 use 4-8, 16-32 and 64-1024 at 1024x1024)."""
    top = max(resolutions)
    groups = {"coarse": [], "middle": [], "fine": []}
    for i, r in enumerate(resolutions):
        groups["coarse" if r <= top // 4 else "middle" if r <= top // 2 else "fine"].append(i)
    return groups


class StyleGenerator(nn.Module):
    """``G(z) = synthesis(broadcast(mapping(z)))`` at 32x32 (see the module docstring for the layers).

    ``w_avg`` (w_dim,) is a buffer: the running mean of ``w`` kept by :meth:`update_w_avg` during training,
    the centre of the truncation trick. Channels: ``4w`` at 4 and 8, ``2w`` at 16, ``w`` at 32 for ``width=w``.
    """

    def __init__(self, z_dim: int = 64, w_dim: int = 64, mapping_layers: int = 4, width: int = 16,
                 channels: int = 1, image_size: int = 32, synthesis: str = "modulated", mapping_lr_mul: float = 0.01):
        super().__init__()
        self.synthesis_kind = check_choice("synthesis", synthesis, SYNTHESIS)
        check_positive_int("width", width)
        self.channels = check_positive_int("channels", channels)
        if image_size != 32:
            raise ValueError(f"image_size must be 32 (synthesis 4 -> 8 -> 16 -> 32), got {image_size}")
        self.image_size, self.z_dim, self.w_dim = image_size, z_dim, w_dim
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, check_positive("mapping_lr_mul", mapping_lr_mul))
        ch = {4: 4 * width, 8: 4 * width, 16: 2 * width, 32: width}
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))  # the learned constant input
        layers: list[nn.Module] = []
        res: list[int] = []
        if self.synthesis_kind == "adain":
            layers += [_AdaINLayer(ch[4], ch[4], 4, w_dim, conv=False, up=False),
                       _AdaINLayer(ch[4], ch[4], 4, w_dim, conv=True, up=False)]
            res += [4, 4]
        else:
            layers.append(_ModulatedLayer(ch[4], ch[4], 4, w_dim, up=False))
            res.append(4)
        for r in (8, 16, 32):
            c_in = ch[r // 2]
            for up in (True, False):
                layers.append(_AdaINLayer(c_in, ch[r], r, w_dim, conv=True, up=up) if self.synthesis_kind == "adain"
                              else _ModulatedLayer(c_in, ch[r], r, w_dim, up=up))
                res.append(r)
                c_in = ch[r]
        self.layers = nn.ModuleList(layers)
        if self.synthesis_kind == "adain":
            self.to_pixels = EqualizedConv2d(ch[32], channels, 1, gain=1.0)
        else:
            self.to_pixels = ModulatedConv2d(ch[32], channels, 1, w_dim, demodulate=False)
            self.pixel_bias = nn.Parameter(torch.zeros(channels))
            res.append(32)
        self.resolutions = res  # the resolution each style acts at
        self.num_ws = len(res)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @property
    def num_noise(self) -> int:
        """How many noise maps :meth:`synthesis` takes: one per layer."""
        return len(self.layers)

    @property
    def noise_resolutions(self) -> list[int]:
        """The side of each layer's noise map (N, 1, r, r)."""
        return [layer.noise.const_noise.shape[-1] for layer in self.layers]

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """One ``w`` (N, w_dim) to every layer: (N, L, w_dim)."""
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def ws(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """``broadcast(truncate(mapping(z), w_avg, psi))``: (N, z_dim) -> (N, L, w_dim)."""
        w = self.mapping(z)
        return self.broadcast(w if psi == 1 else truncate(w, self.w_avg, psi))

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, beta: float) -> None:
        """``w_avg <- beta w_avg + (1 - beta) mean_i w_i`` (StyleGAN's tracked mean, beta 0.995)."""
        self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, beta))

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random", generator: torch.Generator | None = None,
                  noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Images (N, C, 32, 32) from styles ``ws`` (N, L, w_dim), one latent per style (``W+``).

        ``noise``: one map (N, 1, H, W) per layer (``num_noise`` of them) to use instead of ``noise_mode``."""
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if noise is not None and len(noise) != self.num_noise:
            raise ValueError(f"noise must hold one map per layer ({self.num_noise}), got {len(noise)}")
        x = self.const.expand(len(ws), -1, -1, -1)  # (N, 4w, 4, 4)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode, generator, None if noise is None else noise[i])
        if self.synthesis_kind == "adain":
            return self.to_pixels(x)  # (N, w, 32, 32) -> (N, C, 32, 32)
        return self.to_pixels(x, ws[:, -1]) + self.pixel_bias[None, :, None, None]

    def forward(self, z: torch.Tensor, psi: float = 1.0, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.synthesis(self.ws(z, psi), noise_mode, generator)


class StyleDiscriminator(nn.Module):
    """A plain equalized-lr conv discriminator: 1x1 from pixels, at 32, 16 and 8 a 3x3 conv with leaky ReLU and
    2x2 average pooling, then at 4x4 the minibatch standard deviation (one more channel), a 3x3 conv and two
    linear layers. (N, C, 32, 32) -> logits (N,). Channels ``w, 2w, 4w, 4w`` for ``width=w``."""

    def __init__(self, channels: int = 1, width: int = 16, image_size: int = 32, mbstd_group: int = 4):
        super().__init__()
        check_positive_int("width", width)
        self.channels = check_positive_int("channels", channels)
        if image_size != 32:
            raise ValueError(f"image_size must be 32, got {image_size}")
        self.from_pixels = EqualizedConv2d(channels, width, 1)
        widths = [width, 2 * width, 4 * width, 4 * width]
        self.convs = nn.ModuleList(EqualizedConv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:]))
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv4 = EqualizedConv2d(widths[-1] + 1, widths[-1], 3, padding=1)
        self.fc = EqualizedLinear(widths[-1] * 16, widths[-1])
        self.out = EqualizedLinear(widths[-1], 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, 32, 32):
            raise ValueError(f"x must have shape (N, {self.channels}, 32, 32), got {tuple(x.shape)}")
        h = _act(self.from_pixels(x))  # (N, w, 32, 32)
        for conv in self.convs:  # (N, c, s, s) -> (N, c', s/2, s/2)
            h = F.avg_pool2d(_act(conv(h)), 2)
        h = _act(self.conv4(self.mbstd(h)))  # (N, 4w + 1, 4, 4) -> (N, 4w, 4, 4)
        return self.out(_act(self.fc(h.flatten(1))))[:, 0]  # (N, 64w) -> (N,)
