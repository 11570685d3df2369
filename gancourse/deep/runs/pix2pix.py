"""pix2pix in ``gancourse train``: the L1 / cGAN / L1 + cGAN ablation on a paired digit task, and its report.

Training uses the pairs of the 4,000 MNIST-5k training digits for the config's ``task`` (by default ``lowres``,
a digit from its 8x8 block means: :mod:`gancourse.deep.paired` says why); the report translates every one of the 1,000
held-out inputs with each variant (deterministically: dropout off, batch norm's running statistics) and has three
rows per variant ``V`` in ``L1``, ``cGAN``, ``L1 + cGAN``:

- ``FD-LeNet (V)``: the Fréchet distance between LeNet features of the outputs and of their true targets. Floor:
  0, the targets themselves: the task is paired, so a perfect translator returns exactly the target set. (Another
  sample of real digits is no floor here: translations that follow their inputs share the targets' mix of digits
  and styles, and come closer than an independent real sample does; notebook 11 shows this reference.)
- ``mean L1 (V)``: ``mean |G(x) - y|`` over the held-out pairs. Floor: 0 (the targets themselves);
- ``label kept (V)``: the share of outputs in which the LeNet reads the target's digit. Floor: its accuracy on
  the targets themselves.

Each ceiling is the same generator before training (all three start from the same weights, so they share it).
``samples.npz``: ``images`` the L1 + cGAN outputs for every held-out pair, float32 (1000, 1, 32, 32);
``images_l1`` and ``images_cgan`` the other variants'; ``inputs`` (1000, C_in, 32, 32), ``targets``
(1000, 1, 32, 32), all in [-1, 1]; ``labels`` int64 (1000,). ``samples.png``: one held-out pair of each digit,
in rows input / L1 / cGAN / L1 + cGAN / target.
"""
from __future__ import annotations

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric, fd_lenet, label_preservation, paired_l1
from gancourse.deep.paired import Pairs, paired_task
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.train_pix2pix import VARIANT_NAMES, VARIANTS, Pix2PixConfig, Pix2PixTrainer, pix2pix_preset

__all__ = ["PIX2PIX", "build", "evaluate", "ablation_report", "other_real_digits"]


def build(config: Pix2PixConfig, device: torch.device) -> Pix2PixTrainer:
    """A trainer on the pairs of the 4,000 training digits."""
    train = paired_task(config.task, "train")
    return Pix2PixTrainer(config, train.inputs, train.targets, device)


def other_real_digits(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` training digits (n, 1, 32, 32), drawn by a seeded permutation: real digits, but not the targets
    (the reference that notebook 11 compares with the floor)."""
    x, _ = mnist5k("train")
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def ablation_report(outputs: dict[str, torch.Tensor], untrained: torch.Tensor, held: Pairs,
                    lenet: torch.nn.Module | None = None) -> dict:
    """The three rows of each variant (see the module docstring): ``outputs[v]`` (N, 1, 32, 32) translates
    ``held.inputs``; ``untrained`` is the untrained generator's translation of them."""
    lenet = lenet if lenet is not None else load_lenet(held.targets.device)
    y, labels = held.targets, held.labels
    fd_ceiling = fd_lenet(untrained, y, lenet)
    keep_floor, keep_ceiling = label_preservation(y, labels, lenet), label_preservation(untrained, labels, lenet)
    report: dict = {}
    for v in VARIANTS:
        name, out = VARIANT_NAMES[v], outputs[v]
        add_metric(report, f"FD-LeNet ({name})", 0.0, fd_lenet(out, y, lenet), fd_ceiling, better="lower")
        add_metric(report, f"mean L1 ({name})", paired_l1(y, y), paired_l1(out, y), paired_l1(untrained, y),
                   better="lower")
        add_metric(report, f"label kept ({name})", keep_floor, label_preservation(out, labels, lenet), keep_ceiling,
                   better="higher")
    return report


def evaluate(trainer: Pix2PixTrainer, preset: str) -> Evaluation:
    """Every held-out input translated by each variant, the report of :func:`ablation_report`, and the grid."""
    held = paired_task(trainer.config.task, "heldout")
    outputs = {v: trainer.translate(held.inputs, v) for v in VARIANTS}  # (1000, 1, 32, 32) each
    untrained = Pix2PixTrainer(trainer.config, trainer.inputs, trainer.targets, trainer.device)
    report = ablation_report(outputs, untrained.translate(held.inputs, "l1_cgan"), held,
                             load_lenet(trainer.device))
    arrays = {"images": outputs["l1_cgan"].numpy(), "images_l1": outputs["l1"].numpy(),
              "images_cgan": outputs["cgan"].numpy(), "inputs": held.inputs.numpy(),
              "targets": held.targets.numpy(), "labels": held.labels.numpy()}
    shown = torch.stack([torch.nonzero(held.labels == d)[0, 0] for d in range(10)])  # one pair per digit
    rows = [held.inputs[shown], outputs["l1"][shown], outputs["cgan"][shown], outputs["l1_cgan"][shown],
            held.targets[shown]]
    width = max(r.shape[1] for r in rows)
    rows = [r.expand(-1, width, -1, -1) for r in rows]
    return Evaluation(report, arrays, Grid(torch.cat(rows), nrow=len(shown)))


def snapshot_grid(trainer: Pix2PixTrainer, snapshot: tuple) -> Grid:
    """Rows: the fixed inputs, their L1, cGAN and L1 + cGAN translations at that step, the targets."""
    _, outs = snapshot
    rows = [trainer.fixed_inputs.cpu(), *(outs[v] for v in VARIANTS), trainer.fixed_targets.cpu()]
    width = max(r.shape[1] for r in rows)
    return Grid(torch.cat([r.expand(-1, width, -1, -1) for r in rows]), nrow=len(outs["l1"]))


PIX2PIX = ModelSpec(config_class=Pix2PixConfig, preset=pix2pix_preset, kind=Pix2PixTrainer.KIND, build=build,
                    evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=1, image_size=32))
