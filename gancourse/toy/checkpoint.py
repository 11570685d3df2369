"""Atomic checkpoints of nested dicts of arrays and plain values, stored as ``.npz``.

A nested dict is flattened to ``"a/b/c"`` keys; arrays are stored as they are
and everything else (numbers, strings, lists, dicts of plain values) as one
JSON string, so loading never needs pickle. Writing goes to a temporary file
in the same folder that is then renamed over the target, so a crash never
leaves a half-written checkpoint behind.

:func:`atomic_write` writes only regular files: it refuses folders, devices,
FIFOs and sockets (``--checkpoint /dev/null`` must not replace the device),
writes through a symbolic link to the file it points to, and removes the
temporary files that a killed earlier write of the same target left behind.
"""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from gancourse.errors import CheckpointError, OutputPathError

__all__ = ["atomic_write", "check_output_path", "save_checkpoint", "load_checkpoint"]

_META = "__meta__"
_TEMP_SUFFIX = ".tmp"
_TEMP_NAME = "[a-z0-9_]{8}"  # what tempfile.mkstemp puts between our prefix and suffix


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def check_output_path(path: str | os.PathLike, *, what: str = "") -> Path:
    """Check that ``path`` may be written as a regular file and return the file to write (symlinks followed).

    Refused, with an :class:`~gancourse.errors.OutputPathError` (a ``ValueError``) whose message starts with
    ``what`` (e.g. the flag) and ``path``: an existing folder, device, FIFO or socket; a symbolic link that
    loops; a path under something that is not a folder; a folder this process may not write in. Missing
    parent folders are fine (they are created when writing). Nothing is created or written here.
    """
    shown = f"{what} {path}".strip()
    target = Path(os.path.realpath(path))  # a symlink (or a chain of them) names the file it points to
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        mode = None  # a parent is a file: found below
    except OSError as exc:
        raise OutputPathError(f"{shown} cannot be written: {exc.strerror}") from None
    if mode is not None:
        if stat.S_ISLNK(mode):
            raise OutputPathError(f"{shown} is a symbolic link that loops")
        if stat.S_ISDIR(mode):
            raise OutputPathError(f"{shown} is a folder: give the name of a file to write")
        if not stat.S_ISREG(mode):
            raise OutputPathError(f"{shown} exists and is a {_kind(mode)}, not a regular file; refusing to replace it")
    folder = target.parent
    while not os.path.lexists(folder):  # the nearest folder that exists: missing ones will be created in it
        folder = folder.parent
    if not folder.is_dir():
        raise OutputPathError(f"{shown}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{shown}: no permission to write in {folder}")
    return target


def _remove_stale_temps(target: Path, before_ns: int) -> None:
    """Remove temporary files of ``target`` that an earlier, killed write left: older than ``before_ns``."""
    pattern = re.compile(re.escape(f".{target.name}.") + _TEMP_NAME + re.escape(_TEMP_SUFFIX))
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_mtime_ns < before_ns:
                os.unlink(entry.path)
        except OSError:
            pass  # gone already, or not ours to remove


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


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, sync it, then rename it onto ``path``.

    A reader sees either the old file or the complete new one, never a half-written file, even
    if the process dies mid-write; on an error the temporary file is removed and ``path`` is untouched.
    ``path`` must be (or become) a regular file: see :func:`check_output_path`. Through a symbolic link,
    the file it points to is replaced and the link kept. Temporary files of the same target older than
    this write (left by a process that was killed while writing) are removed afterwards.
    """
    target = check_output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_TEMP_SUFFIX)
    try:
        started_ns = os.fstat(fd).st_mtime_ns
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes private files; a checkpoint is an ordinary file
        check_output_path(target)  # still a regular file (or nothing) right before the rename
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _remove_stale_temps(target, started_ns)
    return Path(path)


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
