"""The sandboxed side of the grader: run one question of one submission.

The grader starts this file as a script, ``python -I _child.py WORKDIR``, with a stripped environment. It uses
the standard library and its two siblings, ``protocol`` (the conventions shared with the grader) and ``_worker``
(what runs the submission), because it runs before any protection is in place.

This file is the **supervisor** (the process the grader started). It becomes a child subreaper and
non-dumpable, forks the worker, drains the worker's stdout/stderr into a capped buffer, enforces the wall-clock
limit, and afterwards kills every process the worker left behind (orphans are reparented to the subreaper, so
none escapes by starting a new session; when run as root it also kills every process of the sandbox's user id).
It prints one JSON status line, which is all the grader reads from it.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

if __name__ == "__main__":  # a script run with -I: import the siblings by name, then take the folder away again
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import protocol
    from _worker import run_worker

    del sys.path[0]  # the package directory is not an import root for graded code
else:
    from gancourse.grading import protocol
    from gancourse.grading._worker import run_worker

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
        if len(head) < protocol.OUTPUT_HEAD:
            head += chunk[: protocol.OUTPUT_HEAD - len(head)]
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
            run_worker(workdir, config, write_fd, libc)
        except BaseException as exc:  # noqa: BLE001 -- a failure before the submission ran
            try:
                os.write(2, f"gancourse sandbox: set-up failed: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(protocol.SETUP_EXIT)
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


if __name__ == "__main__":
    sys.stdout.write(json.dumps(supervise(sys.argv[1])) + "\n")
    sys.stdout.flush()
