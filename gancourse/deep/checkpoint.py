"""Atomic torch checkpoints and the random-number state needed to resume a run exactly.

:func:`save_checkpoint` writes to a temporary file in the target's folder,
flushes it to disk and renames it over the target with ``os.replace`` (atomic
on POSIX and Windows), so an interrupted save never leaves a half-written
checkpoint. Checkpoints hold only tensors and plain Python values and load
with ``torch.load(weights_only=True)``; :func:`load_checkpoint` turns every way a
file can fail to be one (empty, a git-lfs pointer, a NumPy ``.npz``, cut short,
not a torch file) into one :class:`CheckpointError` that says which.

:func:`rng_state` / :func:`set_rng_state` capture and restore the global
generators of Python's ``random``, NumPy and torch (CPU and, where present, CUDA).
"""
from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancourse import errors
from gancourse.io import atomic_write

__all__ = ["CheckpointError", "is_git_lfs_pointer", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]

_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


class CheckpointError(errors.CheckpointError):
    """The file is not a gancourse image checkpoint, or it is damaged; the message says which and why.

    A kind of ``gancourse.errors.CheckpointError``, so one ``except`` catches a bad toy or image checkpoint.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path} is not a gancourse image checkpoint, or it is damaged: {reason}")


def is_git_lfs_pointer(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a git-lfs pointer (what a clone without git-lfs has instead of a binary file)."""
    with open(path, "rb") as fh:
        return fh.read(len(_LFS_POINTER)) == _LFS_POINTER


def _sniff(path: Path) -> str | None:
    """Why ``path`` cannot be a torch checkpoint, judged from its first bytes; None if it may be one."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes; a save or copy that was interrupted?)"
    if is_git_lfs_pointer(path):
        return "it is a git-lfs pointer file, not the checkpoint itself; fetch the real file with `git lfs pull`"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if names and all(n.endswith(".npy") for n in names):  # a torch archive holds <name>/data.pkl
            return ("it is a NumPy .npz archive (a toy-GAN checkpoint? those load with "
                    "gancourse.toy.ToyGAN.load or `gancourse toy --resume`), not a torch checkpoint")
    return None


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``); return the path."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | os.PathLike, map_location: torch.device | str | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain values only).

    Raises ``FileNotFoundError`` if there is no file, and :class:`CheckpointError` (a ``ValueError``)
    if the path is a folder or the file is not such a checkpoint (empty, a git-lfs pointer, a NumPy
    ``.npz``, cut short, holding other objects, or not a dict).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(path, "it is a folder; give the path of the checkpoint file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    reason = _sniff(path)
    if reason is not None:
        raise CheckpointError(path, reason)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises an unsafe load, which would run code from the file: not repeated here
        raise CheckpointError(
            path, "torch cannot read it as tensors and plain values (it is not a torch file, or it holds other "
                  "objects, which gancourse checkpoints never do)") from None
    except (EOFError, RuntimeError, OSError, KeyError, ValueError, IndexError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no details"
        raise CheckpointError(path, f"torch cannot read it, the file is cut short or corrupted "
                                    f"({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"it holds a {type(state).__name__}, not the dict a gancourse checkpoint holds")
    return state


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global generators, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
