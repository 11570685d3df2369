"""Ctrl-C that stops a training run between two whole steps, so that what is saved is consistent.

A command wraps its training in :class:`DeferSigint`: a first SIGINT only sets ``requested``, which the
training loop checks after every step (then it stops, saves and exits with status 130); a second SIGINT
interrupts at once, as usual. :class:`Interrupted` is what a step callback raises to leave a loop that
has no stop hook of its own.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["DeferSigint", "Interrupted", "EXIT_INTERRUPTED"]

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """Raised between two training steps after Ctrl-C, so that a run stops on a whole step."""


class DeferSigint:
    """While active, a first SIGINT (Ctrl-C) only sets ``requested``; a second one interrupts at once.

    Outside the main thread (where signals cannot be caught), or where SIGINT is ignored (a background
    job, ``nohup``), it does nothing. The previous handler is restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def __enter__(self) -> DeferSigint:
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle) or signal.default_int_handler
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __call__(self) -> bool:
        """Whether Ctrl-C asked to stop: usable as a training loop's ``should_stop``."""
        return self.requested

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
