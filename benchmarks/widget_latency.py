"""How fast the course's browser widgets redraw: latency from a control change to the drawn frame; prints JSON.

    python benchmarks/widget_latency.py                       # every widget, 3 rounds of its changes
    python benchmarks/widget_latency.py --widget dynamics_explorer --rounds 5
    python benchmarks/widget_latency.py --widget gan_lab --play-seconds 20

Starts JupyterLab on 127.0.0.1 with a fresh configuration, opens each widget's lecture cell in Debian's Chromium
(Playwright; nothing is downloaded), makes the widget's list of control changes ``--rounds`` times, one change at
a time, and reads the latency the widget measures in the page: from the change to the end of drawing the frame
that answers it (the browser paints it at its next display refresh). Also reports the kernel's share (computing
the frame) and the drawing's, and the machine's load average (``uptime``) before and after. Results are
recorded in docs/PERFORMANCE.md, never asserted.

The GAN lab is also played for ``--play-seconds`` (after two seconds of warm-up): frames drawn per second and the
engine's training steps per second, both counted in the page, at the lab's default of 10 steps per frame and the
recipe's network sizes; and, for comparison, the same frames made in this process without a browser (training,
laying out and packing each frame), with the share of a core the process got.
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
    IMAGE_STANDIN_SETUP,
    NOTEBOOK_03,
    NOTEBOOK_05B,
    NOTEBOOK_07,
    change_and_wait,
    chromium_path,
    click_field,
    dataset,
    explorer_cell_source,
    launch_chromium,
    open_notebook,
    set_value,
    start_lab,
    tagged_cell_source,
    write_notebook,
)


@dataclass(frozen=True)
class WidgetBench:
    """One widget to time: the notebook cells that show it, its root element, and the changes of each round.

    ``cell()`` gives the source of the cell, or of the cells, to run; ``changes(r)`` lists round ``r``'s (control,
    value) pairs; a value is what :func:`browser_lab.set_value` takes (a slider's value, an option, a checkbox
    state), or for a control named in ``clicks`` the (x, y) fractions of a click on the canvas named there. Rounds
    use different values, so that no round replays frames the kernel has already computed. ``play``: the widget
    has play / pause buttons (the GAN lab), whose rates are measured too.
    """

    cell: Callable[[], str | tuple[str, ...]]
    root: str
    changes: Callable[[int], list[tuple[str, object]]]
    clicks: tuple[tuple[str, str], ...] = (("start", "canvas.gc-field"),)
    play: bool = False


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


def _log(r: int):
    """A value for a log slider, shifted a little in each round (log sliders hold two significant digits)."""
    return lambda x: f"{x * (1 + 0.1 * r):.2g}"


def lab_changes(r: int) -> list[tuple[str, object]]:
    """The GAN lab, paused, as a student sets it up: live changes (the rates, the penalty, the D steps, what to
    draw) and changes that start a new run (the data, the loss, the trick, the seed, a point drawn)."""
    log = _log(r)
    return [
        *(("lr_g", log(v)) for v in (1e-3, 5e-4, 2e-3)), *(("lr_d", log(v)) for v in (5e-3, 1e-3, 3e-3)),
        *(("gamma", log(v)) for v in (0.3, 1.0, 0.1)), ("n_critic", str(2 + r % 3)), ("n_critic", "1"),
        ("steps_per_frame", "20"), ("steps_per_frame", "10"), ("penalty", "r2"), ("penalty", "r1"),
        ("show_heat", False), ("show_heat", True), ("show_arrows", False), ("show_arrows", True),
        ("loss", "hinge"), ("loss", "ns"), ("trick", "spectral norm"), ("trick", "none"), ("seed", str(r + 1)),
        ("data", "grid25"), ("data", "two_moons"), ("data", "drawn"), ("points", (0.3 + 0.05 * r, 0.4)),
        ("data", "ring8"), ("seed", "0"),
    ]


def divergence_changes(r: int) -> list[tuple[str, object]]:
    """The divergence explorer: sliders dragged step by step (q slid across p, widths, weights), the example
    switched and theta moved."""
    d = 0.05 * r
    return [
        *(("q_m1", f"{v + d:.2f}") for v in (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)),
        *(("q_s1", f"{v + d:.2f}") for v in (0.8, 0.6, 0.4)), ("q_w", f"{0.5 + d:.2f}"),
        *(("q_m2", f"{v - d:.2f}") for v in (-2.0, -2.5)), ("q_s2", f"{1.0 + d:.2f}"),
        *(("p_m1", f"{v - d:.2f}") for v in (-1.5, -2.5)), ("p_s2", f"{0.8 + d:.2f}"), ("p_w", f"{0.3 + d:.2f}"),
        ("example", "lines"), *(("theta", f"{v + d:.2f}") for v in (0.5, 1.0, -0.5, -1.5)),
        ("example", "mixtures"),
    ]


def image_changes(r: int) -> list[tuple[str, object]]:
    """The image explorer: the position t dragged along the walk, psi moved down and up, seeds and paths
    changed."""
    d = 0.02 * r
    return [
        *(("t", f"{v + d:.2f}") for v in (0.1, 0.3, 0.5, 0.7, 0.9)),
        *(("psi", f"{v - d:.2f}") for v in (0.9, 0.7, 0.5, 0.3, 1.0)),
        ("seed_a", str(10 + r)), ("seed_b", str(20 + r)), ("method", "lerp"), ("t", "0.5"), ("method", "slerp"),
    ]


#: every widget this benchmark knows; add the course's other browser widgets here
WIDGETS: dict[str, WidgetBench] = {
    "dynamics_explorer": WidgetBench(cell=explorer_cell_source, root=".gc-explorer", changes=explorer_changes),
    "divergence_explorer": WidgetBench(
        cell=lambda: ("import numpy as np", tagged_cell_source(NOTEBOOK_03, "divergence-explorer")),
        root=".gc-divergences", changes=divergence_changes),
    "gan_lab": WidgetBench(cell=lambda: tagged_cell_source(NOTEBOOK_05B, "gan-lab"), root=".gc-lab",
                           changes=lab_changes, clicks=(("points", "canvas.gc-main"),), play=True),
    "image_explorer": WidgetBench(
        cell=lambda: (IMAGE_STANDIN_SETUP, tagged_cell_source(NOTEBOOK_07, "image-explorer")),
        root=".gc-images", changes=image_changes),
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


def play_rates(widget, seconds: float) -> dict:
    """Play the lab for ``seconds`` (after 2 s of warm-up) and count, in the page, the frames drawn and the
    engine's steps; then pause it."""
    def wait(condition: str) -> None:
        widget.page.wait_for_function(f"el => {{ const d = el.dataset; return {condition}; }}",
                                      arg=widget.element_handle(), timeout=120_000)

    widget.locator("button[name=play]").click()
    wait("d.playing === '1'")
    time.sleep(2.0)
    a, t0 = dataset(widget), time.perf_counter()
    time.sleep(seconds)
    b, t1 = dataset(widget), time.perf_counter()
    widget.locator("button[name=play]").click()
    wait("d.playing === '0'")
    dt = t1 - t0
    return {"seconds": round(dt, 1), "frames_per_s": round((int(b["frame"]) - int(a["frame"])) / dt, 1),
            "steps_per_s": round((int(b["step"]) - int(a["step"])) / dt, 1),
            "kernel_fps_last_second": float(b["kernelFps"]), "kernel_steps_per_s_last_second": float(b["stepsPerS"])}


def lab_without_browser(seconds: float) -> dict:
    """The lab's frames made in this process (train 10 steps, lay out, pack as a message), for ``seconds``: frames
    and steps per second, and the share of one core the process got (CPU time over wall time)."""
    from gancourse.viz.gan_lab import LabSession
    from gancourse.viz.lab_widget import frame_message

    session = LabSession()
    info = {"number": 0, "request": 0, "error": "", "playing": True, "fps": 0.0, "steps_per_s": 0.0}
    for _ in range(5):  # warm-up
        session.advance()
        frame_message(session.frame(), info)
    frames, steps = 0, session.step
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        session.advance()
        frame_message(session.frame(), info)
        frames += 1
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": round(dt, 1), "frames_per_s": round(frames / dt, 1),
            "steps_per_s": round((session.step - steps) / dt, 1), "cpu_over_wall": round(dc / dt, 2),
            "ms_per_frame_cpu": round(1e3 * dc / frames, 1)}


def time_widget(browser, lab, name: str, bench: WidgetBench, rounds: int, play_seconds: float = 10.0) -> dict:
    cells = bench.cell()
    write_notebook(lab.root / f"{name}.ipynb", *((cells,) if isinstance(cells, str) else cells))
    page = open_notebook(browser, lab, f"{name}.ipynb", root=bench.root)
    widget = page.locator(bench.root).first
    clicks = dict(bench.clicks)
    rows = []
    play = None
    try:
        for r in range(rounds):
            for control, value in bench.changes(r):
                action = click_field(widget, *value, canvas=clicks[control]) if control in clicks else \
                    set_value(widget, control, value)
                state = change_and_wait(widget, action, hash=False)
                if state["error"]:
                    raise RuntimeError(f"{name}: {control} = {value!r} gave an error: {state['error']}")
                rows.append({"round": r, "control": control, "latency_ms": state["latency"],
                             "kernel_ms": state["compute"], "draw_ms": state["draw"]})
        if bench.play:
            play = play_rates(widget, play_seconds)
    finally:
        page.close()
    by_control: dict[str, list[float]] = {}
    for row in rows:
        by_control.setdefault(row["control"], []).append(row["latency_ms"])
    out = {
        "changes": len(rows),
        "latency": summary([r["latency_ms"] for r in rows]),
        "kernel": summary([r["kernel_ms"] for r in rows]),
        "draw": summary([r["draw_ms"] for r in rows]),
        "median_ms_by_control": {k: round(statistics.median(v), 1) for k, v in sorted(by_control.items())},
    }
    if play is not None:
        out["play"] = {**play, "uptime": uptime()}
        out["play_without_browser"] = {**lab_without_browser(min(play_seconds, 10.0)), "uptime": uptime()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widget", choices=sorted(WIDGETS), action="append",
                        help="time only this widget (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="how often each widget's changes are made")
    parser.add_argument("--play-seconds", type=float, default=10.0, help="how long the GAN lab plays when timed")
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
                    result["widgets"][name] = time_widget(browser, lab, name, WIDGETS[name], args.rounds,
                                                          args.play_seconds)
                result["seconds"] = round(time.perf_counter() - t0, 1)
                browser.close()
        finally:
            lab.stop()
    result["machine"]["uptime_after"] = uptime()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
