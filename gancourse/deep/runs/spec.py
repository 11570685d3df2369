"""One model of ``gancourse train``: what the command needs to know to train, resume and evaluate it.

A :class:`ModelSpec` ties together the model's config class (its fields become the command's flags), its
presets (``smoke``, ``lecture``, ``full``), the data and trainer (a :class:`gancourse.deep.loop.TrainingLoop`),
and an evaluation that returns the metric report (floor / trained / ceiling, as in the notebooks), the
arrays of ``samples.npz`` and the grid of ``samples.png``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gancourse.deep.loop import RESUMABLE_FIELDS, TrainingLoop
from gancourse.tiers import check_tier

__all__ = ["Grid", "Evaluation", "ModelSpec"]


@dataclass(frozen=True)
class Grid:
    """Images (N, C, H, W) in [-1, 1] to tile into one PNG, ``nrow`` to a row."""

    images: torch.Tensor
    nrow: int = 8


@dataclass(frozen=True)
class Evaluation:
    """What a trained model is measured by and leaves behind.

    report : ``{metric: {floor, trained, ceiling, better}}`` (:func:`gancourse.deep.metrics.add_metric`)
    arrays : the contents of ``samples.npz``; ``images`` is float32 (N, C, 32, 32) in [-1, 1]
    grid : the picture written to ``samples.png``
    summary : the model's headline numbers, written at the top level of ``metrics.json`` as well (for example
        StackedMNIST's ``modes`` and ``reverse_kl``)
    """

    report: dict
    arrays: dict[str, np.ndarray]
    grid: Grid
    summary: dict[str, float] = field(default_factory=dict)


def _nothing_scheduled(config: Any) -> str | None:
    return None


@dataclass(frozen=True)
class ModelSpec:
    """Everything ``gancourse train`` needs to know about one model.

    config_class : the frozen config dataclass; each of its fields is a flag, except those in ``fixed``
    preset : ``preset(tier=..., **fields) -> config`` for the tiers smoke, lecture and full
    kind : the trainer's ``KIND``, as its checkpoints record it
    build : ``build(config, device) -> trainer``, with the model's training data loaded
    evaluate : ``evaluate(trainer, preset) -> Evaluation`` of a trained trainer
    snapshot_grid : ``snapshot_grid(trainer, snapshot) -> Grid`` of one of ``trainer.snapshots``
    fixed : config fields that the model and its data set (no flag; a checkpoint must hold these values)
    ignored : config fields that this model does not use (no flag)
    scheduled : why ``config.steps`` may not change on resume (something is planned over it), or None
    """

    config_class: type
    preset: Callable[..., Any]
    kind: str
    build: Callable[[Any, torch.device], TrainingLoop]
    evaluate: Callable[[TrainingLoop, str], Evaluation]
    snapshot_grid: Callable[[TrainingLoop, tuple], Grid]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    scheduled: Callable[[Any], str | None] = _nothing_scheduled

    @property
    def no_flag(self) -> tuple[str, ...]:
        """The config fields that get no flag: ``fixed`` and ``ignored``."""
        return (*self.fixed, *self.ignored)

    def config(self, preset: str, **fields: Any) -> Any:
        """The preset's config with ``fields`` replaced (a ValueError names a field that may not be set)."""
        check_tier(preset)
        refused = sorted(set(fields) & set(self.no_flag))
        if refused:
            raise ValueError(f"{', '.join(refused)} cannot be set for this model (fixed by the model and its data, "
                             f"or not used by it: {', '.join(self.no_flag)})")
        return self.preset(tier=preset, **fields)

    def preset_values(self) -> dict[str, dict[str, Any]]:
        """Each preset's value of every config field: ``{field: {tier: value}}``."""
        configs = {tier: dataclasses.asdict(self.preset(tier=tier)) for tier in ("smoke", "lecture", "full")}
        return {f.name: {tier: c[f.name] for tier, c in configs.items()} for f in dataclasses.fields(self.config_class)}

    def owns(self, state: dict) -> bool:
        """Whether the checkpoint dict ``state`` was written by this model's trainer."""
        config = state.get("config")
        return (state.get("kind") == self.kind and isinstance(config, dict)
                and all(config.get(k) == v for k, v in self.fixed.items()))

    def resumed_config(self, saved: dict, fields: Mapping[str, Any]) -> Any:
        """The config saved in a checkpoint, with the given ``fields`` that a resume may change
        (``RESUMABLE_FIELDS``: the planned steps and how often to log, sample and save) replaced."""
        names = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(saved) - names)
        if unknown:
            raise ValueError(f"the checkpoint's config has fields that {self.config_class.__name__} does not "
                             f"have ({', '.join(unknown)}); it was written by another version of gancourse")
        config = self.config_class(**saved)
        return dataclasses.replace(config, **{k: v for k, v in fields.items() if k in RESUMABLE_FIELDS})
