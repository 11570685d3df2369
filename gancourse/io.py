"""Shared output helpers: atomic file writes and strict JSON (the bottom layer, beside ``errors``).

- :func:`atomic_write` writes a file through a temporary file in the same folder that is then renamed over
  the target, so a crash never leaves a half-written file behind. It writes only regular files: it refuses
  folders, devices, FIFOs and sockets (``--checkpoint /dev/null`` must not replace the device), writes through
  a symbolic link to the file it points to, and removes the temporary files that a killed earlier write of the
  same target left behind;
- :func:`check_output_path` is its check, for commands that refuse a bad path before any work;
- :func:`json_dumps` is ``json.dumps`` that writes strict JSON (non-finite floats become ``null``).
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from gancourse.errors import OutputPathError

__all__ = ["atomic_write", "check_output_path", "check_output_folder", "json_dumps"]

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


def check_output_folder(out: str | os.PathLike, files: Iterable[str | os.PathLike], *, what: str = "--out",
                        holds: str = "the output files") -> Path:
    """Check that ``out`` is a folder, or a path where one can be made, in which each of ``files`` (names
    relative to it) may be written as by :func:`check_output_path`; return ``out`` as a Path. Nothing is created.

    An existing ``out`` that is not a folder (a symbolic link to nothing included) is refused with a message
    naming ``what`` and saying the folder is for ``holds``.
    """
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputPathError(f"{what} {out} exists and is not a folder; give a folder for {holds}")
    for name in files:
        check_output_path(out / name, what=what)
    return out


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


def json_dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON: non-finite floats (an infinite reverse KL when no sample is high quality) become null.

    Dicts, lists and tuples are cleaned recursively; ``kwargs`` go to ``json.dumps`` (``allow_nan`` is False).
    """

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), allow_nan=False, **kwargs)
