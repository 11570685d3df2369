"""The small StyleGAN in ``gancourse train``: MNIST-5k, and notebook 17's report.

The evaluated generator is ``G_ema`` (the weight average). Every row stands beside a floor (real held-out
digits) and a ceiling (the same networks untrained):

- ``fd_lenet``, ``classifier_score``, ``class_histogram_kl`` of ``N_EVAL`` samples at ``psi = 1``
  (:func:`gancourse.deep.metrics.metric_report`, references from :func:`gancourse.deep.splits.reference_halves`)
  and ``mean confidence``, the mean over images of the LeNet's largest class probability;
- the truncation sweep: for each ``psi`` in ``PSIS`` the rows ``fd_lenet psi=P``, ``class_kl psi=P`` (the
  class-histogram KL) and ``confidence psi=P`` (the mean confidence) on ``N_EVAL`` samples from the same latents
  and noise at every ``psi`` (the ceiling is the untrained generator at the same ``psi``). Lowering ``psi`` pulls
  every ``w`` towards ``w_avg``: fewer classes appear (the KL to uniform rises towards ``log 10 = 2.30``, one
  class) and FD-LeNet rises; whether the LeNet grows more confident depends on the digit that ``w_avg`` draws
  (a clean digit, or a blend of several);
- ``ppl_z`` and ``ppl_w``: the perceptual path length in Z (slerp) and in W (lerp) with LeNet features
  (:mod:`gancourse.deep.path_length`); real images have no path length, so the floor is NaN (null in
  metrics.json); the ceiling is the untrained generator's.

``samples.npz``: ``images`` float32 (N_SAMPLES, 1, 32, 32) in [-1, 1] at ``psi = 1``. ``samples.png``: the
first 100 of them, ten to a row.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import add_metric, class_histogram_kl, fd_lenet, lenet_probabilities, metric_report
from gancourse.deep.path_length import perceptual_path_length
from gancourse.deep.runs.spec import Evaluation, Grid, ModelSpec
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_stylegan import StyleGANConfig, StyleGANTrainer, stylegan_preset
from gancourse.tiers import pick

__all__ = ["STYLEGAN", "N_EVAL", "N_SAMPLES", "PSIS", "mean_confidence", "truncation_sweep", "ppl_paths",
           "sweep_table", "SWEEP_ROWS"]

N_EVAL = 500  # images per set in FD-LeNet, as for DCGAN (FD's bias depends on it)
N_SAMPLES = 1000
PSIS = (0.0, 0.25, 0.5, 0.75, 1.0)
SWEEP_SEED = 4321  # the latents of the truncation sweep, the same at every psi
#: the report's name of each sweep quantity (``NAME psi=P``)
SWEEP_ROWS = {"fd_lenet": "fd_lenet", "class_histogram_kl": "class_kl", "mean_confidence": "confidence"}


def ppl_paths(preset: str) -> int:
    """How many latent pairs each PPL averages over at a tier."""
    return pick(preset, smoke=100, lecture=1000, full=5000)


def mean_confidence(x: torch.Tensor, lenet: torch.nn.Module) -> float:
    """``mean_i max_k p(k | x_i)``: how sure the LeNet is, on average, of the class of each image."""
    return float(lenet_probabilities(x, lenet).max(axis=1).mean())


def truncation_sweep(trainer: StyleGANTrainer, real_ref: torch.Tensor, lenet: torch.nn.Module,
                     psis: tuple[float, ...] = PSIS, n: int = N_EVAL) -> dict[float, dict[str, float]]:
    """``{psi: {"fd_lenet", "class_histogram_kl", "mean_confidence"}}`` of ``n`` samples of ``trainer``'s
    ``G_ema`` at each ``psi``, from the same latents and noise (seed ``SWEEP_SEED``), FD against ``real_ref``."""
    out = {}
    for psi in psis:
        x = trainer.sample(n, seed=SWEEP_SEED, psi=psi)
        out[float(psi)] = {"fd_lenet": fd_lenet(real_ref, x, lenet), "class_histogram_kl": class_histogram_kl(x, lenet),
                           "mean_confidence": mean_confidence(x, lenet)}
    return out


def sweep_table(report: dict, psis: tuple[float, ...] = PSIS) -> dict[str, list[float]]:
    """The trained column of the sweep rows of ``report``: ``{"psi": [...], "fd_lenet": [...],
    "class_histogram_kl": [...], "mean_confidence": [...]}``."""
    table: dict[str, list[float]] = {"psi": list(psis)}
    for key, name in SWEEP_ROWS.items():
        table[key] = [report[f"{name} psi={p:g}"]["trained"] for p in psis]
    return table


def build(config: StyleGANConfig, device: torch.device) -> StyleGANTrainer:
    """A trainer on the 4,000 MNIST-5k training digits."""
    images, _ = mnist5k("train")
    return StyleGANTrainer(config, images, device)


def evaluate(trainer: StyleGANTrainer, preset: str) -> Evaluation:
    """The rows of the module docstring, the samples, and a 10x10 grid."""
    held, _ = mnist5k("heldout")
    real_a, real_b = reference_halves(held, N_EVAL, seed=0)
    lenet = load_lenet(trainer.device)
    untrained = StyleGANTrainer(trainer.config, trainer.images, trainer.device)
    samples = trainer.sample(N_SAMPLES)  # (N_SAMPLES, 1, 32, 32), psi = 1
    raw = untrained.sample(N_EVAL)
    report = metric_report(real_a, real_b, samples[:N_EVAL], raw, lenet)
    add_metric(report, "mean confidence", mean_confidence(real_b, lenet), mean_confidence(samples[:N_EVAL], lenet),
               mean_confidence(raw, lenet), better="higher")
    floor = {"fd_lenet": fd_lenet(real_a, real_b, lenet), "class_histogram_kl": class_histogram_kl(real_b, lenet),
             "mean_confidence": mean_confidence(real_b, lenet)}
    trained, ceiling = truncation_sweep(trainer, real_a, lenet), truncation_sweep(untrained, real_a, lenet)
    for psi in PSIS:
        for key, better in (("fd_lenet", "lower"), ("class_histogram_kl", "lower"), ("mean_confidence", "higher")):
            add_metric(report, f"{SWEEP_ROWS[key]} psi={psi:g}", floor[key], trained[psi][key], ceiling[psi][key],
                       better=better)
    n = ppl_paths(preset)
    for space in ("z", "w"):  # LeNet's penultimate features stand in for the paper's VGG (LPIPS)
        add_metric(report, f"ppl_{space}", math.nan, perceptual_path_length(trainer.G_ema, lenet, space, n),
                   perceptual_path_length(untrained.G_ema, lenet, space, n), better="lower")
    return Evaluation(report, {"images": samples.numpy().astype(np.float32)}, Grid(samples[:100], nrow=10))


def snapshot_grid(trainer: StyleGANTrainer, snapshot: tuple) -> Grid:
    """``G_ema(fixed_z)`` at one step of training, eight to a row."""
    _, images = snapshot
    return Grid(images, nrow=8)


STYLEGAN = ModelSpec(config_class=StyleGANConfig, preset=stylegan_preset, kind=StyleGANTrainer.KIND, build=build,
                     evaluate=evaluate, snapshot_grid=snapshot_grid, fixed=dict(channels=1, image_size=32))
