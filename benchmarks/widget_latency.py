"""How fast the course's browser widgets redraw: latency from a control change to the drawn frame; prints JSON.

    python benchmarks/widget_latency.py                       # every widget, 3 rounds of its changes
    python benchmarks/widget_latency.py --widget dynamics_explorer --rounds 5

Starts JupyterLab on 127.0.0.1 with a fresh configuration, opens each widget's lecture cell in Debian's Chromium
(Playwright; nothing is downloaded), makes the widget's list of control changes ``--rounds`` times, one change at
a time, and reads the latency the widget measures in the page: from the change to the end of drawing the frame
that answers it (the browser paints it at its next display refresh). Also reports the kernel's share (computing
the frame) and the drawing's, and the machine's load average (``uptime``) before and after. Results are
recorded in docs/PERFORMANCE.md, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from browser_lab import (  # noqa: E402
    change_and_wait,
    chromium_path,
    click_field,
    explorer_cell_source,
    launch_chromium,
    open_notebook,
    set_value,
    start_lab,
    write_notebook,
)


@dataclass(frozen=True)
class WidgetBench:
    """One widget to time: the notebook cell that shows it, its root element, and the changes of each round.

    ``changes(r)`` lists round ``r``'s (control, value) pairs; a value is what :func:`browser_lab.set_value` takes
    (a slider's value, an option, a checkbox state), or for ``"start"`` the (x, y) fractions of a click on the
    field. Rounds use different values, so that no round replays frames the kernel has already computed.
    """

    cell: Callable[[], str]
    root: str
    changes: Callable[[int], list[tuple[str, object]]]


def explorer_changes(r: int) -> list[tuple[str, object]]:
    """The game-dynamics explorer as a student uses it: sliders dragged step by step, choices switched, clicks on
    the field; round ``r`` shifts every value a little."""
    d = 0.05 * r  # one slider step

    def log(x: float) -> str:  # log sliders move over values with two significant digits
        return f"{x * (1 + 0.1 * r):.2g}"

    def lin(x: float) -> str:
        return f"{x + d:.2f}"

    return [
        *(("h", log(v)) for v in (0.12, 0.15, 0.2, 0.25, 0.1)),
        ("reg", "r1"), *(("gamma", lin(v)) for v in (0.5, 1.0, 1.5, 2.0, 3.0)),
        ("reg", "instance-noise"), *(("sigma", lin(v)) for v in (0.75, 1.0, 2.0)),
        ("reg", "none"), ("loss", "ns"), ("loss", "wgan"), ("clipping", True), ("clip", lin(0.5)),
        ("clipping", False), ("loss", "gan"),
        ("method", "altgd"), ("n_d", str(2 + r)), ("n_g", str(2 + r)), ("n_d", "1"), ("n_g", "1"),
        ("method", "extragradient"), ("method", "optimistic"),
        ("method", "consensus"), *(("consensus", lin(v)) for v in (0.5, 2.0)),
        ("method", "momentum"), *(("beta", lin(v)) for v in (-0.3, 0.3)), ("alternating", False),
        ("alternating", True), ("method", "flow"), ("method", "simgd"),
        *(("start", (x + d / 5, y)) for x, y in ((0.3, 0.3), (0.7, 0.4), (0.55, 0.6))),
        ("steps", str(600 + 50 * r)), ("steps", str(300 + 50 * r)), ("lim", log(3.0)), ("lim", log(2.0)),
        ("game", "xy"), ("method", "altgd"), ("h", log(1.6)), ("h", log(0.1)), ("method", "simgd"),
        ("game", "bilinear"), ("A", (3, 3.0 + d)), ("A", (1, 0.5 + d)), ("method", "extragradient"),
        ("h", log(0.4)), ("A", (1, 0.0)), ("A", (3, 2.0 + d)), ("method", "simgd"), ("h", log(0.1)),
        ("game", "dirac"),
    ]


#: every widget this benchmark knows; add the course's other browser widgets here
WIDGETS: dict[str, WidgetBench] = {
    "dynamics_explorer": WidgetBench(cell=explorer_cell_source, root=".gc-explorer", changes=explorer_changes),
}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` with linear interpolation between order statistics."""
    v = sorted(values)
    x = q * (len(v) - 1)
    lo = int(x)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (x - lo) * (v[hi] - v[lo])


def summary(values: list[float]) -> dict:
    return {"median_ms": round(statistics.median(values), 1), "p90_ms": round(percentile(values, 0.9), 1),
            "min_ms": round(min(values), 1), "max_ms": round(max(values), 1)}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def time_widget(browser, lab, name: str, bench: WidgetBench, rounds: int) -> dict:
    write_notebook(lab.root / f"{name}.ipynb", bench.cell())
    page = open_notebook(browser, lab, f"{name}.ipynb")
    widget = page.locator(bench.root).first
    rows = []
    try:
        for r in range(rounds):
            for control, value in bench.changes(r):
                action = click_field(widget, *value) if control == "start" else set_value(widget, control, value)
                state = change_and_wait(widget, action, hash=False)
                if state["error"]:
                    raise RuntimeError(f"{name}: {control} = {value!r} gave an error: {state['error']}")
                rows.append({"round": r, "control": control, "latency_ms": state["latency"],
                             "kernel_ms": state["compute"], "draw_ms": state["draw"]})
    finally:
        page.close()
    by_control: dict[str, list[float]] = {}
    for row in rows:
        by_control.setdefault(row["control"], []).append(row["latency_ms"])
    return {
        "changes": len(rows),
        "latency": summary([r["latency_ms"] for r in rows]),
        "kernel": summary([r["kernel_ms"] for r in rows]),
        "draw": summary([r["draw_ms"] for r in rows]),
        "median_ms_by_control": {k: round(statistics.median(v), 1) for k, v in sorted(by_control.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widget", choices=sorted(WIDGETS), action="append",
                        help="time only this widget (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="how often each widget's changes are made")
    args = parser.parse_args(argv)
    chromium = chromium_path()
    if chromium is None:
        parser.error("no Chromium on this machine (Debian/Ubuntu: apt-get install chromium)")
    from importlib.metadata import version

    from playwright.sync_api import sync_playwright

    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "uptime_before": uptime()},
              "jupyterlab": version("jupyterlab"), "widgets": {}}
    with tempfile.TemporaryDirectory(prefix="widget-latency-") as tmp:
        work = Path(tmp)
        (work / "root").mkdir()
        lab = start_lab(work / "root", work)
        try:
            with sync_playwright() as api:
                browser = launch_chromium(api, chromium)
                result["browser"] = f"Chromium {browser.version}"
                t0 = time.perf_counter()
                for name in args.widget or sorted(WIDGETS):
                    result["widgets"][name] = time_widget(browser, lab, name, WIDGETS[name], args.rounds)
                result["seconds"] = round(time.perf_counter() - t0, 1)
                browser.close()
        finally:
            lab.stop()
    result["machine"]["uptime_after"] = uptime()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
