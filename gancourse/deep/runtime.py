"""Pieces shared by the training loops: mixed precision and compilation switches, a resumable
minibatch sampler, a loss history that syncs with the device only now and then, and the progress bar.

- bf16 autocast and ``torch.compile`` are used on CUDA only: on the CPU
  autocast would slow the small convolutions down and compilation costs more
  than a short run saves, so both are off there whatever the config asks.
- :class:`Batcher` walks through random permutations of the data set, one
  epoch after another (the last incomplete batch of an epoch is dropped); its
  state is the current permutation and the position in it.
- :class:`LossHistory` keeps each step's losses as device tensors and copies
  them to the host every ``flush`` (one sync instead of one per step); a
  non-finite value raises :class:`gancourse.errors.TrainingDiverged`. Its names
  are the NumPy trainer's (``d_loss``, ``g_loss``); the old ``loss_d``-style
  names still read, with a DeprecationWarning (see ``RENAMED_KEYS``).
- :func:`eval_mode` switches modules to eval mode for a block and restores
  each one's mode afterwards, even when the block raises.
- :class:`RunOptions` and :class:`CudaRunOptions` hold the config fields every trainer shares
  (seed, logging and checkpoint intervals; mixed precision and compilation), and
  :func:`seeded` runs a block (the initial weights) on a seeded, forked global generator.
- Training images are checked: :func:`check_image_shape` refuses a tensor of another
  shape, :func:`check_image_range` refuses values outside
  ``[-1, 1]`` (the generator's tanh range), :func:`check_finite_images` refuses
  NaN/inf before a step uses them, and :func:`data_fingerprint` identifies a
  data set cheaply so that a checkpoint is not resumed on other images.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from gancourse.errors import TrainingDiverged, check_positive, check_positive_int
from gancourse.options import option

__all__ = [
    "RunOptions",
    "CudaRunOptions",
    "check_run_config",
    "seeded",
    "update_ema",
    "use_autocast",
    "use_compile",
    "autocast",
    "maybe_compile",
    "Batcher",
    "LossHistory",
    "RENAMED_KEYS",
    "eval_mode",
    "progress_bar",
    "IMAGE_RANGE_TOL",
    "FINGERPRINT_IMAGES",
    "NonFiniteImagesError",
    "check_image_shape",
    "check_image_range",
    "check_finite_images",
    "data_fingerprint",
]

#: slack on the [-1, 1] check, for rounding in resizing and colour conversions
IMAGE_RANGE_TOL = 1e-3
#: how many evenly spaced images :func:`data_fingerprint` hashes
FINGERPRINT_IMAGES = 64


@dataclass(frozen=True)
class RunOptions:
    """The config fields every image trainer has: the seed, and how often a run records and saves itself.

    A trainer's config inherits them (so they come first among its fields); a config may declare one again
    with its own help text, as R3GAN's does for ``compile``. Checked by :func:`check_run_config`.
    """

    seed: int = option(0, "random seed")
    log_every: int = option(20, "record the losses every N steps")
    sample_every: int = option(500, "keep a grid of samples every N steps")
    checkpoint_every: int = option(0, "write the checkpoint every N steps as well as at the end (0 = only at the end)")


@dataclass(frozen=True)
class CudaRunOptions(RunOptions):
    """:class:`RunOptions` and the two switches that act on CUDA only (:func:`use_autocast`, :func:`use_compile`)."""

    amp: bool = option(True, "mixed precision (bfloat16 autocast) on CUDA; ignored on CPU")
    compile: bool = option(False, "torch.compile the networks on CUDA; ignored on CPU")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with the global generators seeded by ``torch.manual_seed(seed)``, then give the global CPU
    generator back its state: what the block draws on the CPU (initial weights, fixed noise) depends on ``seed``
    only, and the caller's random stream goes on as if the block had not run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """``theta_ema <- decay * theta_ema + (1 - decay) * theta`` for every parameter (Karras et al. 2018; Yazici et al.
    2019: a moving average of G's weights draws better samples than G); ``decay = 0`` copies ``net``. Buffers
    (batch-norm running statistics, spectral norm's power-iteration vectors) are copied from ``net`` (BigGAN's code
    averages them too; a copy keeps spectral norm's vectors unit-length, and the statistics follow G's recent
    batches)."""
    for p_ema, p in zip(ema.parameters(), net.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b)


def use_autocast(device: torch.device, requested: bool) -> bool:
    """bf16 autocast only when asked for and the device is CUDA."""
    return bool(requested) and torch.device(device).type == "cuda"


def use_compile(device: torch.device, requested: bool) -> bool:
    """``torch.compile`` only when asked for and the device is CUDA."""
    return bool(requested) and torch.device(device).type == "cuda"


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast(cuda, bfloat16)`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def maybe_compile(module: torch.nn.Module, enabled: bool):
    """``torch.compile(module)`` when ``enabled``; the original module keeps the parameters and state dict."""
    return torch.compile(module) if enabled else module


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Put ``modules`` (and all their sub-modules) in eval mode for the block, then restore each one's mode.

    Batch norm then uses its running statistics and dropout is off; afterwards every sub-module is back in
    the mode it had, even when the block raises. Gradients are not switched off (use ``torch.no_grad``).
    """
    saved = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.training = training


class Batcher:
    """Random minibatch indices, epoch by epoch, from a (device) ``torch.Generator``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        if batch_size > n:
            raise ValueError(f"batch_size ({batch_size}) must not exceed the number of training images ({n})")
        self.n, self.batch_size, self.generator, self.device = n, batch_size, generator, torch.device(device)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> torch.Tensor:
        """Indices (batch_size,) of the next minibatch."""
        if self.perm is None or self.pos + self.batch_size > self.n:
            self.perm = torch.randperm(self.n, generator=self.generator, device=self.device)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {"perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.pos = int(state["pos"])


#: history names the torch trainers used before they took the NumPy trainer's: old -> new
RENAMED_KEYS = {"loss_d": "d_loss", "loss_g": "g_loss", "loss_d_a": "d_loss_a", "loss_d_b": "d_loss_b"}


class _Values(dict):
    """``LossHistory.values``: a dict of lists that still answers the names in ``RENAMED_KEYS``."""

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or dict.__contains__(self, RENAMED_KEYS.get(key, key))

    def __missing__(self, key):
        new = RENAMED_KEYS.get(key)
        if new is None or not dict.__contains__(self, new):
            raise KeyError(key)
        warnings.warn(f"the history key {key!r} is now {new!r}, as in the NumPy trainer; read history[{new!r}]",
                      DeprecationWarning, stacklevel=2)
        return self[new]


class LossHistory:
    """Per-step scalars under fixed names; ``values[name]`` is a list of floats, ``values["step"]`` the steps."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        self.values: dict[str, list[float]] = _Values({"step": [], **{k: [] for k in self.names}})
        self._pending: list[tuple[int, torch.Tensor]] = []

    def append(self, step: int, *scalars: torch.Tensor | float) -> None:
        """Record the scalars of ``step`` (in the order of ``names``) without syncing the device.

        The scalars go to the accelerator that any of them is on: plain numbers (a schedule's resolution or learning
        rate) and CPU tensors (a switched-off penalty's ``torch.zeros(())``) join a CUDA run's losses freely."""
        if len(scalars) != len(self.names):
            raise ValueError(f"append takes one scalar per name {self.names}, got {len(scalars)}")
        devices = [s.device for s in scalars if isinstance(s, torch.Tensor)]
        device = next((d for d in devices if d.type != "cpu"), devices[0] if devices else None)
        values = [torch.as_tensor(s).detach().float().reshape(()).to(device) for s in scalars]
        self._pending.append((step, torch.stack(values)))

    def flush(self) -> dict[str, float]:
        """Copy the pending steps to the host; return the latest values; raise on NaN/inf."""
        if not self._pending:
            return self.last()
        steps = [s for s, _ in self._pending]
        block = torch.stack([v for _, v in self._pending]).cpu()  # (n_pending, n_names)
        self._pending.clear()
        for step, row in zip(steps, block.tolist()):
            if not all(math.isfinite(v) for v in row):
                raise TrainingDiverged(step, self.last())
            self.values["step"].append(step)
            for k, v in zip(self.names, row):
                self.values[k].append(v)
        return self.last()

    def last(self) -> dict[str, float]:
        return {k: self.values[k][-1] for k in self.names if self.values[k]}

    def state_dict(self) -> dict:
        self.flush()
        return {k: list(v) for k, v in self.values.items()}

    def load_state_dict(self, state: dict) -> None:
        state = {RENAMED_KEYS.get(k, k): v for k, v in state.items()}  # a checkpoint written before the renaming
        missing = set(self.values) - set(state)
        if missing:
            raise ValueError(f"history in checkpoint lacks {sorted(missing)}")
        self._pending.clear()
        self.values = _Values({k: list(state[k]) for k in self.values})


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Iterator:
    """A tqdm bar that refreshes at most once a second (short logs when output is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False, mininterval=1.0)


_RUN_INTS = ("steps", "batch_size", "channels", "image_size", "g_width", "d_width", "log_every", "sample_every",
             "n_samples")


def check_run_config(config, extra_ints: tuple[str, ...] = (), rates: tuple[str, ...] = ("lr",)) -> None:
    """Checks shared by the training configs, raising a ValueError that names the field.

    Positive integer sizes and counts, positive learning rates, Adam betas in [0, 1), and
    ``checkpoint_every >= 0`` (0: only at the end).
    """
    for name in _RUN_INTS + tuple(extra_ints):
        check_positive_int(name, getattr(config, name))
    for name in rates:
        check_positive(name, getattr(config, name))
    for name in ("beta1", "beta2"):
        if check_positive(name, getattr(config, name), allow_zero=True) >= 1:
            raise ValueError(f"{name} must lie in [0, 1), got {getattr(config, name)!r}")
    check_positive_int("checkpoint_every", config.checkpoint_every, minimum=0)


# ------------------------------------------------------------------ training images


class NonFiniteImagesError(TrainingDiverged, ValueError):
    """Training images hold NaN or inf, so training on them could only diverge.

    Raised before the first step that would use them; it is a ``ValueError`` (bad input) and, as the
    losses would turn NaN at that step, a :class:`gancourse.errors.TrainingDiverged` naming the step.
    """

    def __init__(self, name: str, count: int, first_image: int, step: int):
        self.step = int(step)
        self.last_finite = {}
        self.name, self.count, self.first_image = name, int(count), int(first_image)
        Exception.__init__(
            self,
            f"the training images {name!r} hold {count} NaN/inf value(s) (the first in image {first_image}), so "
            f"the losses would be NaN from step {step} on. Repair or drop those images before training, e.g. "
            f"keep x[torch.isfinite(x).flatten(1).all(1)].",
        )


def check_image_shape(name: str, x: object, shape: Sequence, n: str = "N") -> None:
    """Refuse ``x`` unless it is a tensor of shape ``(n, *shape)``, any size along the first axis; an entry of
    ``shape`` may be a tuple of the sizes allowed there (``(1, 3)``: grey or colour)."""
    allowed = [tuple(dict.fromkeys(d)) if isinstance(d, tuple) else (d,) for d in shape]
    want = f"({', '.join([n, *(' or '.join(map(str, a)) for a in allowed)])})"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape {want}, got a {type(x).__name__}")
    if x.ndim != 1 + len(allowed) or any(int(s) not in a for s, a in zip(x.shape[1:], allowed)):
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def check_image_range(name: str, x: torch.Tensor, tol: float = IMAGE_RANGE_TOL) -> None:
    """Refuse images with finite values outside ``[-1, 1]`` (within ``tol``); NaN/inf are left to
    :func:`check_finite_images`. The message says how to scale 8-bit and [0, 1] images."""
    if x.numel() == 0:
        return
    clean = torch.nan_to_num(x.detach().float(), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(v) for v in torch.aminmax(clean))
    if lo < -1 - tol or hi > 1 + tol:
        outside = int(((clean < -1 - tol) | (clean > 1 + tol)).sum())
        raise ValueError(
            f"{name} must lie in [-1, 1] (the range of the generator's tanh output), but its values span "
            f"[{lo:.4g}, {hi:.4g}] ({outside} value(s) outside). Scale 8-bit images (0..255) with "
            f"x / 127.5 - 1, and images in [0, 1] with 2 * x - 1."
        )


def check_finite_images(name: str, x: torch.Tensor, step: int) -> None:
    """Raise :class:`NonFiniteImagesError` if ``x`` (N, ...) holds NaN or inf; ``step`` is the next step."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        first = int(bad.flatten(1).any(1).nonzero()[0, 0])
        raise NonFiniteImagesError(name, int(bad.sum()), first, step)


def data_fingerprint(x: torch.Tensor, n: int = FINGERPRINT_IMAGES) -> dict:
    """A cheap identity of a data set (N, ...): its shape and the SHA-256 of ``n`` evenly spaced images
    (float32, in order). Other images, another order or another size give another fingerprint (images
    outside the sample may differ unnoticed). Plain values only, so it can go into a checkpoint."""
    count = int(x.shape[0])
    idx = torch.linspace(0, max(count - 1, 0), min(count, n)).round().long()
    sample = x[idx.to(x.device)].detach().to("cpu", torch.float32).contiguous()  # (min(N, n), ...)
    return {"shape": [int(d) for d in x.shape], "sha256": hashlib.sha256(sample.numpy().tobytes()).hexdigest()}
