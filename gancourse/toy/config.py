"""Configuration of a toy GAN run: one frozen dataclass, defaults in code.

The defaults are the course's **recommended recipe** for the 2D mixtures
(non-saturating loss + R1, Adam with beta2 0.99 and two time-scale learning
rates, 2e-3 for G and 3e-3 for D, decayed linearly over 12,000 steps, data
rescaled to about [-2, 2], generator EMA with warm-up); every field maps one to
one onto a ``gancourse toy`` flag.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, fields

import numpy as np

from gancourse.errors import check_positive
from gancourse.options import check_choices, option
from gancourse.nn import ACTIVATIONS, INITS, LOSSES, OPTIMIZERS, PENALTIES
from gancourse.toy.distributions import DATASETS

__all__ = [
    "ToyConfig", "LR_SCHEDULES", "plain_gan", "recommended", "RECIPE_OVERRIDES", "memory_estimate", "check_memory",
]

LR_SCHEDULES = ("constant", "linear")
_NUMBERS = (int, float, np.integer, np.floating)


@dataclass(frozen=True)
class ToyConfig:
    """Everything that defines a toy GAN run (see ``gancourse toy --help`` for each field)."""

    data: str = option("grid25", 'toy distribution', choices=DATASETS)
    seed: int = option(0, 'random seed (runs are bit-identical for the same seed)')
    steps: int = option(12000, "generator iterations: the planned length of the run, over which --lr-schedule linear "
                               "and --instance-noise are timed")
    batch_size: int = option(128, 'samples per batch, real and fake each')
    z_dim: int = option(16, 'latent dimension')
    g_hidden: tuple[int, ...] = option((128, 128, 128), 'generator hidden widths, comma-separated')
    d_hidden: tuple[int, ...] = option((128, 128, 128), 'discriminator hidden widths, comma-separated')
    g_activation: str = option("relu", 'hidden activation of the generator', choices=ACTIVATIONS)
    d_activation: str = option("leaky_relu", 'hidden activation of the discriminator', choices=ACTIVATIONS)
    init: str = option("uniform", 'weight initialisation of both networks', choices=INITS)
    loss: str = option("ns", 'adversarial loss', choices=LOSSES)
    penalty: str = option("r1", 'gradient penalty on the discriminator', choices=PENALTIES)
    gamma: float = option(0.1, 'penalty weight: gamma of R1/R2 (of each term of r1+r2), lambda of WGAN-GP')
    penalty_every: int = option(1, "apply the penalty every k-th iteration with weight k*gamma (lazy "
                                   "regularization)")
    optimizer: str = option("adam", 'optimizer of both players', choices=OPTIMIZERS)
    lr_g: float = option(2e-3, 'generator learning rate')
    lr_d: float = option(3e-3, 'discriminator learning rate')
    beta1: float = option(0.5, 'Adam beta1')
    beta2: float = option(0.99, 'Adam beta2')
    momentum: float = option(0.0, 'SGD momentum (negative allowed)')
    lr_schedule: str = option("linear", 'learning-rate schedule', choices=LR_SCHEDULES)
    lr_final: float = option(0.02, 'final learning rate as a fraction of the initial one (linear schedule)')
    n_critic: int = option(1, 'discriminator steps per generator step')
    label_smoothing: float = option(1.0, 'target for real samples (one-sided label smoothing, e.g. 0.9)')
    feature_matching: bool = option(False, 'train G by feature matching')
    minibatch_discrimination: int = option(0, 'number of minibatch-discrimination kernels (0 = off)')
    historical_averaging: float = option(0.0, 'historical-averaging weight (0 = off)')
    instance_noise: float = option(0.0, 'initial instance-noise std, annealed to 0 (0 = off)')
    unrolled_steps: int = option(0, 'unrolled discriminator steps for the generator update (0 = off)')
    weight_clip: float = option(0.0, 'WGAN weight clipping bound (0 = off)')
    spectral_norm: bool = option(False, 'spectral normalization in D')
    ema: float = option(0.999, 'generator EMA decay (0 = off)')
    data_scale: float = option(0.0, 'divide data by this for training (0 = automatic, about [-2, 2])')
    eval_every: int = option(0, 'evaluate metrics every N steps (0 = only at the end)')
    n_eval: int = option(2500, 'samples used for the metrics')
    dtype: str = option("float32", 'floating-point type of the networks', choices=("float32", "float64"))
    threads: int = option(1, "BLAS threads while training (small matrices train fastest and steadiest on "
                             "one)")

    def __post_init__(self) -> None:
        self._check_types()
        check_choices(self)
        for name in ("lr_g", "lr_d", "batch_size", "z_dim", "steps", "n_critic", "n_eval"):
            check_positive(name, getattr(self, name))
        for name in ("gamma", "historical_averaging", "instance_noise", "weight_clip", "data_scale", "lr_final"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_positive("penalty_every", self.penalty_every)
        check_positive("threads", self.threads)
        for name in ("steps", "batch_size", "z_dim", "n_critic", "n_eval", "unrolled_steps", "eval_every", "penalty_every", "threads",
                     "minibatch_discrimination", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise TypeError(f"{name} must be a non-negative integer, got {v!r}")
        if not 0.0 < self.label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing is the real label in (0, 1], got {self.label_smoothing}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema is a decay in [0, 1) (0 turns it off), got {self.ema}")
        if self.lr_final > 1.0:
            raise ValueError(f"lr_final is a fraction of the initial learning rate in [0, 1], got {self.lr_final}")
        for name in ("g_hidden", "d_hidden"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or not all(isinstance(h, int) and h > 0 for h in v):
                raise TypeError(f"{name} must be a tuple of positive integers, got {v!r}")
        if self.penalty != "none" and self.gamma == 0:
            raise ValueError(f"penalty {self.penalty!r} needs a positive weight (gamma), got 0")
        if self.penalty != "none" and self.minibatch_discrimination:
            raise ValueError("gradient penalties cannot be combined with minibatch discrimination in this engine")
        if self.label_smoothing != 1.0 and self.loss not in ("gan", "ns"):
            raise ValueError(f"label_smoothing applies to the cross-entropy losses 'gan' and 'ns', not {self.loss!r}")
        for f in fields(self):  # numbers as plain floats: the config a checkpoint saves is the config that runs
            if _HINTS[f.name] is float:
                object.__setattr__(self, f.name, float(getattr(self, f.name)))

    def _check_types(self) -> None:
        """Switches must be True or False and numbers numbers; NumPy integers and booleans become plain ones.

        Runs first, so that ``feature_matching="no"`` (a non-empty string, hence truthy) cannot switch a trick
        on, and ``seed=np.int64(3)`` is the run of ``seed=3``. Ranges are checked afterwards.
        """
        for f in fields(self):
            hint, v = _HINTS[f.name], getattr(self, f.name)
            if hint is bool:
                if not isinstance(v, (bool, np.bool_)):
                    raise TypeError(f"{f.name} must be True or False, got {v!r}")
                v = bool(v)
            elif hint is int and isinstance(v, np.integer):
                v = int(v)
            elif hint is float and (isinstance(v, (bool, np.bool_)) or not isinstance(v, _NUMBERS)):
                raise TypeError(f"{f.name} must be a number, got {type(v).__name__}")
            elif hint == tuple[int, ...] and isinstance(v, tuple):
                v = tuple(int(h) if isinstance(h, np.integer) else h for h in v)
            object.__setattr__(self, f.name, v)

    def scheduled_over_steps(self) -> list[str]:
        """What in this run is timed by ``steps`` (its planned length); empty when nothing is.

        A run with such a schedule is defined by its length: stopping it at step k and continuing it to
        another total is not the same run, so a resumed run keeps ``steps`` (see ``ToyGAN.extend``).
        """
        timed = []
        if self.lr_schedule == "linear" and self.lr_final != 1.0:
            timed.append(f"lr_schedule='linear' decays the learning rate to lr_final={self.lr_final:g} times "
                         f"its initial value")
        if self.instance_noise > 0:
            timed.append(f"instance_noise={self.instance_noise:g} is annealed to 0")
        return timed

    def replace(self, **changes) -> "ToyConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ToyConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; valid fields are: {sorted(known)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


_HINTS = typing.get_type_hints(ToyConfig)  # field name -> type (the annotations are strings here)


#: where the recommended recipe departs from the ToyConfig defaults, per dataset
RECIPE_OVERRIDES: dict[str, dict] = {
    # ring8's modes are 3x sharper relative to their spacing than grid25's: a weaker R1 lets the
    # discriminator resolve them, and the learning rate decays all the way to zero with no weight averaging
    "ring8": {"gamma": 0.03, "ema": 0.0, "lr_final": 0.0, "steps": 16000},
}


def recommended(data: str = "grid25", **changes) -> ToyConfig:
    """The course's recommended recipe for ``data`` (the ToyConfig defaults plus ``RECIPE_OVERRIDES``)."""
    base = dict(RECIPE_OVERRIDES.get(data, {}), data=data)
    base.update(changes)
    return ToyConfig(**base)


def plain_gan(data: str = "grid25", **changes) -> ToyConfig:
    """The plain non-saturating GAN of the lectures: no penalty, constant lr 1e-4, Adam(0.5, 0.999), no EMA."""
    base = dict(data=data, penalty="none", gamma=0.0, lr_schedule="constant", ema=0.0, lr_g=1e-4, lr_d=1e-4,
                beta2=0.999)
    base.update(changes)
    return ToyConfig(**base)


# --------------------------------------------------------------------------------------------- memory


def _n_params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))  # W (a, b) and bias (b,) per Linear layer


def _activations(sizes: list[int]) -> int:
    """Numbers an MLP keeps per input row for its backward pass: each layer's input, each activation's output."""
    return sum(sizes[:-1]) + sum(sizes[1:-1])


def memory_estimate(cfg: ToyConfig) -> dict[str, int]:
    """A lower bound, in bytes, on what a run of ``cfg`` holds in memory, in three parts.

    - ``parameters``: weights and gradients of G and D, optimizer state, EMA and historical averages;
    - ``training``: what one training step keeps for backward: G on ``batch_size`` rows, D on the
      ``2 * batch_size`` rows of ``[real; fake]`` (3x with the WGAN-GP interpolates), and minibatch
      discrimination's ``(kernels, B, B)`` distance arrays per group;
    - ``evaluation``: G on the ``n_eval`` rows that the metrics use, and those samples in float64.

    The peak is at least ``parameters + max(training, evaluation)``. Counts only the largest arrays, so a
    run may need more, never less.
    """
    item = 4 if cfg.dtype == "float32" else 8
    dim = DATASETS[cfg.data].dim  # a ToyConfig holds a valid name
    g_sizes, d_sizes = [cfg.z_dim, *cfg.g_hidden, dim], [dim, *cfg.d_hidden, 1]
    opt_buffers = {"adam": 2, "rmsprop": 1}.get(cfg.optimizer, 1 if cfg.momentum else 0)
    hist = 1 if cfg.historical_averaging else 0
    copies_g = 2 + opt_buffers + hist + (3 if cfg.ema else 0)  # theta, dtheta, state, mean, EMA avg/work/copy
    copies_d = 2 + opt_buffers + hist
    B = cfg.batch_size
    groups = 3 if cfg.penalty == "wgan-gp" else 2
    mbd = groups * (4 + 2) * cfg.minibatch_discrimination * B * B  # 4 sign arrays, distances, kernel values
    return {
        "parameters": item * (copies_g * _n_params(g_sizes) + copies_d * _n_params(d_sizes)),
        "training": item * (B * _activations(g_sizes) + groups * B * _activations(d_sizes) + mbd),
        "evaluation": item * cfg.n_eval * _activations(g_sizes) + 8 * cfg.n_eval * dim,
    }


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def _flag(cfg: ToyConfig, name: str) -> str:
    value = getattr(cfg, name)
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f"--{name.replace('_', '-')} {shown}"


def check_memory(cfg: ToyConfig, available: int | None = None) -> None:
    """Refuse a run whose :func:`memory_estimate` exceeds ``available`` bytes (default: this machine's memory).

    The message names the sizes (as ``gancourse toy`` flags) behind the largest part of the estimate.
    """
    available = physical_memory() if available is None else available
    if not available:
        return
    need = memory_estimate(cfg)
    peak = need["parameters"] + max(need["training"], need["evaluation"])
    if peak <= available:
        return
    part = max(need, key=need.get)
    if part == "parameters":
        g = _n_params([cfg.z_dim, *cfg.g_hidden, 1])
        d = _n_params([1, *cfg.d_hidden, 1])
        widths = _flag(cfg, "g_hidden" if g >= d else "d_hidden")
        cause = f"the network widths {widths} (parameters, gradients, optimizer state)"
    elif part == "training":
        cause = f"{_flag(cfg, 'batch_size')} (the activations of one training step)"
    else:
        cause = f"{_flag(cfg, 'n_eval')} (the generator's activations on the evaluation samples)"
    raise ValueError(
        f"this run needs at least {_bytes(peak)} of memory, more than the {_bytes(available)} this machine has; "
        f"most of it ({_bytes(need[part])}) comes from {cause}. Choose smaller sizes."
    )
