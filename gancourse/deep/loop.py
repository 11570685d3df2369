"""What the image trainers share: the training loop and checkpoint I/O.

A subclass provides ``config`` (with ``steps``, ``log_every``, ``sample_every`` and
``checkpoint_every``), ``step``, ``device``, ``history`` (a :class:`gancourse.deep.runtime.LossHistory`),
``snapshots`` (a list of tuples ``(step, tensors...)``), ``train_step()``, ``snapshot()``, ``networks()``
and ``training_images()``, plus the class attributes ``KIND`` (written into checkpoints), ``STATE`` (the
attributes a checkpoint holds, see :meth:`TrainingLoop.state_dict`) and ``POSTFIX`` (the losses shown on
the progress bar; None: all of them).

A trainer's ``__init__`` starts with :meth:`TrainingLoop._set_up` (the config's type, ``config``, ``device``,
``amp``, ``compiled``) and takes its images through :meth:`TrainingLoop._device_images` (shape, float32 on the
device, values in [-1, 1]).

Checks shared by the trainers: :meth:`TrainingLoop.train` refuses NaN/inf training images before
the first step that would use them; :meth:`TrainingLoop.load` refuses a file that is not a
checkpoint of this trainer (:class:`gancourse.deep.checkpoint.CheckpointError` for a missing or
damaged part), one made with another config, and one made on *a different dataset*: checkpoints
store :meth:`TrainingLoop.data_fingerprint` under ``"data_fingerprint"`` and resuming on other
images is refused (the minibatch order and the history would no longer mean anything; to reuse the
weights on new data, load ``G``/``D`` state dicts into a fresh trainer). Checkpoints from before the
fingerprint load with a warning.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import torch

from gancourse.deep.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gancourse.deep.runtime import (
    check_finite_images,
    check_image_range,
    check_image_shape,
    data_fingerprint,
    progress_bar,
    use_autocast,
    use_compile,
)
from gancourse.errors import check_positive_int

__all__ = ["TrainingLoop", "RESUMABLE_FIELDS", "FINGERPRINT_KEY"]

#: fields that may differ between a checkpoint and the config that resumes it (they do not change the run)
RESUMABLE_FIELDS = ("steps", "log_every", "sample_every", "checkpoint_every")
#: where checkpoints keep the dataset fingerprint (absent in checkpoints written before it existed)
FINGERPRINT_KEY = "data_fingerprint"


def _saved(part: Any) -> Any:
    """The checkpoint form of one stateful part: a tensor (copied to the CPU), a ``torch.Generator``'s state,
    a dict of parts, or anything with ``state_dict()`` (modules, optimizers, batchers, histories, pools)."""
    if isinstance(part, torch.Tensor):
        return part.detach().cpu().clone()
    if isinstance(part, torch.Generator):
        return part.get_state()
    if isinstance(part, dict):
        return {k: _saved(v) for k, v in part.items()}
    return part.state_dict()


def _restored(part: Any, saved: Any, device: torch.device) -> Any:
    """Put ``saved`` (from :func:`_saved`) back into ``part`` in place; a tensor is returned as a new value."""
    if isinstance(part, torch.Tensor):
        if not isinstance(saved, torch.Tensor) or saved.shape != part.shape:
            raise ValueError(f"expected a tensor of shape {tuple(part.shape)}, got "
                             f"{tuple(saved.shape) if isinstance(saved, torch.Tensor) else type(saved).__name__}")
        return saved.to(device, part.dtype)
    if isinstance(part, torch.Generator):
        part.set_state(saved.cpu())
    elif isinstance(part, dict):
        if set(saved) != set(part):
            raise KeyError(f"expected the parts {sorted(part)}, got {sorted(saved)}")
        for k in part:
            part[k] = _restored(part[k], saved[k], device)
    else:
        part.load_state_dict(saved)
    return part


def _on_cpu(value: Any) -> Any:
    """``value`` with every tensor in it (through tuples, lists and dicts) moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_on_cpu(v) for v in value]
    return value


class TrainingLoop:
    """Base class of :class:`GANTrainer` and :class:`CycleGANTrainer`."""

    KIND: str = ""
    #: the attributes a checkpoint holds, each under its own name (see :meth:`state_dict`)
    STATE: tuple[str, ...] = ()
    POSTFIX: tuple[str, ...] | None = None

    # ------------------------------------------------------------------ set-up shared by the trainers
    def _set_up(self, config: Any, config_class: type, device: torch.device | str) -> None:
        """Refuse a ``config`` that is not a ``config_class`` (TypeError); set ``config``, ``device``, and ``amp``
        and ``compiled``: whether bf16 autocast and ``torch.compile`` are in use (on CUDA, when the config asks
        for them; False for a config without that field)."""
        if not isinstance(config, config_class):
            name = config_class.__name__
            article = "an" if name[0] in "AEIOU" or (name[0] in "FHLMNRSX" and not name[1:2].islower()) else "a"
            raise TypeError(f"config must be {article} {name}, got {type(config).__name__}")
        self.config = config
        self.device = torch.device(device)
        self.amp = use_autocast(self.device, getattr(config, "amp", False))
        self.compiled = use_compile(self.device, getattr(config, "compile", False))

    def _device_images(self, name: str, x: torch.Tensor, shape: tuple | None = None) -> torch.Tensor:
        """``x`` as float32 on ``device``, checked: of shape ``(N, *shape)`` when ``shape`` is given
        (:func:`~gancourse.deep.runtime.check_image_shape`), with values in [-1, 1]
        (:func:`~gancourse.deep.runtime.check_image_range`); ``name`` is how errors call it."""
        if shape is not None:
            check_image_shape(name, x, shape)
        x = x.to(self.device, torch.float32)
        check_image_range(name, x)
        return x

    def networks(self) -> list[torch.nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_images(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        """The data sets the trainer samples from, by name (as named in error messages)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoint contents
    def state_dict(self) -> dict:
        """Everything a run needs to go on bit for bit: ``kind``, ``config``, ``step``, each attribute named in
        ``STATE`` (networks, optimizers, ``torch.Generator`` s, batchers, the history, fixed noise: tensors are
        copied to the CPU, dicts of parts are saved part by part), the ``snapshots``, the global generators'
        ``rng`` state and the training data's fingerprint."""
        return {
            "kind": self.KIND, "config": dataclasses.asdict(self.config), "step": self.step,
            **{name: _saved(getattr(self, name)) for name in self.STATE},
            "snapshots": [list(s) for s in self.snapshots], "rng": rng_state(),
            FINGERPRINT_KEY: self.data_fingerprint(),
        }

    def load_state(self, state: dict) -> None:
        """Restore a checkpoint dict already checked by :meth:`_read_checkpoint` (use :meth:`load` with a path)."""
        self.step = int(state["step"])
        for name in self.STATE:
            try:
                setattr(self, name, _restored(getattr(self, name), state[name], self.device))
            except (KeyError, TypeError, AttributeError, IndexError, RuntimeError, ValueError) as exc:
                raise ValueError(f"its {name!r} does not fit this trainer ({type(exc).__name__}: {exc})") from exc
        self.snapshots = [(int(s[0]), *_on_cpu(list(s[1:]))) for s in state["snapshots"]]
        set_rng_state(state["rng"])

    def data_fingerprint(self) -> dict[str, dict]:
        """:func:`gancourse.deep.runtime.data_fingerprint` of each training data set, by name."""
        return {name: data_fingerprint(x) for name, x in self.training_images().items()}

    def progress_label(self) -> str:
        return f"{self.KIND} step"

    def train(self, steps: int | None = None, checkpoint: str | Path | None = None, progress: bool = True,
              should_stop: Callable[[], bool] | None = None) -> dict:
        """Train until ``self.step == steps`` (default ``config.steps``); return ``history.values``.

        Snapshots are taken every ``sample_every`` steps and at step ``config.steps``
        (so a run split by a resume records the same ones); with ``checkpoint`` a
        checkpoint is written there every ``checkpoint_every`` steps (if > 0) and at the end.
        ``should_stop`` is called after each whole step (its snapshot and checkpoint taken); when it
        returns True training ends there, as if ``steps`` had been reached (Ctrl-C: a
        :class:`gancourse.interrupt.DeferSigint` is such a callable).
        """
        c = self.config
        target = c.steps if steps is None else check_positive_int("steps", steps, minimum=0)  # never truncated
        if target < self.step:
            raise ValueError(f"steps ({target}) is below the current step {self.step}; nothing to train")
        if target > self.step:
            for name, x in self.training_images().items():
                check_finite_images(name, x, self.step + 1)
        for net in self.networks():
            net.train()
        bar = progress_bar(target, self.step, self.progress_label(), progress)
        try:
            while self.step < target:
                self.train_step()
                bar.update(1)
                if self.step % c.log_every == 0 or self.step == target:
                    last = self.history.flush()
                    shown = last if self.POSTFIX is None else {k: last[k] for k in self.POSTFIX}
                    bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
                if self.step % c.sample_every == 0 or self.step == c.steps:
                    self.snapshot()
                if checkpoint is not None and c.checkpoint_every and self.step % c.checkpoint_every == 0:
                    self.save(checkpoint)
                if should_stop is not None and should_stop():
                    break
        finally:
            bar.close()
        self.history.flush()
        if checkpoint is not None:
            self.save(checkpoint)
        return self.history.values

    def save(self, path: str | Path) -> Path:
        """Write the whole training state to ``path`` atomically."""
        return save_checkpoint(path, self.state_dict())

    def load(self, path: str | Path) -> Self:
        """Restore a state written by :meth:`save`; the configs must agree except on ``steps`` and logging,
        and the training images must be the ones the run was started on."""
        state = self._read_checkpoint(path)
        try:
            self.load_state(state)
        except (KeyError, TypeError, AttributeError, IndexError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                path, f"a part of it could not be restored ({type(exc).__name__}: {exc}); this trainer is now "
                      f"partly restored, so make a new one"
            ) from exc
        return self

    def _read_checkpoint(self, path: str | Path) -> dict:
        """A checkpoint of this kind of trainer whose config agrees with ours except on ``RESUMABLE_FIELDS``,
        holding every part ours holds, made on the same training images."""
        state = load_checkpoint(path)  # on the CPU; load_state_dict copies to the device
        if state.get("kind") != self.KIND:
            raise ValueError(f"{path} is not a {type(self).__name__} checkpoint (kind {state.get('kind')!r})")
        required = set(self.state_dict()) - {FINGERPRINT_KEY}
        missing = sorted(required - set(state))
        if missing:
            raise CheckpointError(path, f"it lacks {', '.join(map(repr, missing))} (a {self.KIND} checkpoint "
                                        f"holds {', '.join(map(repr, sorted(required)))})")
        if not isinstance(state["config"], dict):
            raise CheckpointError(path, f"its 'config' is a {type(state['config']).__name__}, not a dict")
        ours = dataclasses.asdict(self.config)
        diff = sorted(k for k in ours if k not in RESUMABLE_FIELDS and state["config"].get(k) != ours[k])
        if diff:
            raise ValueError(f"checkpoint {path} was made with a different config: fields {diff} differ")
        self._check_same_data(path, state.get(FINGERPRINT_KEY))
        return state

    def _check_same_data(self, path: str | Path, saved: object) -> None:
        """Refuse a checkpoint made on other images; warn if it predates the fingerprint."""
        if saved is None:
            warnings.warn(
                f"checkpoint {path} has no dataset fingerprint (it was written by an older gancourse), so it "
                f"cannot be checked that it is resumed on the images it was trained on; make sure it is",
                UserWarning, stacklevel=4,
            )
            return
        if not isinstance(saved, dict):
            raise CheckpointError(path, f"its {FINGERPRINT_KEY!r} is a {type(saved).__name__}, not a dict")
        ours = self.data_fingerprint()
        parts = []
        for name, now in ours.items():
            then = saved.get(name)
            if then == now:
                continue
            if not isinstance(then, dict) or then.get("shape") != now["shape"]:
                shape = tuple(then["shape"]) if isinstance(then, dict) and "shape" in then else "unknown"
                parts.append(f"{name}: shape {shape} in the checkpoint, {tuple(now['shape'])} now")
            else:
                parts.append(f"{name}: the same shape {tuple(now['shape'])} but other images or another order")
        if parts:
            raise ValueError(
                f"checkpoint {path} was trained on a different dataset ({'; '.join(parts)}). Resume it with the "
                f"images it was started on, or start a new run (a new trainer, without load)."
            )
