"""Spatially-adaptive normalisation (SPADE) from a segmentation map: the layer behind GauGAN.

Park, Liu, Wang and Zhu (2019), "Semantic image synthesis with spatially-adaptive normalization". A
generator that must paint a scene from a label map ``m`` (one channel per class) can read ``m`` at its
input, but a normalisation layer after a convolution of a nearly uniform map removes most of it: a map of
a single class gives a constant feature map, which instance normalisation turns into zeros whatever the
class (the paper's "washing away"). SPADE instead keeps the normalisation parameter-free and lets the map
set its scale and shift **at every position**:

    h = (x - mu_c) / sqrt(var_c + eps)                        (batch norm without affine, per channel c)
    out[n, c, y, x] = h[n, c, y, x] * (1 + gamma_c(m)[n, y, x]) + beta_c(m)[n, y, x],

with ``gamma(m), beta(m)`` two convolutions on a shared hidden layer ``ReLU(conv(m))``, and ``m`` resized to
the feature map's size (nearest neighbour). ``1 + gamma`` is how the authors' code writes the gain, so a
zero ``gamma`` leaves the normalised features unchanged. If ``m`` is the same one-hot class ``k`` at every
position (and the convolutions pad by repeating the border), ``gamma`` and ``beta`` are constant in space
and SPADE is class-conditional batch norm with ``gamma_k = 1 + gamma(e_k)``, ``beta_k = beta(e_k)``
(:class:`gancourse.deep.conditional.ClassConditionalBatchNorm2d`). With the default zero padding that holds
away from the image border only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.errors import check_choice, check_positive_int

__all__ = ["SPADE", "one_hot_map", "SPADE_NORMS", "PADDING_MODES"]

SPADE_NORMS = ("batch", "instance")
PADDING_MODES = ("zeros", "replicate", "reflect")


def one_hot_map(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Label map (N, H, W) of integers in ``0 .. n_classes - 1`` -> one-hot map (N, K, H, W), float32."""
    n_classes = check_positive_int("n_classes", n_classes)
    if labels.ndim != 3 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor of shape (N, H, W), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got values from {int(labels.min())} to "
                         f"{int(labels.max())}")
    return F.one_hot(labels.long(), n_classes).permute(0, 3, 1, 2).float()  # (N, H, W, K) -> (N, K, H, W)


class SPADE(nn.Module):
    """``SPADE(x, m)``: features x (N, C, H, W) and a label map m (N, L, h, w) -> (N, C, H, W).

    ``hidden`` channels in the shared layer (128 in the paper), ``kernel_size`` 3; ``norm`` is "batch" (the
    paper's choice in GauGAN's generator) or "instance"; ``padding_mode`` of the three convolutions is
    "zeros" (the paper's code), "replicate" or "reflect". The last two convolutions start at zero, so a new
    layer is plain normalisation (gain 1, shift 0) until it learns.
    """

    def __init__(self, num_features: int, label_channels: int, hidden: int = 128, kernel_size: int = 3,
                 norm: str = "batch", padding_mode: str = "zeros", eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        self.label_channels = check_positive_int("label_channels", label_channels)
        check_positive_int("hidden", hidden)
        k = check_positive_int("kernel_size", kernel_size)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the output keeps the map's size), got {k}")
        self.norm_kind = check_choice("norm", norm, SPADE_NORMS)
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
        if norm == "batch":
            self.norm = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        else:
            self.norm = nn.InstanceNorm2d(num_features, eps=eps, affine=False)

        def conv(c_in: int, c_out: int) -> nn.Conv2d:
            return nn.Conv2d(c_in, c_out, k, padding=k // 2, padding_mode=padding_mode)

        self.shared = nn.Sequential(conv(label_channels, hidden), nn.ReLU())
        self.gamma = conv(hidden, num_features)
        self.beta = conv(hidden, num_features)
        for layer in (self.gamma, self.beta):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def modulation(self, m: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gamma(m), beta(m))`` at spatial ``size`` (H, W): two (N, C, H, W) tensors (the gain is ``1 + gamma``)."""
        if m.ndim != 4 or m.shape[1] != self.label_channels:
            raise ValueError(f"the label map must have shape (N, {self.label_channels}, h, w), got {tuple(m.shape)}")
        if tuple(m.shape[-2:]) != tuple(size):
            m = F.interpolate(m, size=tuple(size), mode="nearest")  # (N, L, h, w) -> (N, L, H, W)
        a = self.shared(m)  # (N, hidden, H, W)
        return self.gamma(a), self.beta(a)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (N, {self.num_features}, H, W), got {tuple(x.shape)}")
        if len(m) != len(x):
            raise ValueError(f"x and the label map must hold the same number of images, got {len(x)} and {len(m)}")
        gamma, beta = self.modulation(m, x.shape[-2:])
        return self.norm(x) * (1 + gamma) + beta  # (N, C, H, W), every position its own gain and shift

    def extra_repr(self) -> str:
        return f"{self.num_features}, label_channels={self.label_channels}, norm={self.norm_kind!r}, " \
               f"padding_mode={self.padding_mode!r}"
