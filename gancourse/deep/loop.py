"""What the image trainers share: the training loop and checkpoint I/O.

A subclass provides ``config`` (with ``steps``, ``log_every``, ``sample_every`` and
``checkpoint_every``), ``step``, ``history`` (a :class:`gancourse.deep.runtime.LossHistory`),
``train_step()``, ``snapshot()``, ``state_dict()`` and ``networks()``, plus the class attributes
``KIND`` (written into checkpoints) and ``POSTFIX`` (the losses shown on the progress bar; None:
all of them).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from gancourse.deep.checkpoint import load_checkpoint, save_checkpoint
from gancourse.deep.runtime import progress_bar

__all__ = ["TrainingLoop", "RESUMABLE_FIELDS"]

#: fields that may differ between a checkpoint and the config that resumes it (they do not change the run)
RESUMABLE_FIELDS = ("steps", "log_every", "sample_every", "checkpoint_every")


class TrainingLoop:
    """Base class of :class:`GANTrainer` and :class:`CycleGANTrainer`."""

    KIND: str = ""
    POSTFIX: tuple[str, ...] | None = None

    def networks(self) -> list[torch.nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def progress_label(self) -> str:
        return f"{self.KIND} step"

    def train(self, steps: int | None = None, checkpoint: str | Path | None = None, progress: bool = True) -> dict:
        """Train until ``self.step == steps`` (default ``config.steps``); return ``history.values``.

        Snapshots are taken every ``sample_every`` steps and at step ``config.steps``
        (so a run split by a resume records the same ones); with ``checkpoint`` a
        checkpoint is written there every ``checkpoint_every`` steps (if > 0) and at the end.
        """
        c = self.config
        target = c.steps if steps is None else int(steps)
        if target < self.step:
            raise ValueError(f"steps ({target}) is below the current step {self.step}; nothing to train")
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
        finally:
            bar.close()
        self.history.flush()
        if checkpoint is not None:
            self.save(checkpoint)
        return self.history.values

    def save(self, path: str | Path) -> Path:
        """Write the whole training state to ``path`` atomically."""
        return save_checkpoint(path, self.state_dict())

    def _read_checkpoint(self, path: str | Path) -> dict:
        """A checkpoint of this kind of trainer whose config agrees with ours except on ``RESUMABLE_FIELDS``."""
        state = load_checkpoint(path)  # on the CPU; load_state_dict copies to the device
        if state.get("kind") != self.KIND:
            raise ValueError(f"{path} is not a {type(self).__name__} checkpoint (kind {state.get('kind')!r})")
        ours = dataclasses.asdict(self.config)
        diff = sorted(k for k in ours if k not in RESUMABLE_FIELDS and state["config"].get(k) != ours[k])
        if diff:
            raise ValueError(f"checkpoint {path} was made with a different config: fields {diff} differ")
        return state
