"""Scoring DragGAN (:mod:`gancourse.deep.draggan`) on many random drags of generated digits.

A **drag task** picks, in one image, a handle on an ink pixel (value above ``ink``, at least ``margin`` pixels
from the border) and a target at a random angle and an integer pixel ``distance`` away (inside the same margin);
everything is drawn from one seed. :func:`evaluate_drags` runs :func:`gancourse.deep.draggan.drag` on each and
reports

- the **shrink** of each drag, ``1 - ||t - p_end|| / ||t - p_start||`` (1: the tracked handle reached its target,
  0: it did not move closer, negative: it moved away), and their mean;
- whether the LeNet (:func:`gancourse.deep.lenet.load_lenet`) reads the **same digit** before and after the
  drag: moving a stroke should reshape the digit, not turn it into another one.

The tracked handle is DragGAN's own estimate of where the content went. :func:`ink_centroid_shift` is a check
that does not use the generator's features: how far the ink's centre of mass moved along the drag.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gancourse.deep.draggan import DragResult, Renderer, drag, segment_mask
from gancourse.deep.metrics import lenet_probabilities
from gancourse.errors import check_positive_int

__all__ = ["DragTask", "drag_tasks", "DragEvaluation", "evaluate_drags", "generated_styles", "ink_centroid_shift"]


@dataclass(frozen=True)
class DragTask:
    """Drag ``handle`` (x, y) of image ``index`` to ``target`` (x, y)."""

    index: int
    handle: tuple[float, float]
    target: tuple[float, float]

    @property
    def distance(self) -> float:
        return math.dist(self.handle, self.target)


def drag_tasks(images: torch.Tensor, n: int = 20, seed: int = 0, distance: tuple[int, int] = (3, 5),
               ink: float = 0.0, margin: int = 3) -> list[DragTask]:
    """``n`` tasks, task ``i`` on image ``i % N`` of ``images`` (N, 1, S, S) in [-1, 1]: a handle on a random ink
    pixel and a target ``k`` pixels away (``k`` uniform in ``distance``, rounded to a pixel) at a random angle."""
    check_positive_int("n", n)
    lo, hi = distance
    if not 1 <= lo <= hi:
        raise ValueError(f"distance must be a range (lo, hi) with 1 <= lo <= hi, got {distance!r}")
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, S, S), got {tuple(images.shape)}")
    size = images.shape[-1]
    rng = np.random.default_rng(seed)
    tasks = []
    for i in range(n):
        index = i % len(images)
        img = images[index, 0].detach().cpu().numpy()
        inner = np.zeros_like(img, dtype=bool)
        inner[margin:size - margin, margin:size - margin] = True
        ys, xs = np.nonzero((img > ink) & inner)
        if len(xs) == 0:
            raise ValueError(f"image {index} has no ink pixel (value > {ink}) at least {margin} pixels from the border")
        for _ in range(1000):
            j = rng.integers(len(xs))
            angle, k = rng.uniform(0, 2 * np.pi), rng.uniform(lo, hi)
            tx, ty = round(xs[j] + k * np.cos(angle)), round(ys[j] + k * np.sin(angle))
            if margin <= tx < size - margin and margin <= ty < size - margin and (tx, ty) != (xs[j], ys[j]):
                break
        else:  # pragma: no cover - needs an image whose only ink hugs a corner
            raise ValueError(f"found no target inside image {index}")
        tasks.append(DragTask(index, (float(xs[j]), float(ys[j])), (float(tx), float(ty))))
    return tasks


def generated_styles(G: torch.nn.Module, n: int, seed: int = 0, psi: float = 0.7) -> torch.Tensor:
    """Styles (n, L, w_dim) of ``n`` latents drawn with ``seed``, truncated by ``psi`` around ``G.w_avg``
    (DragGAN starts from truncated samples too, psi = 0.7)."""
    z = torch.randn(check_positive_int("n", n), G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.ws(z.to(G.w_avg.device), psi)


def ink_centroid_shift(before: torch.Tensor, after: torch.Tensor, handle: torch.Tensor, target: torch.Tensor,
                       radius: float = 6.0) -> float:
    """How far the centre of mass of the ink within ``radius`` of the handle's path moved along the drag
    direction, in pixels: images (1, 1, S, S) in [-1, 1], handle and target (2,) = (x, y). A check that reads
    pixels only; ink is ``(x + 1) / 2``."""
    before, after, handle, target = (v.detach().cpu().float() for v in (before, after, handle, target))
    s = before.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(s).float(), torch.arange(s).float(), indexing="ij")
    mid = (handle + target) / 2
    near = ((xs - mid[0]) ** 2 + (ys - mid[1]) ** 2) <= (radius + float((target - handle).norm()) / 2) ** 2

    def centroid(img: torch.Tensor) -> torch.Tensor:
        m = ((img[0, 0].clamp(-1, 1) + 1) / 2) * near  # (S, S) ink near the drag
        return torch.stack([(m * xs).sum(), (m * ys).sum()]) / m.sum().clamp_min(1e-8)

    d = (target - handle) / (target - handle).norm().clamp_min(1e-8)
    return float((centroid(after) - centroid(before)) @ d)


@dataclass
class DragEvaluation:
    """Per task: the ``shrink`` of the handle-to-target distance, whether the LeNet's label was ``kept``, the
    labels ``before`` and ``after``, whether the drag ``converged``, its ``steps`` and the ``ink_shift`` along
    the drag; ``results`` holds each :class:`DragResult`."""

    tasks: list[DragTask]
    shrink: np.ndarray
    kept: np.ndarray
    before: np.ndarray
    after: np.ndarray
    converged: np.ndarray
    steps: np.ndarray
    ink_shift: np.ndarray
    results: list[DragResult]

    @property
    def mean_shrink(self) -> float:
        return float(self.shrink.mean())

    @property
    def label_rate(self) -> float:
        return float(self.kept.mean())

    def summary(self) -> dict[str, float]:
        """The means, for a table."""
        return {"tasks": len(self.tasks), "mean shrink": self.mean_shrink, "label kept": self.label_rate,
                "converged": float(self.converged.mean()), "mean steps": float(self.steps.mean()),
                "mean distance": float(np.mean([t.distance for t in self.tasks])),
                "mean ink shift": float(self.ink_shift.mean())}


def evaluate_drags(render: Renderer, ws: torch.Tensor, tasks: list[DragTask], lenet: torch.nn.Module,
                   mask_radius: float | None = None, **drag_kwargs) -> DragEvaluation:
    """Run :func:`drag` on every task (``ws`` (N, L, w_dim): the styles of the images the tasks index) and score
    it as in the module docstring. With ``mask_radius`` each drag may change only the pixels within that distance
    of its handle-to-target segment (:func:`gancourse.deep.draggan.segment_mask`). ``drag_kwargs`` go to
    :func:`drag` (steps, lr, n_edit, r1, r2, lam, ...)."""
    if not tasks:
        raise ValueError("tasks is empty; make some with drag_tasks")
    results, before, after = [], [], []
    for task in tasks:
        h, t = torch.tensor([task.handle]), torch.tensor([task.target])
        if mask_radius is not None:
            size = render(ws[task.index: task.index + 1])[0].shape[2:]
            drag_kwargs["mask"] = segment_mask(h, t, mask_radius, tuple(size))
        res = drag(render, ws[task.index: task.index + 1], h, t, **drag_kwargs)
        results.append(res)
        before.append(res.image0)
        after.append(res.image)
    imgs0, imgs1 = torch.cat(before).clamp(-1, 1), torch.cat(after).clamp(-1, 1)  # (n, 1, S, S)
    lab0 = lenet_probabilities(imgs0, lenet).argmax(axis=1)
    lab1 = lenet_probabilities(imgs1, lenet).argmax(axis=1)
    shift = [ink_centroid_shift(r.image0, r.image, r.path[0, 0], r.targets[0]) for r in results]
    return DragEvaluation(
        tasks, np.array([r.shrink() for r in results]), lab0 == lab1, lab0, lab1,
        np.array([r.converged for r in results]), np.array([r.steps for r in results]), np.array(shift), results)

