"""Fixtures of the browser tests: one JupyterLab server and one Chromium for the whole session.

The tests skip, saying why, where this machine has no Chromium (or no Playwright); in CI (``CI`` set) they fail
instead, since CI must run them.
"""
from __future__ import annotations

import os
import shutil

import pytest

from browser_lab import chromium_path, launch_chromium, start_lab


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests (.ci/run installs Chromium with apt-get)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium on this machine (Debian/Ubuntu: apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def playwright_api(chromium):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (python -m pip install -e \".[dev]\")")
    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="session")
def browser(playwright_api, chromium):
    b = launch_chromium(playwright_api, chromium)
    yield b
    b.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory, chromium):
    """JupyterLab serving an empty folder (the tests write their notebooks there), configured from scratch."""
    work = tmp_path_factory.mktemp("jupyterlab")
    root = work / "root"
    root.mkdir()
    server = start_lab(root, work)
    yield server
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


_LATENCIES: list[dict] = []


@pytest.fixture(scope="session")
def latencies() -> list[dict]:
    """Where the tests record each control change's latency (printed at the end of the session)."""
    return _LATENCIES


def pytest_terminal_summary(terminalreporter) -> None:
    if not _LATENCIES:
        return
    import statistics

    by_widget: dict[str, list[float]] = {}
    for r in _LATENCIES:  # records without a widget name are the dynamics explorer's
        by_widget.setdefault(r.get("widget", "dynamics explorer"), []).append(r["latency_ms"])
    for widget, values in by_widget.items():
        ms = sorted(values)
        p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
        terminalreporter.write_line(
            f"{widget} in Chromium: {len(ms)} control changes, change -> drawn frame "
            f"median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms "
            f"(load average {os.getloadavg()[0]:.1f})")
