"""Disjoint random halves of a set of images: the reference set and the floor set of a metric report.

:func:`gancourse.deep.metrics.metric_report` compares generated images with a *reference* set of real
images, next to a *floor*: another real set of the same size, drawn without overlap, which scores what a
perfect generator would at that sample size. :func:`reference_halves` draws the two from held-out images.
"""
from __future__ import annotations

import torch

from gancourse.errors import check_positive_int

__all__ = ["reference_halves"]


def reference_halves(x: torch.Tensor, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint sets of ``n`` images of ``x`` (N, C, H, W), drawn by a permutation seeded with ``seed``.

    Returns ``(x[perm[:n]], x[perm[n:2n]])`` for ``perm = torch.randperm(N)`` from a generator seeded with
    ``seed``: the same halves for the same ``x`` and ``seed``, never the same image in both.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a tensor of images (N, C, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    n = check_positive_int("n", n)
    if 2 * n > len(x):
        raise ValueError(f"two disjoint halves of n={n} images need at least {2 * n} images, got {len(x)}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[perm[:n]], x[perm[n : 2 * n]]
