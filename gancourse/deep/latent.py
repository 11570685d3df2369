"""Walks and arithmetic in a generator's latent space (Radford et al. 2016, sections 6.1 and 6.3).

- linear interpolation ``z(t) = (1 - t) z0 + t z1``;
- spherical interpolation (White 2016, "Sampling generative networks")
  ``z(t) = sin((1 - t) w) / sin w * z0 + sin(t w) / sin w * z1`` with
  ``cos w = z0 . z1 / (|z0| |z1|)``, which keeps the norm typical of a
  Gaussian sample instead of cutting through the low-norm middle;
- attribute vectors: the mean latent code of samples with a lot of some
  property minus the mean code of samples with little of it. Adding that
  vector to a code moves the generated image towards the property
  (DCGAN's "smiling woman - neutral woman + neutral man").
"""
from __future__ import annotations

import torch

from gancourse.errors import check_positive_int

__all__ = ["lerp", "slerp", "interpolate_latents", "attribute_vector"]


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(1 - t) z0 + t z1`` for codes (D,) and steps ``t`` (T,): shape (T, D)."""
    t = t.reshape(-1, 1).to(z0)  # (T, 1)
    return (1 - t) * z0 + t * z1  # (T, 1) * (D,) -> (T, D)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between codes (D,) at steps ``t`` (T,): shape (T, D); ``lerp`` if parallel."""
    t = t.reshape(-1, 1).to(z0)
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return lerp(z0, z1, t)
    s = torch.sin(omega)
    return torch.sin((1 - t) * omega) / s * z0 + torch.sin(t * omega) / s * z1


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, n: int = 8, method: str = "slerp") -> torch.Tensor:
    """``n`` codes from ``z0`` to ``z1`` (both included), shape (n, D); ``method`` is "slerp" or "lerp"."""
    if method not in ("slerp", "lerp"):
        raise ValueError(f"unknown method {method!r}; valid options are: 'slerp', 'lerp'")
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must be codes of the same shape (D,), got {tuple(z0.shape)} and {tuple(z1.shape)}")
    n = check_positive_int("n", n, minimum=2)
    t = torch.linspace(0, 1, n)
    return (slerp if method == "slerp" else lerp)(z0, z1, t)


def attribute_vector(z: torch.Tensor, score: torch.Tensor, fraction: float = 0.25) -> torch.Tensor:
    """Mean code of the top ``fraction`` of samples by ``score`` minus the mean of the bottom ``fraction``.

    ``z`` (N, D) codes, ``score`` (N,) the property measured on ``G(z)``; returns (D,).
    """
    if z.ndim != 2 or score.shape != (z.shape[0],):
        raise ValueError(f"z must be (N, D) and score (N,), got {tuple(z.shape)} and {tuple(score.shape)}")
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must lie in (0, 0.5], got {fraction!r}")
    k = max(1, int(fraction * len(z)))
    order = torch.argsort(score)
    return z[order[-k:]].mean(0) - z[order[:k]].mean(0)
