"""Lecture 3's divergence explorer in a real browser: JupyterLab in Chromium runs the lecture's explorer cell, then
every slider of both examples is moved and each change must redraw the frame; a component of weight 0 has its
sliders disabled.

Latencies are recorded, never asserted. The screenshot goes into the test's temporary folder, or with
``GANCOURSE_UPDATE_FIGURES=1`` to docs/figures/divergence_explorer.png (the README shows it).
"""
from __future__ import annotations

import os

import pytest

from browser_lab import (
    NOTEBOOK_03,
    ROOT,
    canvas_hash,
    change_and_wait,
    control,
    frame_state,
    open_notebook,
    set_value,
    tagged_cell_source,
    visible_controls,
    widget_errors,
    widget_screenshot,
    write_notebook,
)
from gancourse.divergences.explorer import CONTROLS, DivergenceSettings, applicable_controls, inactive_controls

pytestmark = pytest.mark.browser

WIDGET = "divergence explorer"
FIGURE = ROOT / "docs" / "figures" / "divergence_explorer.png"
MAX_FIGURE_BYTES = 200_000
VALUES = ".gc-values"  # the numbers under the plots

#: (control, value, settings it changes): every slider once, q's second component after its weight leaves 1
SCRIPT: list[tuple[str, str, dict]] = [
    ("p_m1", "-1.5", {"p_m1": -1.5}), ("p_s1", "0.8", {"p_s1": 0.8}), ("p_m2", "1", {"p_m2": 1.0}),
    ("p_s2", "0.3", {"p_s2": 0.3}), ("p_w", "0.7", {"p_w": 0.7}),
    ("q_m1", "1.5", {"q_m1": 1.5}), ("q_s1", "0.4", {"q_s1": 0.4}), ("q_w", "0.5", {"q_w": 0.5}),
    ("q_m2", "-3", {"q_m2": -3.0}), ("q_s2", "1.2", {"q_s2": 1.2}),
    ("p_w", "0", {"p_w": 0.0}),  # component 1 of p has no weight: its sliders are disabled
    ("example", "lines", {"example": "lines"}), ("theta", "0.5", {"theta": 0.5}), ("theta", "-1.2", {"theta": -1.2}),
    ("example", "mixtures", {"example": "mixtures"}),
]


@pytest.fixture(scope="module")
def page(browser, lab):
    """Lecture 3's explorer cell, after the imports it needs, in a notebook opened in JupyterLab and run."""
    write_notebook(lab.root / "divergences.ipynb", "import numpy as np",
                   tagged_cell_source(NOTEBOOK_03, "divergence-explorer"))
    p = open_notebook(browser, lab, "divergences.ipynb", root=".gc-divergences")
    yield p
    p.close()


@pytest.fixture(scope="module")
def widget(page):
    return page.locator(".gc-divergences").first


def disabled_controls(widget) -> set[str]:
    return set(widget.evaluate("""el => Array.from(el.querySelectorAll('.gc-control[data-control]'))
        .filter(c => !c.hidden && c.querySelector('input, select').disabled).map(c => c.dataset.control)"""))


def test_the_lecture_cell_displays_the_explorer(page, widget):
    assert widget_errors(page) == [] and page.script_errors == []
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0
    state = frame_state(widget)
    assert state["frame"] >= 1 and state["error"] == ""
    s = DivergenceSettings()
    assert visible_controls(widget) == applicable_controls(s) and disabled_controls(widget) == inactive_controls(s)
    assert "JSD 0.349" in widget.locator(VALUES).inner_text()


def test_the_screenshot(page, widget, tmp_path):
    figure = FIGURE if os.environ.get("GANCOURSE_UPDATE_FIGURES") == "1" else tmp_path / FIGURE.name
    figure.parent.mkdir(parents=True, exist_ok=True)
    size = widget_screenshot(page, widget, figure, MAX_FIGURE_BYTES)
    assert 10_000 < size <= MAX_FIGURE_BYTES, size


def test_every_control_redraws_the_frame(page, widget, latencies):
    settings: dict = {}
    previous = canvas_hash(frame_state(widget, text=VALUES))
    changed = set()
    for name, value, update in SCRIPT:
        assert name in visible_controls(widget) and name not in disabled_controls(widget), name
        after = change_and_wait(widget, set_value(widget, name, value), text=VALUES)
        assert after["error"] == "", (name, value, after["error"])
        assert after["hash"] != previous, f"setting {name} to {value!r} did not change the frame"
        previous = after["hash"]
        settings.update(update)
        s = DivergenceSettings(**settings)
        assert visible_controls(widget) == applicable_controls(s), (name, value)
        assert disabled_controls(widget) == inactive_controls(s), (name, value)
        latencies.append({"widget": WIDGET, "control": name, "value": value, "latency_ms": after["latency"]})
        changed.add(name)
    assert changed == set(CONTROLS)
    assert "p_m1" in disabled_controls(widget) and control(widget, "p_m1").is_visible()
    assert widget_errors(page) == [] and page.script_errors == []
