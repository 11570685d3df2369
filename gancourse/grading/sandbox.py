"""Run one question of a submission in a sandboxed child process and read its answers back.

The grader's side of ``_child.py``: it writes the extracted source and the inputs (``cases.npz``) to a fresh
temporary directory, starts the supervisor with a stripped environment, and after every process of the question
is gone reads ``out_<i>.npz`` with ``allow_pickle=False`` (never following a link, never more than a size cap).
Nothing the submission produced is ever executed or unpickled here.

As root (CI, Gradescope) each question gets its own unprivileged user id, new mount and network namespaces with
the protected directories hidden, and a process-count limit. As an ordinary user the sandbox keeps the resource
limits, the new session, the audit hook and the clean-up of every leftover process, but the graded code runs as
you: it could read your files.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gancourse.grading import protocol

__all__ = ["SandboxResult", "run_question", "CHILD_SCRIPT", "privileged"]

CHILD_SCRIPT = Path(__file__).resolve().with_name("_child.py")
MAX_ANSWER_BYTES = 256 << 20
_PASS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH", "SYSTEMROOT")
_UID_RANGE = (1_500_000_000, 1_600_000_000)


def privileged() -> bool:
    """Whether the grader can drop each question to its own user id (it runs as root)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class SandboxResult:
    """What came back from one question: per case an answer ``(structure, arrays)`` or an error text."""

    answers: list[tuple[str, dict[str, np.ndarray]] | None]
    errors: list[str | None]
    status: dict = field(default_factory=dict)

    @property
    def reference_use(self) -> str | None:
        """Why the question earns nothing, if the graded code used the course's implementation."""
        if self.status.get("exit_code") != protocol.REFERENCE_EXIT:
            return None
        head = self.status.get("output_head", "")
        marker = "gancourse sandbox: reference use: "
        why = head.rsplit(marker, 1)[1].splitlines()[0] if marker in head else "used the course's implementation"
        return why

    @property
    def isolation_note(self) -> str | None:
        """Which protection this machine could not give (no namespaces in an unprivileged container), if any."""
        head = self.status.get("output_head", "")
        if protocol.LIMITED not in head:
            return None
        return head.split(protocol.LIMITED, 1)[1].splitlines()[0]

    @property
    def ended_early(self) -> str | None:
        """A one-line reason the worker stopped before finishing every case, or None."""
        s = self.status
        if s.get("setup_error"):
            return s["setup_error"]
        if s.get("timed_out"):
            return "it ran past the wall-clock limit and was stopped"
        sig = s.get("signal")
        if sig == 24:  # SIGXCPU
            return "it used up its CPU-time limit"
        if sig is not None:
            return f"the process was killed by signal {sig} (memory or file-size limit, or a crash)"
        if s.get("exit_code") not in (0, None):
            return f"the process exited with code {s['exit_code']}"
        return None


def _stripped_env(workdir: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    env.update({k: os.environ[k] for k in _PASS_ENV if k in os.environ})
    return env


def _read_answer(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("the answer file is not a regular file")
        if info.st_size > MAX_ANSWER_BYTES:
            raise ValueError(f"the answer is too large ({info.st_size >> 20} MiB; at most {MAX_ANSWER_BYTES >> 20})")
        with np.load(f, allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in data.files}
    structure = arrays.pop("structure", None)
    if structure is None or structure.dtype.kind != "U" or structure.ndim != 0:
        raise ValueError("the answer file has no structure record")
    answers = {k[len("out__"):]: v for k, v in arrays.items() if k.startswith("out__")}
    return str(structure[()]), answers


def _read_text(path: Path, limit: int = 2000) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(limit).decode("utf-8", "replace")


def run_question(
    source: str,
    name: str,
    cases: list[dict],
    *,
    framework: str = "numpy",
    grad_wrt: tuple[str, ...] = (),
    cpu_seconds: float = 10.0,
    memory_mb: int = 2048,
    protected: list[Path] | tuple[Path, ...] = (),
    isolate_user: bool | None = None,
    namespaces: bool = True,
) -> SandboxResult:
    """Call ``name`` (defined by ``source``) on each case in a sandboxed child; see the module docstring.

    The wall-clock limit is twice the CPU limit plus the framework's import time. ``isolate_user`` (default: when
    root) runs the code as a fresh user id; ``namespaces=False`` skips the mount and network namespaces, as on a
    machine that does not allow them (the result then carries an ``isolation_note``).
    """
    isolate_user = privileged() if isolate_user is None else isolate_user
    if isolate_user and not privileged():
        raise PermissionError("isolating the graded code as another user needs root")
    uid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0] if isolate_user else None
    wall = 2 * cpu_seconds + (15.0 if framework == "torch" else 5.0)
    workdir = Path(tempfile.mkdtemp(prefix="gancourse-grade-"))
    try:
        encoded = {}
        for i, case in enumerate(cases):
            encoded.update({f"{i}__{k}": v for k, v in protocol.encode_case(case).items()})
        np.savez(workdir / "cases.npz", **encoded)
        (workdir / "submission.py").write_text(source, encoding="utf-8")
        config = {"name": name, "n_cases": len(cases), "framework": framework, "grad_wrt": list(grad_wrt),
                  "cpu_seconds": cpu_seconds, "memory_mb": memory_mb, "wall_seconds": wall, "uid": uid,
                  "protected": [str(Path(p).resolve()) for p in protected], "namespaces": namespaces}
        (workdir / "config.json").write_text(json.dumps(config), encoding="utf-8")
        if uid is not None:
            for path in (workdir, *workdir.iterdir()):
                os.chown(path, uid, uid)
        status = _start(workdir, wall)
        answers: list = []
        errors: list = []
        for i in range(len(cases)):
            out, err = workdir / f"out_{i}.npz", workdir / f"err_{i}.txt"
            if out.exists() or out.is_symlink():
                try:
                    answers.append(_read_answer(out))
                    errors.append(None)
                    continue
                except (OSError, ValueError) as exc:
                    answers.append(None)
                    errors.append(f"its answer could not be read: {exc}")
                    continue
            answers.append(None)
            errors.append(_read_text(err))
        return SandboxResult(answers, errors, status)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _start(workdir: Path, wall: float) -> dict:
    """Run the supervisor and return its status line (or a description of why there is none)."""
    proc = subprocess.Popen(
        [sys.executable, "-I", str(CHILD_SCRIPT), str(workdir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_stripped_env(workdir), cwd=workdir, close_fds=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=wall + 30.0)
    except subprocess.TimeoutExpired:  # the supervisor is ours and should never hang; never wait forever
        proc.kill()
        out, err = proc.communicate()
        return {"setup_error": "the sandbox's supervisor did not finish", "exit_code": None}
    lines = out.decode("utf-8", "replace").strip().splitlines()
    try:
        status = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"setup_error": "the sandbox could not start: " + err.decode("utf-8", "replace")[-500:].strip(),
                "exit_code": None}
    if status.get("exit_code") == protocol.SETUP_EXIT:
        status["setup_error"] = "the sandbox could not be set up: " + status.get("output_head", "")[-500:].strip()
    return status
