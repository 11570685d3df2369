"""Playing a lab session on a background thread: frame after frame until paused, with the kernel free meanwhile.

:class:`LabRunner` owns one :class:`~gancourse.viz.gan_lab.LabSession` and a daemon thread. While playing, the
thread trains one frame (``steps_per_frame`` steps), lays it out, and hands it to ``publish``; every access to the
session happens under one lock, so a control change (from the kernel's main thread) lands between two frames.
A front end acknowledges each frame it has drawn (:meth:`LabRunner.ack`); the thread keeps at most
``max_in_flight`` frames unacknowledged, so a slow browser slows the frames down instead of queueing them. Without
a front end (none has acknowledged a frame yet, or one stopped answering for ``ack_timeout`` seconds) frames go
out as fast as they are made.

Pausing, closing and interpreter exit are clean: :meth:`pause` returns once the frame in progress is published,
:meth:`close` stops and joins the thread, and every runner still alive is closed at exit.
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from gancourse.errors import TrainingDiverged
from gancourse.viz.gan_lab import LabFrame, LabSession

__all__ = ["LabRunner", "Publish"]

#: ``publish(frame, info)``: ``frame`` is None for an error; ``info`` holds ``number`` (frames published so far),
#: ``request`` (the last control change applied), ``error``, ``playing``, ``fps`` and ``steps_per_s`` (the thread's
#: own rates over its last second of play) and ``compute_ms`` (the kernel's time for this frame or change)
Publish = Callable[[LabFrame | None, dict[str, Any]], None]

_RUNNERS: weakref.WeakSet[LabRunner] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # pragma: no cover - runs at interpreter exit
    for runner in list(_RUNNERS):
        runner.close(timeout=2.0)


class LabRunner:
    """Play, pause, step and change a :class:`LabSession`; frames go to ``publish`` (see the module doc)."""

    def __init__(self, session: LabSession, publish: Publish, *, max_in_flight: int = 2,
                 ack_timeout: float = 1.0) -> None:
        self.session = session
        self._publish_fn = publish
        self.max_in_flight = int(max_in_flight)
        self.ack_timeout = float(ack_timeout)
        self._lock = threading.RLock()  # the session
        self._send_lock = threading.Lock()  # frames leave in the order of their numbers
        self._cv = threading.Condition()  # the flags below
        self._playing = False
        self._stopped = False
        self._busy = False  # the thread is working on a frame
        self._published = 0  # frames handed to publish
        self._acked = 0  # the last frame number a front end acknowledged
        self._front_end = False  # a front end acknowledges frames
        self._request = 0  # the last control change applied
        self._rate: list[tuple[float, int]] = []  # (time, step) of the recent frames while playing
        self._thread: threading.Thread | None = None
        self.error = ""
        _RUNNERS.add(self)

    # ------------------------------------------------------------------------------------------- state
    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def published(self) -> int:
        """How many frames have been handed to ``publish``."""
        return self._published

    def play(self) -> None:
        """Start (or go on) playing: the thread trains and publishes frames until :meth:`pause`."""
        if self._stopped:
            raise RuntimeError("this lab is closed; create a new one")
        with self._cv:
            if self._playing:
                return
            self._playing = True
            self._rate.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="gan-lab", daemon=True)
                self._thread.start()
            self._cv.notify_all()
        self._publish_current()  # the front end learns at once that it is playing

    def pause(self, timeout: float = 10.0) -> None:
        """Stop playing; returns when the frame in progress (if any) has been published."""
        with self._cv:
            self._playing = False
            self._cv.notify_all()
            self._cv.wait_for(lambda: not self._busy, timeout=timeout)
        self._publish_current()

    def step(self) -> LabFrame:
        """Pause, train exactly one frame, publish it and return it."""
        self.pause()
        frame = self._advance()
        return frame

    def reset(self) -> LabFrame:
        """A new run of the current settings from step 0 (play goes on if it was on)."""
        t0 = time.perf_counter()
        with self._lock:
            self.session.restart()
            frame = self.session.frame()
        self._publish(frame, compute_ms=1e3 * (time.perf_counter() - t0))
        return frame

    def change(self, changes: Mapping[str, Any], request: int = 0) -> str:
        """Apply control ``changes`` (``LabSession.update``) between two frames; answers ``request`` with the next
        frame (at once when paused) or with an error message. Returns ``"live"``, ``"restart"``, ``"none"`` or
        ``"error"``."""
        t0 = time.perf_counter()
        with self._lock:
            self._request = max(self._request, int(request))
            try:
                how = self.session.update(changes)
            except (ValueError, TypeError) as exc:
                self._publish(None, error=str(exc))
                return "error"
            frame = None if self._playing else self.session.frame()
        if frame is not None:
            self._publish(frame, compute_ms=1e3 * (time.perf_counter() - t0))
        return how

    def ack(self, frame: int) -> None:
        """A front end has drawn frame number ``frame`` (the count of published frames when it was sent)."""
        with self._cv:
            self._front_end = True
            self._acked = max(self._acked, int(frame))
            self._cv.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Stop playing for good and join the thread."""
        with self._cv:
            self._stopped = True
            self._playing = False
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        _RUNNERS.discard(self)

    # ------------------------------------------------------------------------------------------ frames
    def current(self) -> LabFrame:
        """The picture of the session now (nothing trained)."""
        with self._lock:
            return self.session.frame()

    def _stop_playing(self) -> None:
        with self._cv:
            self._playing = False
            self._cv.notify_all()

    def publish_current(self) -> None:
        """Publish the picture of the session now (a front end that has just opened asks for it)."""
        self._publish_current()

    def _publish_current(self) -> None:
        with self._lock:
            frame = self.session.frame()
        self._publish(frame)

    def _advance(self) -> LabFrame | None:
        """Train one frame and publish it (or publish the divergence and stop playing)."""
        t0 = time.perf_counter()
        with self._lock:
            try:
                self.session.advance()
            except TrainingDiverged:
                self._stop_playing()
            except Exception as exc:  # noqa: BLE001 - a thread must report, not die silently
                self._stop_playing()
                self.error = f"{type(exc).__name__}: {exc}"
                self._publish(None, error=f"the lab stopped: {self.error}")
                return None
            frame = self.session.frame()
        self._publish(frame, compute_ms=1e3 * (time.perf_counter() - t0))
        return frame

    def _publish(self, frame: LabFrame | None, error: str = "", compute_ms: float = 0.0) -> None:
        with self._send_lock:
            self._publish_locked(frame, error, compute_ms)

    def _publish_locked(self, frame: LabFrame | None, error: str, compute_ms: float) -> None:
        with self._cv:
            self._published += 1
            number = self._published
            if frame is not None and self._playing:
                now = time.perf_counter()
                self._rate.append((now, frame.step))
                while len(self._rate) > 2 and now - self._rate[0][0] > 1.0:
                    self._rate.pop(0)
            fps = steps = 0.0
            if len(self._rate) >= 2 and self._playing:
                (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
                if t1 > t0:
                    fps, steps = (len(self._rate) - 1) / (t1 - t0), (s1 - s0) / (t1 - t0)
            info = {"number": number, "request": self._request, "error": error, "playing": self._playing,
                    "fps": fps, "steps_per_s": steps, "compute_ms": compute_ms}
        self._publish_fn(frame, info)

    def _wait_for_front_end(self) -> None:
        """Hold the next frame while ``max_in_flight`` frames wait for their acknowledgement (at most
        ``ack_timeout`` seconds; then the front end counts as gone until it acknowledges again)."""
        with self._cv:
            if not self._front_end:
                return
            ok = self._cv.wait_for(lambda: self._published - self._acked < self.max_in_flight
                                   or not self._playing or self._stopped, timeout=self.ack_timeout)
            if not ok:
                self._front_end = False

    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._playing or self._stopped)
                if self._stopped:
                    return
            self._wait_for_front_end()
            with self._cv:
                if not self._playing or self._stopped:
                    continue
                self._busy = True
            try:
                self._advance()
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
