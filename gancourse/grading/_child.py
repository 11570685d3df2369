"""The sandboxed side of the grader: run one question of one submission.

The grader starts this file as a script, ``python -I _child.py WORKDIR``, with a stripped environment. It is
written against the standard library (NumPy and torch are imported only in the worker) because it runs before any
protection is in place, and the grader imports it too, for the conventions both sides share (how a case is stored
in ``.npz``, how a function is called, how its output is flattened): one home for each.

Two processes, both from this file:

- the **supervisor** (the process the grader started) becomes a child subreaper and non-dumpable, forks the
  worker, drains the worker's stdout/stderr into a capped buffer, enforces the wall-clock limit, and afterwards
  kills every process the worker left behind (orphans are reparented to the subreaper, so none escapes by
  starting a new session; when run as root it also kills every process of the sandbox's user id). It prints one
  JSON status line, which is all the grader reads from it;
- the **worker** starts a new session, sets resource limits (CPU time, address space, file size, open files, and
  the process count when it can drop privileges), and when run as root enters new mount and network namespaces,
  hides the protected directories (the course's package and its instructor notebooks) under empty read-only
  mounts and drops to an unprivileged user id. Then it imports the framework, installs an audit hook that cannot
  be removed (no processes, no network, no signals to other processes, no ctypes; importing ``gancourse`` or
  opening a protected file ends the worker with the reference-use exit code), runs the extracted submission
  source and calls the graded function on each case, writing ``out_<i>.npz`` or ``err_<i>.txt``.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

REFERENCE_EXIT = 97  # the worker's exit code when the graded code used the course's own implementation
SETUP_EXIT = 98  # the sandbox could not be set up (never the submission's fault)
OUTPUT_HEAD = 4096  # bytes of the submission's stdout/stderr kept for the report
LIMITED = "gancourse sandbox: isolation limited: "  # how the worker tells the grader that a protection is missing

_SCALAR_TAGS = {"f": float, "i": int, "b": bool}
UNGRADABLE = "ungradable answer: "  # prefix of the grader's own objections to an answer (not the student's error)


class UngradableAnswer(TypeError):
    """The function returned, but its answer is not something the grader can compare."""


# --- the conventions shared with the grader --------------------------------------------------------------------


def encode_case(case: dict) -> dict:
    """Keyword arguments -> arrays for ``np.savez``; keys tag the kind so ``decode_case`` restores it exactly.

    ``a__x`` an array, ``f__x`` / ``i__x`` / ``b__x`` a Python float / int / bool, ``s__x`` a string,
    ``e__x`` the source of an ``Expr`` and ``E__x__name`` its arrays. Keys starting with ``_`` are not sent.
    """
    import numpy as np

    out = {}
    for key, value in case.items():
        if key.startswith("_"):
            continue
        if not key.isidentifier():
            raise ValueError(f"case keys must be Python identifiers, got {key!r}")
        if isinstance(value, bool):
            out[f"b__{key}"] = np.array(value)
        elif isinstance(value, int):
            out[f"i__{key}"] = np.array(value, dtype=np.int64)
        elif isinstance(value, float):
            out[f"f__{key}"] = np.array(value, dtype=np.float64)
        elif isinstance(value, str):
            out[f"s__{key}"] = np.array(value)
        elif hasattr(value, "source") and hasattr(value, "arrays"):  # an Expr
            out[f"e__{key}"] = np.array(value.source)
            for name, arr in value.arrays.items():
                out[f"E__{key}__{name}"] = np.asarray(arr)
        else:
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"case value {key!r} must be numeric, got dtype {arr.dtype}")
            out[f"a__{key}"] = arr
    return out


def decode_case(arrays) -> dict:
    """The inverse of ``encode_case``; an ``Expr`` becomes the function its source evaluates to."""
    import numpy as np

    case, exprs = {}, {}
    for key in arrays.keys():
        tag, name = key.split("__", 1)
        value = arrays[key]
        if tag == "a":
            case[name] = np.array(value)
        elif tag in _SCALAR_TAGS:
            case[name] = _SCALAR_TAGS[tag](value[()])
        elif tag == "s":
            case[name] = str(value[()])
        elif tag == "e":
            exprs.setdefault(name, {})["__source__"] = str(value[()])
        elif tag == "E":
            expr, arr_name = name.split("__", 1)
            exprs.setdefault(expr, {})[arr_name] = np.array(value)
    for name, parts in exprs.items():
        source = parts.pop("__source__")
        scope = {"np": np, "__builtins__": __builtins__, **parts}
        case[name] = eval(source, scope)  # noqa: S307 -- the instructor's source, evaluated on both sides
    return case


def _to_numpy(value):
    """A tensor, array, number or bool as a plain ``numpy.ndarray`` (never a subclass, never an object array)."""
    import numpy as np

    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    arr = np.array(value, copy=True, subok=False)
    if arr.dtype.kind not in "biuf":
        raise UngradableAnswer(f"not a numeric array: got {type(value).__name__} with dtype {arr.dtype}")
    return arr


def flatten_output(value) -> tuple[str, dict]:
    """An answer as (structure, named arrays): an array, a tuple/list of them, or a dict of them."""
    if isinstance(value, (tuple, list)):
        return f"tuple:{len(value)}", {f"[{i}]": _to_numpy(v) for i, v in enumerate(value)}
    if isinstance(value, dict):
        keys = list(value)
        if not all(isinstance(k, str) for k in keys):
            raise UngradableAnswer("a dict answer needs string keys")
        return "dict:" + ",".join(sorted(keys)), {f"[{k!r}]": _to_numpy(value[k]) for k in sorted(keys)}
    return "array", {"": _to_numpy(value)}


def unflatten_output(structure: str, arrays: dict):
    """The inverse of ``flatten_output`` (for a custom scorer, which sees the answer as the student returned it)."""
    kind, _, rest = structure.partition(":")
    if kind == "tuple":
        return tuple(arrays[f"[{i}]"] for i in range(int(rest)))
    if kind == "dict":
        return {k: arrays[f"[{k!r}]"] for k in (rest.split(",") if rest else [])}
    return arrays[""]


def cotangent(shape: tuple, index: int):
    """The fixed random weights ``c`` of ``sum(c * output)`` whose gradients a torch question compares."""
    import numpy as np

    return np.random.default_rng(1000 + index).standard_normal(shape)


def call(fn, case: dict, framework: str = "numpy", grad_wrt: tuple = ()) -> tuple[str, dict]:
    """Call ``fn(**case)`` and flatten its answer; a torch question also returns d sum(c * out) / d input."""
    if framework == "numpy":
        return flatten_output(fn(**case))
    import numpy as np
    import torch

    def as_tensor(name, v):
        if isinstance(v, np.ndarray):
            t = torch.from_numpy(v.astype(np.int64) if v.dtype.kind in "iu" else v.astype(np.float64))
            return t.requires_grad_(True) if name in grad_wrt else t
        return v

    args = {k: as_tensor(k, v) for k, v in case.items()}
    missing = [k for k in grad_wrt if not isinstance(args.get(k), torch.Tensor)]
    if missing:
        raise ValueError(f"grad_wrt names inputs that are not float arrays: {missing}")
    value = fn(**args)
    parts = list(value) if isinstance(value, (tuple, list)) else list(value.values()) if isinstance(value, dict) else [value]
    structure, flat = flatten_output(value)
    if grad_wrt:
        if not all(isinstance(p, torch.Tensor) and p.requires_grad for p in parts):
            raise UngradableAnswer(
                "the answer must be a tensor that depends on the inputs through autograd (it is differentiated "
                f"with respect to {', '.join(grad_wrt)}); a gradient inside the formula needs "
                "torch.autograd.grad(..., create_graph=True), and .item() or .detach() cut the graph")
        total = sum((p * torch.from_numpy(cotangent(tuple(p.shape), i)).to(p.dtype)).sum() for i, p in enumerate(parts))
        grads = torch.autograd.grad(total, [args[k] for k in grad_wrt], allow_unused=True)
        for k, g in zip(grad_wrt, grads):
            flat[f"d/d{k}"] = np.zeros(tuple(args[k].shape)) if g is None else _to_numpy(g)
    return structure, flat


# --- the supervisor -------------------------------------------------------------------------------------------


def _libc():
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _descendants(pid: int) -> list[int]:
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_uid(uid: int) -> None:
    """As root: a process of user ``uid`` that sends SIGKILL to -1 reaches every process of that user."""
    killer = os.fork()
    if killer == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(killer, 0)


def kill_everything(uid: int | None) -> int:
    """SIGKILL every descendant of this process (and, as root, every process of ``uid``) until none is left."""
    killed = 0
    for attempt in range(200):
        if uid is not None:
            _kill_uid(uid)
        pids = set(_descendants(os.getpid()))
        if uid is not None:
            pids.update(_uid_processes(uid))
        pids.discard(os.getpid())
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.005)
        _reap()
    return killed


def _drain(fd: int, sink: dict) -> None:
    head = bytearray()
    total = 0
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        total += len(chunk)
        if len(head) < OUTPUT_HEAD:
            head += chunk[: OUTPUT_HEAD - len(head)]
    sink["head"] = bytes(head)
    sink["bytes"] = total


def supervise(workdir: str) -> dict:
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    libc = _libc()
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of the worker's tree come back to us
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: /proc/<this pid> is closed to the worker
    uid = config.get("uid")
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read_fd)
        try:
            _worker(workdir, config, write_fd, libc)
        except BaseException as exc:  # noqa: BLE001 -- a failure before the submission ran
            try:
                os.write(2, f"gancourse sandbox: set-up failed: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(SETUP_EXIT)
        os._exit(0)
    os.close(write_fd)
    sink: dict = {}
    drainer = threading.Thread(target=_drain, args=(read_fd, sink), daemon=True)
    drainer.start()
    deadline = start + float(config["wall_seconds"])
    status, timed_out = None, False
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
        elif time.monotonic() > deadline:
            timed_out = True
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            status = os.waitpid(pid, 0)[1]
        else:
            time.sleep(0.01)
    elapsed = time.monotonic() - start
    left = kill_everything(uid)
    drainer.join(timeout=2.0)
    os.close(read_fd)
    return {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "seconds": round(elapsed, 3),
        "killed_leftovers": left,
        "output_bytes": sink.get("bytes", 0),
        "output_head": sink.get("head", b"").decode("utf-8", "replace"),
    }


# --- the worker -----------------------------------------------------------------------------------------------

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
        if name.split(".")[0] in _DENIED_IMPORTS:
            del sys.modules[name]
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


def _worker(workdir: str, config: dict, out_fd: int, libc) -> None:
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
    here = os.path.realpath(__file__)
    _install_audit_hook(protected, {here, os.path.splitext(here)[0] + ".pyc"})
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


if __name__ == "__main__":
    if sys.path and os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
        del sys.path[0]  # the package directory is not an import root for graded code
    sys.stdout.write(json.dumps(supervise(sys.argv[1])) + "\n")
    sys.stdout.flush()
