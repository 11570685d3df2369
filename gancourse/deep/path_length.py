"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for GANs", section 4.2).

How much the image changes, perceptually, for a tiny step along a path between two latents, averaged over
the path and over pairs of latents:

    PPL_Z = E_{z1, z2 ~ N(0, I), t ~ U(0, 1)} [ d(G(slerp(z1, z2; t)), G(slerp(z1, z2; t + eps))) / eps^2 ]
    PPL_W = E_{z1, z2, t} [ d(g(lerp(f(z1), f(z2); t)), g(lerp(f(z1), f(z2); t + eps))) / eps^2 ]

with ``eps = 1e-4``, the mapping network ``f``, the synthesis network ``g`` (``G = g o f``), spherical
interpolation in ``Z`` (the input is normalised, so ``z`` lives on a sphere in effect) and linear
interpolation in ``W``. A latent space in which the image changes evenly along straight lines has a short
path length; the paper reports PPL in ``W`` well below PPL in ``Z`` and reads this as ``W`` being less
entangled. ``d`` is the squared distance of unit-normalised features: the paper's LPIPS (VGG16) becomes here
the course's LeNet penultimate features, ``d(x, y) = || phi(x)/|phi(x)| - phi(y)/|phi(y)| ||^2``. The images
are not cropped (the paper crops faces to the face; digits fill the frame). As in the reference code
(StyleGAN's ``metrics/perceptual_path_length.py``), ``t`` is uniform over the whole path, both endpoints of
a pair get the same per-layer noise, and the distances below the 1st and above the 99th percentile are
dropped before averaging. The generator and LeNet run in float64, so that a step of 1e-4 is well above
rounding.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from gancourse.errors import check_choice, check_positive, check_positive_int

__all__ = ["PPL_EPS", "SPACES", "slerp", "lerp", "normalized_feature_distance", "path_lengths",
           "perceptual_path_length"]

PPL_EPS = 1e-4
SPACES = ("z", "w")


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of ``a`` and ``b`` (N, D) at ``t`` (N,) or scalar: the unit
    vector at angle ``t * theta`` from ``a/|a|`` towards ``b/|b|``, ``theta = arccos(<a/|a|, b/|b|>)``."""
    a, b = _unit(a), _unit(b)
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, 1)  # (N, 1) or (1, 1)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)  # (N, 1)
    theta = torch.arccos(cos) * t
    c = _unit(b - cos * a)  # the unit direction in the plane of a and b, orthogonal to a
    return _unit(a * torch.cos(theta) + c * torch.sin(theta))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``a + t (b - a)`` with ``t`` (N,) or scalar broadcast over the last dimension(s)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, *([1] * (a.ndim - 1)))
    return a + t * (b - a)


def normalized_feature_distance(f1: torch.Tensor, f2: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """``|| f1/|f1| - f2/|f2| ||^2`` per row of two (N, D) feature sets: (N,)."""
    u1 = f1 / (f1.norm(dim=1, keepdim=True) + eps)
    u2 = f2 / (f2.norm(dim=1, keepdim=True) + eps)
    return (u1 - u2).square().sum(dim=1)


@torch.no_grad()
def path_lengths(G: nn.Module, feature_net: nn.Module, space: str, n: int = 1000, eps: float = PPL_EPS,
                 seed: int = 0, batch_size: int = 250) -> np.ndarray:
    """The ``n`` path-length samples ``d(...) / eps^2`` (see the module docstring) of a StyleGenerator ``G``
    in ``space`` "z" or "w", with ``feature_net(x)`` (N, D) the features of images (N, C, 32, 32) clamped
    to [-1, 1]. Draws come from a generator seeded with ``seed``; ``G`` and ``feature_net`` are copied to
    float64 and put in eval mode (the originals are untouched)."""
    check_choice("space", space, SPACES)
    n, batch_size = check_positive_int("n", n), check_positive_int("batch_size", batch_size)
    eps = check_positive("eps", eps)
    device = next(G.parameters()).device
    g64 = copy.deepcopy(G).double().eval()
    f64 = copy.deepcopy(feature_net).double().eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        z1, z2 = torch.randn(2, m, g64.z_dim, generator=gen, dtype=torch.float64)
        t = torch.rand(m, generator=gen, dtype=torch.float64)
        z1, z2, t = z1.to(device), z2.to(device), t.to(device)
        if space == "z":
            ends = torch.cat([slerp(z1, z2, t), slerp(z1, z2, t + eps)])  # (2m, z_dim)
            ws = g64.broadcast(g64.mapping(ends))
        else:
            w1, w2 = g64.mapping(z1), g64.mapping(z2)
            ws = g64.broadcast(torch.cat([lerp(w1, w2, t), lerp(w1, w2, t + eps)]))  # (2m, L, w_dim)
        noise_gen = torch.Generator().manual_seed(seed + 1 + start)
        noise = [torch.randn(m, 1, r, r, generator=noise_gen, dtype=torch.float64).to(device).repeat(2, 1, 1, 1)
                 for r in g64.noise_resolutions]  # the same noise at both ends of a step
        x = g64.synthesis(ws, noise=noise).clamp(-1, 1)  # (2m, C, 32, 32)
        if x.shape[1] == 3:
            x = (x * torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)[None, :, None, None]
                 ).sum(dim=1, keepdim=True)
        feats = f64.features(x) if hasattr(f64, "features") else f64(x)  # (2m, D)
        out.append((normalized_feature_distance(feats[:m], feats[m:]) / eps ** 2).cpu())
    return torch.cat(out).numpy()


def perceptual_path_length(G: nn.Module, feature_net: nn.Module, space: str, n: int = 1000,
                           eps: float = PPL_EPS, seed: int = 0) -> float:
    """PPL in ``space`` ("z" or "w"): the mean of :func:`path_lengths` between its 1st and 99th percentiles."""
    d = path_lengths(G, feature_net, space, n, eps, seed)
    lo, hi = np.percentile(d, 1), np.percentile(d, 99)
    return float(d[(d >= lo) & (d <= hi)].mean())
