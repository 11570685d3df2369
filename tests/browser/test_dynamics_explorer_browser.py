"""Lecture 04's game-dynamics explorer in a real browser: JupyterLab in Chromium runs the lecture's explorer cell,
then every control is changed (and the start moved by a click) and each change must redraw the frame.

Latencies (from a change to the drawn frame, measured in the page) are recorded, never asserted; the session
prints their summary. The screenshot test takes a picture of the first frame into the test's temporary folder;
with ``GANCOURSE_UPDATE_FIGURES=1`` it writes docs/figures/dynamics_explorer.png instead (the README shows it), so
a plain test run leaves the checkout untouched.
"""
from __future__ import annotations

import json
import os
import statistics

import pytest

from browser_lab import (
    ROOT,
    canvas_hash,
    change_and_wait,
    click_field,
    control,
    explorer_cell_source,
    frame_state,
    open_notebook,
    set_value,
    shrink_png,
    visible_controls,
    widget_errors,
    write_notebook,
)
from gancourse.dynamics.explorer import CONTROLS, ExplorerSettings, applicable_controls

pytestmark = pytest.mark.browser

FIGURE = ROOT / "docs" / "figures" / "dynamics_explorer.png"
MAX_FIGURE_BYTES = 200_000

#: (control, value, what it changes among the settings that decide which controls apply): every control at
#: least once, in an order where each one applies when its turn comes. Sliders take a value, A an (entry, number)
#: pair, the start a click at fractions of the field canvas.
SCRIPT: list[tuple[str, object, dict]] = [
    ("loss", "ns", {"loss": "ns"}),
    ("reg", "r1", {"reg": "r1"}),
    ("gamma", "2.5", {}),
    ("reg", "instance-noise", {"reg": "instance-noise"}),
    ("sigma", "1.5", {}),
    ("clipping", True, {"clipping": True}),
    ("clip", "0.5", {}),
    ("method", "altgd", {"method": "altgd"}),
    ("n_d", "3", {}),
    ("n_g", "2", {}),
    ("method", "consensus", {"method": "consensus"}),
    ("consensus", "0.3", {}),
    ("method", "momentum", {"method": "momentum"}),
    ("beta", "-0.2", {}),
    ("alternating", False, {}),
    ("h", "0.2", {}),
    ("steps", "500", {}),
    ("lim", "3", {}),
    ("start", (0.3, 0.3), {}),
    ("game", "xy", {"game": "xy"}),
    ("game", "bilinear", {"game": "bilinear"}),
    ("A", (0, 2.0), {}),
    ("A", (1, 0.5), {}),
    ("A", (2, -0.5), {}),
    ("A", (3, 1.5), {}),
    ("method", "flow", {"method": "flow"}),
    ("game", "dirac", {"game": "dirac"}),
]


@pytest.fixture(scope="module")
def page(browser, lab):
    """Lecture 04's explorer cell, alone in a notebook, opened in JupyterLab and run."""
    write_notebook(lab.root / "explorer.ipynb", explorer_cell_source())
    p = open_notebook(browser, lab, "explorer.ipynb")
    yield p
    p.close()


@pytest.fixture(scope="module")
def explorer(page):
    return page.locator(".gc-explorer").first


def test_the_lecture_cell_displays_the_explorer(page, explorer):
    assert widget_errors(page) == []
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0  # the cell's checks held
    state = frame_state(explorer)
    assert state["frame"] >= 1 and state["error"] == ""
    assert visible_controls(explorer) == applicable_controls(ExplorerSettings())
    assert "linearized: diverges" in explorer.locator(".gc-verdict").inner_text()


def test_the_screenshot_of_the_first_frame(explorer, tmp_path):
    figure = FIGURE if os.environ.get("GANCOURSE_UPDATE_FIGURES") == "1" else tmp_path / FIGURE.name
    figure.parent.mkdir(parents=True, exist_ok=True)
    explorer.screenshot(path=str(figure))
    size = shrink_png(figure, MAX_FIGURE_BYTES)
    assert 10_000 < size <= MAX_FIGURE_BYTES, size


def test_every_control_redraws_the_frame(page, explorer, latencies):
    choice: dict = {}  # the settings that decide which controls apply, as the script changed them
    previous = canvas_hash(frame_state(explorer))
    changed = set()
    for name, value, update in SCRIPT:
        assert name in visible_controls(explorer), f"{name} is hidden before its turn"
        action = click_field(explorer, *value) if name == "start" else set_value(explorer, name, value)
        after = change_and_wait(explorer, action)
        assert after["error"] == "", (name, value, after["error"])
        assert after["hash"] != previous, f"setting {name} to {value!r} did not change the frame"
        previous = after["hash"]
        choice.update(update)
        assert visible_controls(explorer) == applicable_controls(ExplorerSettings(**choice)), (name, value)
        latencies.append({"control": name, "value": value, "latency_ms": after["latency"]})
        changed.add(name)
    assert changed == set(CONTROLS)
    assert "start (1, 1)" not in control(explorer, "start").inner_text()  # the click moved it
    assert widget_errors(page) == []
    ms = [r["latency_ms"] for r in latencies if "widget" not in r]  # this widget's (the others name theirs)
    print(json.dumps({"median_ms": statistics.median(ms), "max_ms": max(ms), "changes": latencies}))
