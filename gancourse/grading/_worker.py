"""What runs inside the sandbox: isolation, limits, the audit hook, and the calls of the graded function.

The worker starts a new session, sets resource limits (CPU time, address space, file size, open files, and the
process count when it can drop privileges), and when run as root enters new mount and network namespaces, hides
the protected directories (the course's package and its instructor notebooks) under empty read-only mounts and
drops to an unprivileged user id. Then it imports the framework, installs an audit hook that cannot be removed
(no processes, no network, no signals to other processes, no ctypes; importing ``gancourse`` or opening a
protected file ends the worker with the reference-use exit code), runs the extracted submission source and calls
the graded function on each case, writing ``out_<i>.npz`` or ``err_<i>.txt``.
"""
from __future__ import annotations

import os
import sys

if __name__ == "_worker":  # loaded by name by the sandbox script: the course's package is never imported here
    from protocol import LIMITED, REFERENCE_EXIT, UNGRADABLE, UngradableAnswer, call, decode_case
else:
    from gancourse.grading.protocol import (LIMITED, REFERENCE_EXIT, UNGRADABLE, UngradableAnswer, call,
                                            decode_case)

_PROCESS_EVENTS = {"os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
                   "subprocess.Popen", "pty.spawn", "os.startfile", "_posixsubprocess.fork_exec"}
_SIGNAL_EVENTS = {"os.kill", "os.killpg", "signal.pthread_kill", "os.pidfd_open"}
_DENIED_IMPORTS = {"_posixsubprocess", "ctypes", "_ctypes", "cffi", "_cffi_backend", "_xxsubinterpreters",
                   "_xxinterpchannels", "_testcapi", "_testinternalcapi"}
_DENIED_PREFIXES = ("socket.", "ctypes.", "gc.get_", "resource.", "winreg.", "os.setuid", "os.setgid", "os.setre", "os.setres",
                    "os.chroot", "sys.remote_exec")


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda v: None if v is None else v.encode())
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        import ctypes

        raise OSError(f"mount {fstype or 'bind'} on {target} failed: {os.strerror(ctypes.get_errno())}")


_MS_RDONLY, _MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 1, 4096, 8192, 16384, 1 << 18


def _first_blocked(path: str) -> tuple[str, str] | None:
    """The top-most ancestor of ``path`` that other users cannot traverse, and its child on the way to ``path``."""
    parts = os.path.realpath(path).split(os.sep)[1:]
    for i in range(len(parts) - 1):
        ancestor = os.sep + os.path.join(*parts[: i + 1])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor, os.path.join(ancestor, parts[i + 1])
    return None


def _expose(libc, needed: list[str], stage: str) -> None:
    """Make the interpreter's directories reachable for the sandbox user (inside the private mount namespace).

    A directory such as ``/root`` (mode 700) on the way to the Python installation is covered by an empty tmpfs
    that others may traverse, with only the needed child bind-mounted back; everything else in it stays hidden.
    """
    for round_ in range(16):
        blocked: dict[str, set[str]] = {}
        for path in needed:
            hit = _first_blocked(path)
            if hit:
                blocked.setdefault(hit[0], set()).add(hit[1])
        if not blocked:
            return
        for ancestor, children in blocked.items():
            staged = []
            for k, child in enumerate(sorted(children)):
                place = os.path.join(stage, f"{round_}-{len(staged)}-{k}")
                os.mkdir(place)
                _mount(libc, child, place, None, _MS_BIND | _MS_REC)
                staged.append((place, child))
            _mount(libc, "tmpfs", ancestor, "tmpfs", 0, "mode=0755,size=64k")
            for place, child in staged:
                os.mkdir(child)
                _mount(libc, place, child, None, _MS_MOVE)
    raise OSError("could not expose the interpreter's directories")


def _hide(libc, paths: list[str], needed: list[str], stage: str) -> None:
    """New mount and network namespaces, the interpreter reachable, each protected directory under an empty tmpfs."""
    if libc.unshare(0x00020000 | 0x40000000) != 0:  # CLONE_NEWNS | CLONE_NEWNET
        import ctypes

        raise OSError(f"unshare failed: {os.strerror(ctypes.get_errno())}")
    _mount(libc, "none", "/", None, _MS_REC | _MS_PRIVATE)
    _expose(libc, needed, stage)
    for path in paths:
        if os.path.isdir(path):
            _mount(libc, "tmpfs", path, "tmpfs", _MS_RDONLY, "size=4k,mode=000")


def _set_limits(config: dict) -> None:
    import resource

    memory = int(config["memory_mb"]) * 1024 * 1024
    cpu = max(1, int(float(config["cpu_seconds"]) + 0.999))
    limits = {
        resource.RLIMIT_AS: (memory, memory),
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_FSIZE: (64 << 20, 64 << 20),
        resource.RLIMIT_NOFILE: (256, 256),
        resource.RLIMIT_CORE: (0, 0),
    }
    if config.get("uid") is not None:
        limits[resource.RLIMIT_NPROC] = (64, 64)  # counted per user id: meaningful only for our own sandbox uid
    for which, value in limits.items():
        resource.setrlimit(which, value)


def _install_audit_hook(protected: list[str], allowed_files: set[str]) -> None:
    """No processes, network, signals, ctypes or rlimits; reference use ends the worker. Cannot be removed.

    The modules that reach the system around those events are dropped from ``sys.modules`` first, so that graded
    code has to import them again, which the hook refuses (objects already holding them keep working).
    """
    import _posixsubprocess
    import subprocess  # importable afterwards (numpy.testing needs it), but it can no longer start anything

    def refuse(*args, **kwargs):
        raise PermissionError("graded code may not start processes")

    _posixsubprocess.fork_exec = refuse  # the one way to a new process that raises no audit event
    subprocess._fork_exec = refuse
    for name in list(sys.modules):
        if name.split(".")[0] in _DENIED_IMPORTS or name.split(".")[0] == "gancourse":
            del sys.modules[name]  # importing any of these again raises the audit event below
    me = os.getpid()
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in protected)

    def reference_use(what: str):
        try:
            os.write(2, f"\ngancourse sandbox: reference use: {what}\n".encode())
        finally:
            os._exit(REFERENCE_EXIT)

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            name = args[0] if args else ""
            if isinstance(name, str) and (name == "gancourse" or name.startswith("gancourse.")):
                reference_use(f"imported {name}")
            if isinstance(name, str) and name.split(".")[0] in _DENIED_IMPORTS:
                raise ImportError(f"graded code may not import {name}")
        elif event == "open":
            path = args[0] if args else None
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if isinstance(path, str):
                real = os.path.realpath(path)
                if real not in allowed_files and (real + os.sep).startswith(roots):
                    reference_use("opened one of the course's files")
        elif event in _PROCESS_EVENTS:
            raise PermissionError("graded code may not start processes")
        elif event in _SIGNAL_EVENTS:
            target = args[0] if args else None
            if event != "os.kill" or target != me:
                raise PermissionError("graded code may not signal other processes")
        elif event.startswith(_DENIED_PREFIXES):
            raise PermissionError(f"graded code may not use {event.split('.')[0]}")

    sys.addaudithook(hook)


def run_worker(workdir: str, config: dict, out_fd: int, libc) -> None:
    """Isolate this process, then call the graded function on every case (see the module docstring)."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.closerange(3, 65536)
    protected = list(config["protected"])
    uid = config.get("uid")
    if uid is not None:
        needed = [p for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path} if p and os.path.isdir(p)]
        stage = os.path.join(workdir, ".mounts")
        os.mkdir(stage, 0o700)
        try:
            if not config.get("namespaces", True):
                raise OSError("switched off by the grader")
            _hide(libc, protected, needed, stage)
        except OSError as exc:  # e.g. a container without CAP_SYS_ADMIN: keep what can be kept, and say so
            reachable = not any(_first_blocked(p) for p in needed)
            os.write(2, (f"{LIMITED}no mount or network namespaces ({exc}); "
                         + ("the graded code ran as an unprivileged user id" if reachable else
                            "the interpreter is not reachable by another user, so the graded code ran as root")
                         + "\n").encode())
            if not reachable:
                uid = config["uid"] = None
    _set_limits(config)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(workdir)
    os.umask(0o077)
    os.environ["HOME"] = workdir
    import numpy as np

    if config["framework"] == "torch":
        import torch

        torch.set_num_threads(1)
    with np.load("cases.npz", allow_pickle=False) as data:
        flat = {k: np.array(data[k]) for k in data.files}
    n_cases = int(config["n_cases"])
    cases = [decode_case({k.split("__", 1)[1]: v for k, v in flat.items() if k.startswith(f"{i}__")})
             for i in range(n_cases)]
    with open("submission.py", encoding="utf-8") as f:
        source = f.read()
    code = compile(source, "submission.py", "exec")
    folder = os.path.dirname(os.path.realpath(__file__))
    ours = {os.path.join(folder, name) for name in ("_child.py", "_worker.py", "protocol.py")}
    _install_audit_hook(protected, ours)  # tracebacks may read our own sources; nothing else of the course
    sys.stdout.flush()
    namespace = {"__name__": "submission", "__builtins__": __builtins__}
    try:
        exec(code, namespace)  # noqa: S102 -- the extracted definitions only; inside the sandbox
        fn = namespace[config["name"]]
    except BaseException as exc:  # noqa: BLE001
        _write_error_all(n_cases, f"defining the function failed: {type(exc).__name__}: {exc}")
        return
    grad_wrt = tuple(config["grad_wrt"])
    for i, case in enumerate(cases):
        try:
            structure, arrays = call(fn, case, config["framework"], grad_wrt)
            payload = {f"out__{k}": v for k, v in arrays.items()}
            payload["structure"] = np.array(structure)
            with open(f"out_{i}.npz.tmp", "wb") as f:
                np.savez(f, **payload)
            os.replace(f"out_{i}.npz.tmp", f"out_{i}.npz")
        except BaseException as exc:  # noqa: BLE001 -- SystemExit and KeyboardInterrupt are the case's failure too
            kind = UNGRADABLE if isinstance(exc, UngradableAnswer) else f"{type(exc).__name__}: "
            _write_error(i, f"{kind}{exc}")


def _write_error(i: int, text: str) -> None:
    try:
        with open(f"err_{i}.txt", "w", encoding="utf-8") as f:
            f.write(text[:2000])
    except BaseException:  # noqa: BLE001
        pass


def _write_error_all(n: int, text: str) -> None:
    for i in range(n):
        _write_error(i, text)
