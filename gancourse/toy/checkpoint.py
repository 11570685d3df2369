"""Atomic checkpoints of nested dicts of arrays and plain values, stored as ``.npz``.

A nested dict is flattened to ``"a/b/c"`` keys; arrays are stored as they are
and everything else (numbers, strings, lists, dicts of plain values) as one
JSON string, so loading never needs pickle. Writing goes through
:func:`gancourse.io.atomic_write` (a temporary file in the same folder, then
renamed over the target), so a crash never leaves a half-written checkpoint
behind, and only regular files are written (never a folder, device or FIFO).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gancourse.errors import CheckpointError
from gancourse.io import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]

_META = "__meta__"


def _flatten(tree: dict, prefix: str, arrays: dict, meta: dict) -> None:
    for k, v in tree.items():
        if "/" in str(k):
            raise ValueError(f"checkpoint keys may not contain '/': {k!r}")
        key = f"{prefix}{k}"
        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:  # np.load(allow_pickle=False) would refuse it: refuse it now, not at resume
                raise TypeError(f"cannot store an object array at {key!r} in a checkpoint (dtype {v.dtype}); "
                                f"convert it to numbers or strings, or to a list of plain values")
            arrays[key] = v
        elif isinstance(v, dict) and v:
            _flatten(v, key + "/", arrays, meta)
        else:
            meta[key] = v


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot store a {type(v).__name__} in a checkpoint")


def _insert(tree: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split("/")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def save_checkpoint(path: str | os.PathLike, tree: dict) -> Path:
    """Write ``tree`` to ``path`` (``.npz``) atomically and return the path."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    _flatten(tree, "", arrays, meta)
    arrays[_META] = np.array(json.dumps(meta, default=_plain))
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` back into a nested dict.

    Raises ``FileNotFoundError`` when there is no file, and :class:`~gancourse.errors.CheckpointError`
    (a ``ValueError``) for anything else that is not a readable gancourse checkpoint: an empty, truncated
    or altered file, a ``.npy`` array, a text file, an ``.npz`` archive without the metadata entry.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with path.open("rb") as fh:
        magic = fh.read(6)
    if not magic:
        raise CheckpointError(f"{path} is not a gancourse checkpoint: the file is empty")
    if magic == b"\x93NUMPY":
        raise CheckpointError(f"{path} is not a gancourse checkpoint: it holds one NumPy array (.npy), "
                              f"not an .npz archive")
    if not magic.startswith(b"PK"):
        raise CheckpointError(f"{path} is not a gancourse checkpoint: it is not an .npz (zip) archive")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise TypeError(f"np.load read a {type(data).__name__}")
    except Exception as exc:  # noqa: BLE001 - BadZipFile (truncated), EOFError, OSError, ...
        raise CheckpointError(
            f"{path} is not a gancourse checkpoint, or it is damaged: the .npz archive cannot be read "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    tree: dict = {}
    with data:
        if _META not in data.files:
            raise CheckpointError(f"{path} is not a gancourse checkpoint (no metadata entry)")
        try:
            meta = json.loads(str(data[_META]))
            if not isinstance(meta, dict):
                raise TypeError(f"the metadata entry is a {type(meta).__name__}, not a dict")
            for key, value in meta.items():
                _insert(tree, key, value)
            for key in data.files:
                if key != _META:
                    _insert(tree, key, data[key])
        except Exception as exc:  # noqa: BLE001 - bad CRC, bad .npy header, bad JSON, clashing keys...
            raise CheckpointError(f"{path} is damaged: {type(exc).__name__}: {_first_line(exc)}") from None
    return tree


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"
