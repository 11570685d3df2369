"""Paired image-to-image tasks built from the bundled MNIST-5k digits (nothing is downloaded).

Every task maps an input ``x`` made from a digit to the digit itself, ``y`` (N, 1, 32, 32) in [-1, 1], so that the
course's LeNet can read each output and compare it with the true target. They differ in how much of ``y`` the input
leaves open, and that decides what pix2pix's ablation (notebook 11) can show:

- ``lowres`` (the default): the digit at 8x8, its 4x4 block means (:func:`block_means`) shown at 32x32. The
  class and the rough shape survive, the exact course and width of each stroke inside a block do not: several
  sharp digits fit one input, and an L1-trained generator meets that uncertainty with their per-pixel median
  (hedged, softened strokes) while the adversarial term pushes it to commit to one sharp digit. This is the task on
  which the ablation shows the paper's effect at the lecture's size.
- ``edges``: the edge map of the digit (:func:`edge_map`), the course's edges2shoes. MNIST strokes are two to four
  pixels wide, so the 3x3 edge band covers nearly the whole stroke and the input determines the digit almost
  pixel for pixel: L1 alone already gets it right, and L1 alone and L1 + cGAN end close together.
- ``colour``: the MNIST-M-style coloured digit of :func:`gancourse.deep.data.mnist_m` (the pairs that CycleGAN's
  lecture kept hidden). The digit is open only where the photograph's colour happens to match the stroke's; away
  from those spots the input again determines the target, and an L1 generator at Adam's 2e-4 needs many more
  steps than the lecture has to remove the photograph's texture, so its ablation mixes the effect of the loss with
  that of training time.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gancourse.deep.data import mnist5k, mnist_m
from gancourse.errors import check_choice, check_positive_int

__all__ = ["Pairs", "PAIRED_TASKS", "INPUT_CHANNELS", "BLOCK", "block_means", "edge_map", "paired_task"]

PAIRED_TASKS = ("lowres", "edges", "colour")
#: channels of each task's inputs
INPUT_CHANNELS = {"lowres": 1, "edges": 1, "colour": 3}
#: side of the blocks that ``lowres`` averages: 32x32 digits become 8x8
BLOCK = 4


@dataclass(frozen=True)
class Pairs:
    """``inputs[i]`` (N, C_in, S, S) -> ``targets[i]`` (N, 1, S, S), both in [-1, 1]; ``labels`` (N,) the digits."""

    inputs: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def block_means(x: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """Each ``block x block`` square of ``x`` (N, C, S, S) replaced by its mean: the image at ``S / block``,
    enlarged back to ``S`` by repeating each pixel (shape kept, values stay in [-1, 1])."""
    block = check_positive_int("block", block)
    if x.ndim != 4 or x.shape[2] % block or x.shape[3] % block:
        raise ValueError(f"x must have shape (N, C, H, W) with H and W divisible by {block}, got {tuple(x.shape)}")
    small = F.avg_pool2d(x, block)  # (N, C, S/b, S/b)
    return F.interpolate(small, scale_factor=block, mode="nearest")  # (N, C, S, S)


def edge_map(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Edges of grey images (N, 1, S, S) in [-1, 1]: +1 where the morphological gradient exceeds ``threshold``.

    ``grad = dilate(u) - erode(u)`` with a 3x3 square on ``u = (x + 1) / 2`` in [0, 1] (``dilate`` = the 3x3
    maximum, ``erode`` = the 3x3 minimum); the result is binary, +1 on an edge and -1 elsewhere.
    """
    u = (x + 1) / 2
    dilate = F.max_pool2d(u, 3, 1, 1)  # (N, 1, S, S)
    erode = -F.max_pool2d(-u, 3, 1, 1)
    return torch.where(dilate - erode > threshold, 1.0, -1.0).to(x.dtype)


def paired_task(task: str, split: str) -> Pairs:
    """The pairs of ``task`` (see the module docstring) for the MNIST-5k ``split``: "train" (4,000) or
    "heldout" (1,000). Inputs (N, C_in, 32, 32), targets (N, 1, 32, 32) in [-1, 1], labels (N,) int64."""
    check_choice("task", task, PAIRED_TASKS)
    check_choice("split", split, ("train", "heldout"))
    if task == "colour":
        m = mnist_m(split)
        return Pairs(m.b, m.a, m.labels)
    y, labels = mnist5k(split)
    return Pairs(block_means(y) if task == "lowres" else edge_map(y), y, labels)
