"""The numbers an image-track notebook measured, as one JSON file.

``scripts/gpu_full_runs.sh`` sets ``GANCOURSE_RESULTS_DIR``; each image-track notebook ends with a
call to :func:`save_results`, which then writes ``<notebook>_metrics.json`` there. Without the
variable nothing is written, so a run in the lecture hall leaves no files behind.

The record (:func:`results_record`) holds, in this order: ``notebook``, ``smoke``, ``device`` (as
text), ``config`` (the trainer's config as a dict), ``train_seconds``, ``report`` (the metric report),
``final_losses`` (the trainer's last logged losses), then whatever else the notebook measured.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancourse.deep.loop import TrainingLoop
from gancourse.io import atomic_write, json_dumps

__all__ = ["RESULTS_DIR_ENV", "results_record", "results_path", "save_results"]

#: the environment variable that names the folder for the metrics JSON files
RESULTS_DIR_ENV = "GANCOURSE_RESULTS_DIR"

_BASE_KEYS = ("notebook", "smoke", "device", "config", "train_seconds", "report", "final_losses")


def _jsonable(value: Any, where: str) -> Any:
    """``value`` with NumPy scalars and arrays, tensors, tuples, devices and paths made plain JSON types."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, (torch.device, Path)):
        return str(value)
    raise TypeError(f"{where} is a {type(value).__name__}, which has no JSON form; give numbers, text, "
                    f"lists or dicts of them, arrays or tensors")


def _check_name(notebook: str) -> str:
    if not isinstance(notebook, str) or not notebook or notebook in (".", "..") or any(
            sep in notebook for sep in ("/", "\\", os.sep)):
        raise ValueError(f"notebook must be a plain name such as '07_dcgan' (no folders), got {notebook!r}")
    return notebook


def results_record(
    notebook: str,
    trainer: TrainingLoop,
    *,
    smoke: bool,
    train_seconds: float,
    report: Mapping[str, Any],
    **measured: Any,
) -> dict[str, Any]:
    """The JSON-ready record of one notebook run (see the module docstring for its keys).

    ``trainer`` gives ``config``, ``device`` and ``final_losses`` (``trainer.history.last()``);
    ``measured`` adds the notebook's own numbers under their names, which may not repeat the base keys.
    """
    _check_name(notebook)
    if not isinstance(trainer, TrainingLoop):
        raise TypeError(f"trainer must be a GANTrainer or CycleGANTrainer, got {type(trainer).__name__}")
    clash = sorted(set(measured) & set(_BASE_KEYS))
    if clash:
        raise ValueError(f"measured numbers may not be named {clash}: the record sets those itself")
    record = {
        "notebook": notebook,
        "smoke": bool(smoke),
        "device": str(trainer.device),
        "config": dataclasses.asdict(trainer.config),
        "train_seconds": train_seconds,
        "report": report,
        "final_losses": trainer.history.last(),
        **measured,
    }
    return _jsonable(record, "results")


def results_path(notebook: str, results_dir: str | os.PathLike | None = None) -> Path | None:
    """Where :func:`save_results` writes: ``<results_dir>/<notebook>_metrics.json``.

    ``results_dir`` defaults to the ``GANCOURSE_RESULTS_DIR`` environment variable; None when neither is set
    (an empty variable counts as unset).
    """
    _check_name(notebook)
    folder = os.environ.get(RESULTS_DIR_ENV, "") if results_dir is None else os.fspath(results_dir)
    return Path(folder) / f"{notebook}_metrics.json" if folder else None


def save_results(
    notebook: str,
    trainer: TrainingLoop,
    *,
    smoke: bool,
    train_seconds: float,
    report: Mapping[str, Any],
    results_dir: str | os.PathLike | None = None,
    **measured: Any,
) -> Path | None:
    """Write :func:`results_record` to :func:`results_path` (atomically) and return the path.

    Returns None and writes nothing when no folder is given and ``GANCOURSE_RESULTS_DIR`` is unset; the
    record is built (and so checked) either way. The folder is created if needed. The file is strict JSON
    (:func:`gancourse.io.json_dumps`: a non-finite number is written as null).
    """
    record = results_record(notebook, trainer, smoke=smoke, train_seconds=train_seconds, report=report, **measured)
    path = results_path(notebook, results_dir)
    if path is None:
        return None
    text = json_dumps(record, indent=2)
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
