"""CycleGAN in ``gancourse train``: MNIST (A) <-> the MNIST-M-style domain (B), and notebook 09's report.

Training sees the two domains unpaired (:attr:`gancourse.deep.data.MnistM.b_unpaired`); the held-out split
keeps the hidden pairing, so each translation can be compared with its true partner. The report, on the
first ``N_EVAL`` held-out pairs, has three rows, each beside its floor (real images of the target domain)
and ceiling (the same networks before training):

- ``B acceptance (A->B)``: the share of ``G_AB(a)`` that a small classifier trained to tell B from A
  (and from pixel-shuffled B) accepts as B (:func:`gancourse.deep.metrics.domain_acceptance`);
- ``label kept (B->A)``: the share of ``G_BA(b)`` that the LeNet reads as the digit of ``b``;
- ``L1 to true pair (B->A)``: the mean pixel distance from ``G_BA(b)`` (grey) to the true ``a``.

``samples.png`` shows one held-out pair of each digit in four rows: ``a``, ``G_AB(a)``, the true ``b``,
``G_BA(b)``. ``samples.npz`` holds every held-out pair: ``inputs`` the A digits, float32 (N, 1, 32, 32);
``images`` their translations ``G_AB(inputs)``, float32 (N, 3, 32, 32); ``targets`` the true B partners
(N, 3, 32, 32); ``labels`` the digits, int64 (N,); ``reverse_images`` the translations ``G_BA(targets)``
(N, 3, 32, 32). All images lie in [-1, 1].
"""
from __future__ import annotations

import torch

from gancourse.deep.data import mnist_m
from gancourse.deep.lenet import load_lenet, to_grayscale
from gancourse.deep.metrics import add_metric, domain_acceptance, label_preservation, paired_l1, train_domain_classifier
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.train_cyclegan import CycleGANConfig, CycleGANTrainer, cyclegan_preset, gray_to_rgb
from gancourse.tiers import pick

__all__ = ["CYCLEGAN", "N_EVAL"]

N_EVAL = 500  # held-out pairs in the report, as in notebook 09


def build(config: CycleGANConfig, device: torch.device) -> CycleGANTrainer:
    """A trainer on the 4,000 training digits (A) and their coloured versions, shuffled (B)."""
    train = mnist_m("train")
    return CycleGANTrainer(config, train.a, train.b_unpaired, device)


def evaluate(trainer: CycleGANTrainer, preset: str) -> Evaluation:
    """Notebook 09's three rows (see the module docstring) and every held-out pair translated both ways."""
    held, train = mnist_m("heldout"), mnist_m("train")
    trans_b, trans_a = trainer.translate_ab(held.a), trainer.translate_ba(held.b)  # (N, 3, 32, 32) each
    untrained = CycleGANTrainer(trainer.config, trainer.a, trainer.b, trainer.device)
    a, b, labels, n = held.a[:N_EVAL], held.b[:N_EVAL], held.labels[:N_EVAL], N_EVAL
    trans_b0, trans_a0 = untrained.translate_ab(a), untrained.translate_ba(b)
    domain_steps = pick(preset, smoke=100, lecture=600, full=600)  # training steps of the grading classifier
    accepts_b = train_domain_classifier(train.a, train.b, steps=domain_steps, seed=0)
    lenet = load_lenet(trainer.device)
    report: dict = {}
    add_metric(report, "B acceptance (A->B)", domain_acceptance(b, accepts_b), domain_acceptance(trans_b[:n], accepts_b),
               domain_acceptance(trans_b0, accepts_b), better="higher")
    add_metric(report, "label kept (B->A)", label_preservation(a, labels, lenet),
               label_preservation(to_grayscale(trans_a[:n]), labels, lenet),
               label_preservation(to_grayscale(trans_a0), labels, lenet), better="higher")
    add_metric(report, "L1 to true pair (B->A)", paired_l1(a, a), paired_l1(to_grayscale(trans_a[:n]), a),
               paired_l1(to_grayscale(trans_a0), a), better="lower")
    arrays = {"images": trans_b.numpy(), "inputs": held.a.numpy(), "targets": held.b.numpy(),
              "labels": held.labels.numpy(), "reverse_images": trans_a.numpy()}
    shown = torch.stack([torch.nonzero(held.labels == d)[0, 0] for d in range(10)])  # one pair per digit
    rows = [gray_to_rgb(held.a[shown]), trans_b[shown], held.b[shown], trans_a[shown]]
    return Evaluation(report, arrays, Grid(torch.cat(rows), nrow=len(shown)))


def snapshot_grid(trainer: CycleGANTrainer, snapshot: tuple) -> Grid:
    """Rows: the fixed A images, their translations, the fixed B images, their translations."""
    _, trans_b, trans_a = snapshot
    rows = [trainer.fixed_a.cpu(), trans_b, trainer.fixed_b.cpu(), trans_a]
    return Grid(torch.cat(rows), nrow=len(trans_b))


def scheduled(config: CycleGANConfig) -> str | None:
    """The learning rate decays to 0 over the planned steps unless ``decay_start`` is 1."""
    if config.decay_start >= 1:
        return None
    return (f"its learning rate decays linearly to 0 from step {int(config.decay_start * config.steps)} to step "
            f"{config.steps} (decay_start {config.decay_start})")


CYCLEGAN = ModelSpec(config_class=CycleGANConfig, preset=cyclegan_preset, kind=CycleGANTrainer.KIND, build=build,
                     evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=3, image_size=32),
                     scheduled=scheduled)
