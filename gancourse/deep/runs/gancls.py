"""GAN-CLS in ``gancourse train``: text to image on captioned MNIST-5k, and notebook 15's report.

The evaluation captions are those of the 1,000 held-out digits (100 per digit): each digit's measured
attributes, cut at the training digits' class medians, in template ``i % 6`` for the ``i``-th digit, each
with its own noise vector from a fixed seed (``EVAL_SEED``). The report, each row beside its floor and
ceiling (the same networks before training):

- ``caption digit agreement``: the share of generated images that the LeNet reads as the caption's digit.
  Floor: the LeNet's accuracy on the real held-out digits.
- ``thickness follows the word``, ``slant follows the word``, ``size follows the word``: each caption is
  written twice, differing only in that attribute's word ("thin" / "thick", "upright" / "slanted",
  "small" / "large"), and both are generated with the same noise; the row is the share of pairs in which
  the measured attribute (ink mass, tilt, bounding-box area) of the upper word's image exceeds the lower
  word's, ties counting one half (:func:`pair_agreement`). Floor: the same share over every pair of real
  held-out digits of one class with the two words, which is 1 by construction (each real digit's word is
  read off its measurement against the class median), so a generator can at best match it.
- ``fd_lenet``: the held-out digits are split into two random halves of 500 (the permutation of
  :func:`gancourse.deep.splits.reference_halves` with seed 0); FD-LeNet to the first half, of the second
  half's real digits (floor) and of the images generated from the second half's captions (trained, ceiling).

``samples.npz`` holds ``images`` (1000, 1, 32, 32) float32 in [-1, 1] generated from those captions,
``labels`` (1000,) int64 the captions' digits, ``captions`` (1000,) the captions as fixed-width unicode.
``samples.png`` has a column per digit and rows in pairs, thin then thick (upright, large), each pair with
its own noise.
"""
from __future__ import annotations

import numpy as np
import torch

from gancourse.deep.captions import ATTRIBUTES, N_MEANINGS, TEMPLATES, captions_for, measure_attributes, meaning_code
from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric, fd_lenet, label_preservation
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.train_gancls import GANCLSConfig, GANCLSTrainer, gancls_preset, snapshot_layout

__all__ = ["GANCLS", "EVAL_SEED", "N_FD", "EvalCaptions", "eval_captions", "pair_agreement", "attribute_pairs",
           "real_pair_agreement", "report_rows", "text_check", "untrained_copy"]

EVAL_SEED = 1234  # the noise of the evaluation images
N_FD = 500  # images per set in FD-LeNet, as in the other models' reports
N_GRID_ROWS = 8  # rows of samples.png: four noise vectors, thin then thick
ROW_NAMES = {name: f"{name} follows the word" for name in ATTRIBUTES}


class EvalCaptions:
    """The held-out digits' captions: ``labels`` (N,), ``attributes`` (N, 3), ``templates`` (N,),
    ``codes`` (N,) meaning codes, ``text`` the captions, ``z`` (N, z_dim) their noise."""

    def __init__(self, trainer: GANCLSTrainer, images: torch.Tensor, labels: torch.Tensor, seed: int = EVAL_SEED):
        self.images, self.labels = images, labels
        self.attributes = trainer.thresholds.attributes(images, labels)  # (N, 3)
        self.templates = torch.arange(len(labels)) % len(TEMPLATES)
        self.codes = meaning_code(labels, self.attributes)
        self.text = captions_for(labels, self.attributes, self.templates)
        self.z = torch.randn(len(labels), trainer.config.z_dim, generator=torch.Generator().manual_seed(seed))


def eval_captions(trainer: GANCLSTrainer) -> EvalCaptions:
    """The captions of the 1,000 held-out MNIST-5k digits, with their noise."""
    images, labels = mnist5k("heldout")
    return EvalCaptions(trainer, images, labels)


def pair_agreement(upper: torch.Tensor, lower: torch.Tensor) -> float:
    """``P(upper > lower) + P(upper = lower) / 2`` over paired measurements (N,) each: 1 when the upper word
    always gives the larger measurement, 1/2 when the word makes no difference."""
    if upper.shape != lower.shape or upper.ndim != 1 or len(upper) == 0:
        raise ValueError(f"upper and lower must be non-empty (N,) tensors of one shape, got {tuple(upper.shape)} "
                         f"and {tuple(lower.shape)}")
    return float((upper > lower).double().mean() + 0.5 * (upper == lower).double().mean())


def attribute_pairs(trainer: GANCLSTrainer, ev: EvalCaptions, column: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of every evaluation caption with attribute ``column`` set to its lower and to its upper word,
    the same noise and template: two tensors (N, 1, S, S)."""
    pair = []
    for word in (0, 1):
        bits = ev.attributes.clone()
        bits[:, column] = word
        h = trainer.embed_meanings(meaning_code(ev.labels, bits), ev.templates)
        pair.append(trainer.generate(ev.z, h))
    return pair[0], pair[1]


def real_pair_agreement(ev: EvalCaptions, column: int) -> float:
    """:func:`pair_agreement` over every pair (a real digit with the upper word, one of the same class with
    the lower word) of the evaluation digits, for attribute ``column``."""
    values = measure_attributes(ev.images)[:, column]  # (N,)
    shares, weights = [], []
    for d in range(10):
        mine = ev.labels == d
        hi, lo = values[mine & (ev.attributes[:, column] == 1)], values[mine & (ev.attributes[:, column] == 0)]
        if len(hi) and len(lo):
            shares.append(pair_agreement(hi[:, None].expand(-1, len(lo)).reshape(-1),
                                         lo[None, :].expand(len(hi), -1).reshape(-1)))  # (hi x lo) pairs
            weights.append(len(hi) * len(lo))
    return float(np.average(shares, weights=weights))


def text_check(trainer: GANCLSTrainer, ev: EvalCaptions, seed: int = 0) -> float:
    """How well D tells a real digit's right caption from a wrong one: the share of held-out digits whose
    logit ``D(x, right)`` exceeds ``D(x, wrong)`` (ties one half), the wrong caption being another meaning
    drawn uniformly (as in training), in the same template."""
    gen = torch.Generator().manual_seed(seed)
    wrong = (ev.codes + torch.randint(1, N_MEANINGS, ev.codes.shape, generator=gen)) % N_MEANINGS
    right_l = trainer.match_logits(ev.images, trainer.embed_meanings(ev.codes, ev.templates))
    wrong_l = trainer.match_logits(ev.images, trainer.embed_meanings(wrong, ev.templates))
    return pair_agreement(right_l, wrong_l)


def untrained_copy(trainer: GANCLSTrainer) -> GANCLSTrainer:
    """A trainer of the same config before training (the same text encoder, without pretraining it again)."""
    return GANCLSTrainer(trainer.config, trainer.images, trainer.labels, trainer.device,
                         encoder_state=trainer.encoder.state_dict())


def build(config: GANCLSConfig, device: torch.device) -> GANCLSTrainer:
    """A trainer on the 4,000 MNIST-5k training digits and their labels."""
    images, labels = mnist5k("train")
    return GANCLSTrainer(config, images, labels, device)


def report_rows(trainer: GANCLSTrainer, ev: EvalCaptions, lenet: torch.nn.Module) -> tuple[dict, torch.Tensor]:
    """One column of the report (all rows but FD-LeNet) for ``trainer``'s generator: ``{row: value}``, and
    the images (N, 1, S, S) of the evaluation captions."""
    images = trainer.generate(ev.z, trainer.embed_meanings(ev.codes, ev.templates))  # (N, 1, S, S)
    rows = {"caption digit agreement": label_preservation(images, ev.labels, lenet)}
    for k, name in enumerate(ATTRIBUTES):
        lower, upper = attribute_pairs(trainer, ev, k)
        rows[ROW_NAMES[name]] = pair_agreement(measure_attributes(upper)[:, k], measure_attributes(lower)[:, k])
    return rows, images


def evaluate(trainer: GANCLSTrainer, preset: str) -> Evaluation:
    """The report of the module docstring, the held-out captions' images and the thin/thick grid."""
    ev = eval_captions(trainer)
    lenet = load_lenet(trainer.device)
    trained, samples = report_rows(trainer, ev, lenet)
    untrained = untrained_copy(trainer)
    ceiling, samples0 = report_rows(untrained, ev, lenet)
    report: dict = {}
    add_metric(report, "caption digit agreement", label_preservation(ev.images, ev.labels, lenet),
               trained["caption digit agreement"], ceiling["caption digit agreement"], better="higher")
    for k, name in enumerate(ATTRIBUTES):
        row = ROW_NAMES[name]
        add_metric(report, row, real_pair_agreement(ev, k), trained[row], ceiling[row], better="higher")
    perm = torch.randperm(len(ev.images), generator=torch.Generator().manual_seed(0))  # reference_halves' split
    ref, other = perm[:N_FD], perm[N_FD: 2 * N_FD]
    add_metric(report, "fd_lenet", fd_lenet(ev.images[ref], ev.images[other], lenet),
               fd_lenet(ev.images[ref], samples[other], lenet), fd_lenet(ev.images[ref], samples0[other], lenet),
               better="lower")
    width = max(map(len, ev.text))
    arrays = {"images": samples.numpy(), "labels": ev.labels.numpy().astype(np.int64),
              "captions": np.array(ev.text, dtype=f"<U{width}")}
    return Evaluation(report, arrays, grid(trainer))


def grid(trainer: GANCLSTrainer, rows: int = N_GRID_ROWS, seed: int = EVAL_SEED) -> Grid:
    """Ten columns (digits 0-9), ``rows`` rows in pairs: thin then thick (upright, large), the same noise
    within a pair (:func:`gancourse.deep.train_gancls.snapshot_layout`)."""
    codes, z_idx, _ = snapshot_layout(10 * rows)
    z = torch.randn(10 * rows, trainer.config.z_dim, generator=torch.Generator().manual_seed(seed))[z_idx]
    return Grid(trainer.generate(z, trainer.embed_meanings(codes, torch.zeros_like(codes))), nrow=10)


def snapshot_grid(trainer: GANCLSTrainer, snapshot: tuple) -> Grid:
    """``G(fixed_z, fixed captions)`` at one step: digits across, rows thin / thick in pairs."""
    _, images = snapshot
    return Grid(images, nrow=10)


GANCLS = ModelSpec(config_class=GANCLSConfig, preset=gancls_preset, kind=GANCLSTrainer.KIND, build=build,
                   evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=1, image_size=32))
