"""A stability grid: the same learning rates and seeds, at the same number of steps, for two recipes.

- ``"dcgan"``: DCGAN's recipe (:class:`gancourse.deep.train_gan.GANTrainer`, loss ``"dcgan"``: batch norm,
  the BCE loss, Adam with betas (0.5, 0.999));
- ``"r3gan"``: R3GAN's (:class:`gancourse.deep.train_r3gan.R3GANTrainer`: RpGAN + R1 + R2, no
  normalisation layers, Adam with betas (0, 0.99)).

Each recipe takes its tier's preset (:func:`recipe_config`) with ``lr_g = lr_d = lr``, the ``seed`` and the
grid's ``steps``, and the grid's changes to that preset (``GRID_FIELDS``: smaller networks at the lecture
tier); nothing else changes between the cells of a recipe.

**The rule** (:func:`classify`, thresholds in :class:`StabilityRule`), on ``N_EVAL`` samples scored by the
course's LeNet against held-out digits:

- *diverged*: training stopped on a non-finite loss (:class:`gancourse.errors.TrainingDiverged`), or
  FD-LeNet is above ``fd_diverged`` (1,000, about half of an untrained generator's 2,100 on this data; real
  digits score about 13 and recognisable samples a few hundred at most): the samples have lost most of what
  makes them digits;
- *collapsed*: otherwise, if the class-histogram KL to uniform is above ``kl_collapsed`` (0.5; a generator
  that draws five classes evenly scores log 2 = 0.69) or fewer than ``min_classes`` (8) of the 10 classes
  hold at least ``class_share`` (2%) of the samples;
- *ok*: neither.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.lenet import load_lenet
from gancourse.deep.metrics import fd_lenet, lenet_probabilities
from gancourse.deep.splits import reference_halves
from gancourse.deep.train_gan import GANTrainer, dcgan_preset
from gancourse.deep.train_r3gan import R3GANTrainer, r3gan_preset
from gancourse.errors import TrainingDiverged, check_choice, check_positive, check_positive_int
from gancourse.tiers import check_tier, pick

__all__ = ["RECIPES", "OUTCOMES", "N_EVAL", "StabilityRule", "RULE", "classify", "class_counts", "uniform_kl", "recipe_config",
           "grid_settings", "GRID_FIELDS", "run_cell", "stability_grid", "count_outcomes", "format_grid", "plot_stability_grid"]

RECIPES = ("dcgan", "r3gan")
OUTCOMES = ("ok", "collapsed", "diverged")
N_EVAL = 500  # samples scored per run, as in the metric reports (FD's bias depends on it)


@dataclass(frozen=True)
class StabilityRule:
    """The thresholds of the module docstring's rule."""

    fd_diverged: float = 1000.0
    kl_collapsed: float = 0.5
    min_classes: int = 8
    class_share: float = 0.02

    def __post_init__(self) -> None:
        check_positive("fd_diverged", self.fd_diverged)
        check_positive("kl_collapsed", self.kl_collapsed)
        check_positive_int("min_classes", self.min_classes)
        if not 0.0 < self.class_share < 1.0:
            raise ValueError(f"class_share is a share of the samples in (0, 1), got {self.class_share!r}")


RULE = StabilityRule()


def class_counts(predicted: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """How many samples the classifier put in each class: (n_classes,) int64 from labels (N,)."""
    return np.bincount(np.asarray(predicted, dtype=np.int64), minlength=n_classes)


def uniform_kl(hist: np.ndarray) -> float:
    """``KL(q || uniform) = sum_k q_k log(K q_k)`` of a class histogram ``q`` (K,) summing to 1 (0 log 0 = 0)."""
    q = np.asarray(hist, dtype=np.float64)
    safe = np.where(q > 0, q, 1.0)
    return float(np.sum(q * np.log(safe * len(q))))


def classify(fd: float, kl: float, n_classes: int, diverged: bool = False, rule: StabilityRule = RULE) -> str:
    """``"diverged"``, ``"collapsed"`` or ``"ok"`` by the module docstring's rule (NaN FD or KL: diverged)."""
    if diverged or not math.isfinite(fd) or not math.isfinite(kl) or fd > rule.fd_diverged:
        return "diverged"
    if kl > rule.kl_collapsed or n_classes < rule.min_classes:
        return "collapsed"
    return "ok"


def recipe_config(recipe: str, tier: str, lr: float, seed: int, steps: int, **fields: Any):
    """The ``recipe``'s preset at ``tier`` with ``lr_g = lr_d = lr``, ``seed``, ``steps`` and any other config
    ``fields`` (network sizes, ``gamma``, ...); snapshots off."""
    check_choice("recipe", recipe, RECIPES)
    check_positive("lr", lr)
    preset = dcgan_preset if recipe == "dcgan" else r3gan_preset
    return preset(tier=tier, **{"sample_every": steps + 1, **fields, "lr_g": lr, "lr_d": lr, "seed": seed,
                                "steps": steps})


#: per tier, the config fields each recipe's runs in the grid change from its preset (smaller networks)
GRID_FIELDS: dict[str, dict[str, dict]] = {
    "smoke": {"dcgan": {}, "r3gan": {}},
    "lecture": {"dcgan": dict(g_width=16, d_width=16, batch_size=32),
                "r3gan": dict(g_width=8, d_width=8, batch_size=32)},
    "full": {"dcgan": {}, "r3gan": {}},
}


def grid_settings(tier: str) -> dict:
    """The grid of notebook 19 at ``tier``: ``lrs``, ``seeds``, ``steps`` (the same for both recipes) and
    ``fields``, each recipe's changes to its preset (``GRID_FIELDS``); pass it to :func:`stability_grid`."""
    check_tier(tier)
    grid = pick(tier,
                smoke=dict(lrs=(5e-4, 5e-2), seeds=(0,), steps=20),
                lecture=dict(lrs=(5e-4, 5e-3, 5e-2), seeds=(0, 1), steps=400),
                full=dict(lrs=(2e-4, 5e-4, 2e-3, 5e-3, 2e-2, 5e-2), seeds=(0, 1, 2, 3), steps=3000))
    return {**grid, "fields": {k: dict(v) for k, v in GRID_FIELDS[tier].items()}}


def _evaluate(trainer, real_a: torch.Tensor, lenet, rule: StabilityRule, keep: int) -> dict:
    samples = trainer.sample(N_EVAL)  # (N_EVAL, 1, 32, 32)
    probs = lenet_probabilities(samples, lenet)  # (N_EVAL, 10)
    hist = class_counts(probs.argmax(axis=1)) / len(samples)  # (10,)
    return {"fd_lenet": fd_lenet(real_a, samples, lenet), "class_kl": uniform_kl(hist),
            "classes": int((hist >= rule.class_share).sum()), "samples": samples[:keep]}


def run_cell(recipe: str, lr: float, seed: int, steps: int, tier: str, images: torch.Tensor,
             real_a: torch.Tensor, lenet, rule: StabilityRule = RULE, device: str = "cpu", keep: int = 16,
             fields: Mapping[str, Any] | None = None) -> dict:
    """Train one cell of the grid and classify it: a row ``{recipe, lr, seed, outcome, fd_lenet, class_kl,
    classes, diverged_at, cpu_s, samples}`` (``diverged_at``: the step of a non-finite loss, else None;
    ``samples``: the first ``keep`` evaluated samples (keep, 1, 32, 32), empty after a non-finite loss)."""
    config = recipe_config(recipe, tier, lr, seed, steps, **(fields or {}))
    trainer = GANTrainer(config, images, device) if recipe == "dcgan" else R3GANTrainer(config, images, device)
    start = time.process_time()
    row = {"recipe": recipe, "lr": float(lr), "seed": int(seed), "diverged_at": None}
    try:
        trainer.train(progress=False)
        row.update(_evaluate(trainer, real_a, lenet, rule, keep))
    except TrainingDiverged as err:
        row.update(fd_lenet=math.inf, class_kl=math.inf, classes=0, diverged_at=err.step,
                   samples=torch.zeros(0, *images.shape[1:]))
    row["outcome"] = classify(row["fd_lenet"], row["class_kl"], row["classes"], row["diverged_at"] is not None, rule)
    row["cpu_s"] = time.process_time() - start
    return row


def stability_grid(lrs: Sequence[float], seeds: Sequence[int], steps: int, tier: str = "lecture",
                   recipes: Sequence[str] = RECIPES, rule: StabilityRule = RULE, device: str = "cpu",
                   callback: Callable[[dict], None] | None = None, keep: int = 16,
                   fields: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict]:
    """Run every (recipe, lr, seed) cell at ``steps`` steps on MNIST-5k; one row per cell (:func:`run_cell`),
    recipe by recipe, then by learning rate and seed. ``fields[recipe]`` changes that recipe's preset (as
    ``grid_settings(tier)["fields"]``); ``callback(row)`` is called after each cell."""
    check_tier(tier)
    check_positive_int("steps", steps)
    for r in recipes:
        check_choice("recipe", r, RECIPES)
    if not lrs or not seeds:
        raise ValueError(f"the grid needs at least one learning rate and one seed, got lrs={lrs!r}, seeds={seeds!r}")
    images, _ = mnist5k("train")
    held, _ = mnist5k("heldout")
    real_a, _ = reference_halves(held, N_EVAL, seed=0)
    lenet = load_lenet(device)
    rows = []
    for recipe in recipes:
        for lr in lrs:
            for seed in seeds:
                rows.append(run_cell(recipe, lr, seed, steps, tier, images, real_a, lenet, rule, device, keep,
                                     (fields or {}).get(recipe)))
                if callback is not None:
                    callback(rows[-1])
    return rows


def count_outcomes(rows: Sequence[dict]) -> dict[str, dict[str, int]]:
    """``{recipe: {"ok": n, "collapsed": n, "diverged": n}}`` over the rows of :func:`stability_grid`."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        check_choice("outcome", row["outcome"], OUTCOMES)
        counts.setdefault(row["recipe"], dict.fromkeys(OUTCOMES, 0))[row["outcome"]] += 1
    return counts


def format_grid(rows: Sequence[dict]) -> str:
    """A plain-text table of the rows: recipe, lr, seed, outcome, FD-LeNet, class KL, classes, CPU seconds."""
    head = f"{'recipe':<8}{'lr':>9}{'seed':>6}  {'outcome':<10}{'FD-LeNet':>10}{'class KL':>10}{'classes':>9}{'CPU s':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['recipe']:<8}{r['lr']:>9.1e}{r['seed']:>6}  {r['outcome']:<10}{r['fd_lenet']:>10.1f}"
                     f"{r['class_kl']:>10.3f}{r['classes']:>9}{r['cpu_s']:>8.1f}")
    return "\n".join(lines)


def plot_stability_grid(rows: Sequence[dict], axes=None):
    """One panel per recipe: learning rate (rows) x seed (columns), each cell coloured by its outcome
    (green ok, orange collapsed, red diverged) and labelled with its FD-LeNet. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    lrs = sorted({r["lr"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    if axes is None:
        _, axes = plt.subplots(1, len(recipes), figsize=(min(4.5 * len(recipes), 11), 0.6 * len(lrs) + 1.6),
                               squeeze=False)
        axes = axes[0]
    cmap = ListedColormap(["#4caf50", "#ff9800", "#e53935"])
    for ax, recipe in zip(axes, recipes):
        grid = np.full((len(lrs), len(seeds)), np.nan)
        for r in rows:
            if r["recipe"] == recipe:
                i, j = lrs.index(r["lr"]), seeds.index(r["seed"])
                grid[i, j] = OUTCOMES.index(r["outcome"])
                fd = "inf" if not math.isfinite(r["fd_lenet"]) else f"{r['fd_lenet']:.0f}"
                ax.text(j, i, f"{r['outcome']}\nFD {fd}", ha="center", va="center", fontsize=8)
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=2, aspect="auto")
        ax.set_xticks(range(len(seeds)), [str(s) for s in seeds])
        ax.set_yticks(range(len(lrs)), [f"{lr:.0e}" for lr in lrs])
        ax.set_xlabel("seed")
        ax.set_ylabel("learning rate")
        ax.set_title(recipe)
    fig = axes[0].figure
    fig.tight_layout()
    return fig
