"""BiGAN / ALI in ``gancourse train``: MNIST-5k, and notebook 14's report.

The report has three parts, each row beside its floor (real data, or the best reference) and its ceiling
(the same networks before training, with the same seed):

- ``linear probe on E(x)``: the held-out accuracy of a linear probe (:mod:`gancourse.deep.probe`) fitted on the
  codes ``E(x)`` of the 4,000 training digits and scored on the 1,000 held-out ones. Ceiling: the same probe on
  the codes of the untrained encoder (a random convolutional network already gives useful features, so this is
  the number to beat). Floor: the same probe on the 128 features of the course's LeNet, a network trained *with*
  the labels on the same 4,000 digits: what supervision buys, the best reference an unsupervised encoder can be
  held to. (A probe on the raw pixels is notebook 14's third reference.)
- ``label kept G(E(x))`` and ``L1 of G(E(x))``: the 1,000 held-out digits reconstructed through the code. The
  LeNet reads each reconstruction (floor: the LeNet on the digits themselves); the pixel distance
  ``mean |G(E(x)) - x|`` has for floor the distance from each digit to *another* held-out digit of the same class
  (:func:`same_label_partners`): a reconstruction that gets the digit right without copying its pixels scores
  about that, which is what BiGAN's reconstructions are (semantic, not pixel-exact).
- ``fd_lenet``, ``classifier_score``, ``class_histogram_kl`` of ``N_EVAL`` samples ``G(z)``, as for DCGAN
  (:func:`gancourse.deep.metrics.metric_report`).

``samples.npz`` holds ``images``: ``N_SAMPLES`` samples ``G(z)``, float32 (N, 1, 32, 32) in [-1, 1] (drawn with
:meth:`BiGANTrainer.sample`'s fixed noise seed; the report scores the first ``N_EVAL``); ``inputs``: the 1,000
held-out digits; ``reconstructions``: ``G(E(inputs))``; ``labels``: their digits, int64 (1000,).
``samples.png`` shows three rows of samples, then two rows of held-out digits (one of each class), each above its
reconstructions.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric, label_preservation, metric_report, paired_l1
from gancourse.deep.probe import extract_features, probe_accuracy
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_bigan import BiGANConfig, BiGANTrainer, bigan_preset

__all__ = ["BIGAN", "N_EVAL", "N_SAMPLES", "same_label_partners", "mnist_probe", "lenet_probe", "probe_report",
           "reconstruction_report"]

N_EVAL = 500  # images per set in the sample metrics, as in the DCGAN report (FD's bias depends on it)
N_SAMPLES = 1000  # samples kept in samples.npz
N_SAMPLE_ROWS = 3  # rows of samples in samples.png (10 to a row)


def build(config: BiGANConfig, device: torch.device) -> BiGANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits (their labels are used only by the evaluation)."""
    images, _ = mnist5k("train")
    return BiGANTrainer(config, images, device)


def same_label_partners(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Indices (N,): for each item, another item with the same label (a random cyclic shift within each class,
    so no item is its own partner); an item alone in its class is its own partner."""
    gen = torch.Generator().manual_seed(seed)
    partner = torch.arange(len(labels))
    for y in torch.unique(labels):
        members = torch.nonzero(labels == y).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        partner[members] = members.roll(1)  # member i -> member i - 1 of the shuffled class
    return partner


def mnist_probe(encode: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Held-out accuracy of the linear probe on ``encode(x)`` (N, D), fitted on the 4,000 training digits and
    scored on the 1,000 held-out ones."""
    x_train, y_train = mnist5k("train")
    x_held, y_held = mnist5k("heldout")
    return probe_accuracy(encode(x_train), y_train, encode(x_held), y_held)


@functools.lru_cache(maxsize=4)
def lenet_probe(device: str = "cpu") -> float:
    """:func:`mnist_probe` on the 128 features of the committed LeNet (computed once per process and device)."""
    lenet = load_lenet(device)
    return mnist_probe(lambda x: extract_features(lenet.features, x, torch.device(device)))  # (N, 128)


def probe_report(report: dict, trainer: BiGANTrainer, untrained: BiGANTrainer) -> dict:
    """Add the row ``linear probe on E(x)`` (see the module docstring) to ``report`` and return it."""
    return add_metric(report, "linear probe on E(x)", lenet_probe(str(trainer.device)), mnist_probe(trainer.encode),
                      mnist_probe(untrained.encode), better="higher")


def reconstruction_report(report: dict, x: torch.Tensor, labels: torch.Tensor, reconstructions: torch.Tensor,
                          untrained_reconstructions: torch.Tensor) -> dict:
    """Add the rows ``label kept G(E(x))`` and ``L1 of G(E(x))`` (see the module docstring) to ``report``."""
    lenet = load_lenet(x.device)
    other = x[same_label_partners(labels)]  # another digit of the same class, for each x
    add_metric(report, "label kept G(E(x))", label_preservation(x, labels, lenet),
               label_preservation(reconstructions, labels, lenet),
               label_preservation(untrained_reconstructions, labels, lenet), better="higher")
    return add_metric(report, "L1 of G(E(x))", paired_l1(other, x), paired_l1(reconstructions, x),
                      paired_l1(untrained_reconstructions, x), better="lower")


def evaluate(trainer: BiGANTrainer, preset: str) -> Evaluation:
    """The linear probe, the reconstructions of the held-out digits and the sample metrics (module docstring)."""
    held, labels = mnist5k("heldout")
    untrained = BiGANTrainer(trainer.config, trainer.images, trainer.device)
    report = probe_report({}, trainer, untrained)
    recon = trainer.reconstruct(held)  # (1000, 1, 32, 32)
    reconstruction_report(report, held, labels, recon, untrained.reconstruct(held))
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    samples = trainer.sample(N_SAMPLES)  # (N_SAMPLES, 1, 32, 32)
    report.update(metric_report(real_a, real_b, samples[:N_EVAL], untrained.sample(N_EVAL), load_lenet(trainer.device)))
    arrays = {"images": samples.numpy(), "inputs": held.numpy(), "reconstructions": recon.numpy(),
              "labels": labels.numpy()}
    digits = range(10)
    rows = [samples[: 10 * N_SAMPLE_ROWS]]
    for k in range(2):  # the k-th held-out digit of each class, above its reconstruction
        shown = torch.stack([torch.nonzero(labels == d)[k, 0] for d in digits])
        rows += [held[shown], recon[shown]]
    return Evaluation(report, arrays, Grid(torch.cat(rows), nrow=10))


def snapshot_grid(trainer: BiGANTrainer, snapshot: tuple) -> Grid:
    """``G(fixed_z)``, then rows of the fixed training digits, each above its reconstruction ``G(E(x))``."""
    _, samples, recon = snapshot
    n = 8
    rows = [samples] + [part for i in range(0, len(recon), n)
                        for part in (trainer.fixed_x[i: i + n].cpu(), recon[i: i + n])]
    return Grid(torch.cat(rows), nrow=n)


BIGAN = ModelSpec(config_class=BiGANConfig, preset=bigan_preset, kind=BiGANTrainer.KIND, build=build,
                  evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=1, image_size=32))
