"""Fixtures shared by the test files."""
from __future__ import annotations

import signal

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Let Ctrl-C reach Python even when the test run was started in the background.

    A shell without job control starts background commands with SIGINT ignored, and Python then keeps it ignored
    (no KeyboardInterrupt) and passes the ignored signal on to every subprocess. The tests of what Ctrl-C does
    (to the toy and train commands, their checkpoints and the sweep's workers) need the usual handler, so it is put
    back; subprocesses then start with SIGINT at its default.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run a module's torch work on one thread: small tensors run fastest, and steadiest, that way."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
