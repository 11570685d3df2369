"""Atomic checkpoints of nested dicts of arrays and plain values, stored as ``.npz``.

A nested dict is flattened to ``"a/b/c"`` keys; arrays are stored as they are
and everything else (numbers, strings, lists, dicts of plain values) as one
JSON string, so loading never needs pickle. Writing goes to a temporary file
in the same folder that is then renamed over the target, so a crash never
leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint"]

_META = "__meta__"


def _flatten(tree: dict, prefix: str, arrays: dict, meta: dict) -> None:
    for k, v in tree.items():
        if "/" in str(k):
            raise ValueError(f"checkpoint keys may not contain '/': {k!r}")
        key = f"{prefix}{k}"
        if isinstance(v, np.ndarray):
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


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, sync it, then rename it onto ``path``.

    A reader sees either the old file or the complete new one, never a half-written file, even
    if the process dies mid-write; on an error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes private files; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, tree: dict) -> Path:
    """Write ``tree`` to ``path`` (``.npz``) atomically and return the path."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    _flatten(tree, "", arrays, meta)
    arrays[_META] = np.array(json.dumps(meta, default=_plain))
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` back into a nested dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    tree: dict = {}
    with np.load(path, allow_pickle=False) as data:
        if _META not in data.files:
            raise ValueError(f"{path} is not a gancourse checkpoint (no metadata entry)")
        for key, value in json.loads(str(data[_META])).items():
            _insert(tree, key, value)
        for key in data.files:
            if key != _META:
                _insert(tree, key, data[key])
    return tree
