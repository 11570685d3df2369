"""Lecture 5b's GAN lab in a real browser: JupyterLab in Chromium runs the lecture's lab cell; play must run frames
with the engine's step advancing, pause must stop them, step must advance exactly one frame's steps, and every
control must redraw the frame.

Latencies (from a change to the drawn frame that answers it) and the rates of play (frames drawn per second, the
kernel's training steps per second) are recorded, never asserted. The screenshot, taken after play, goes into the
test's temporary folder, or with ``GANCOURSE_UPDATE_FIGURES=1`` to docs/figures/gan_lab.png (the README shows it).
"""
from __future__ import annotations

import json
import os
import time

import pytest

from browser_lab import (
    NOTEBOOK_05B,
    ROOT,
    canvas_hash,
    change_and_wait,
    click_field,
    dataset,
    frame_state,
    open_notebook,
    set_value,
    tagged_cell_source,
    visible_controls,
    widget_errors,
    widget_screenshot,
    write_notebook,
)
from gancourse.viz.gan_lab import CONTROLS, LabSettings, applicable_controls

pytestmark = pytest.mark.browser

WIDGET = "GAN lab"
FIGURE = ROOT / "docs" / "figures" / "gan_lab.png"
MAX_FIGURE_BYTES = 200_000
LOCAL = {"show_heat", "show_real", "show_fake", "show_manifold", "show_arrows"}  # what to draw: the browser's own
TITLE = ".gc-title"  # live changes of a paused lab change the title (the settings), not yet the pictures

#: (control, value, what it changes among the settings that decide which controls apply), every control at least
#: once, each when it applies; "points" clicks the canvas at fractions (x, y), "points_new" clears the drawing first.
#: What to draw is switched off and on first, while the generator is trained (at step 0 its samples and its
#: manifold sit on one spot, the samples over the manifold).
SCRIPT: list[tuple[str, object, dict]] = [
    *((name, state, {}) for name in sorted(LOCAL) for state in (False, True)),
    ("seed", "3", {}),
    ("loss", "hinge", {"loss": "hinge"}),
    ("penalty", "wgan-gp", {"penalty": "wgan-gp"}),
    ("gamma", "1", {}),
    ("trick", "spectral norm", {"trick": "spectral norm"}),
    ("lr_g", "0.001", {}),
    ("lr_d", "0.005", {}),
    ("n_critic", "2", {}),
    ("steps_per_frame", "20", {}),
    ("penalty", "none", {"penalty": "none"}),
    ("loss", "ns", {"loss": "ns"}),
    ("trick", "label smoothing", {"trick": "label smoothing"}),
    ("data", "grid25", {"data": "grid25"}),
    ("data", "two_moons", {"data": "two_moons"}),
    ("data", "spiral", {"data": "spiral"}),
    ("data", "drawn", {"data": "drawn"}),
    ("points", (0.3, 0.3), {}),
    ("points_new", (0.7, 0.6), {}),
    ("data", "ring8", {"data": "ring8"}),
]


@pytest.fixture(scope="module")
def page(browser, lab):
    """Lecture 5b's lab cell, alone in a notebook, opened in JupyterLab and run."""
    write_notebook(lab.root / "gan_lab.ipynb", tagged_cell_source(NOTEBOOK_05B, "gan-lab"))
    p = open_notebook(browser, lab, "gan_lab.ipynb", root=".gc-lab")
    yield p
    p.close()


@pytest.fixture(scope="module")
def widget(page):
    return page.locator(".gc-lab").first


def wait_for(widget, condition: str, timeout_ms: float = 60_000) -> None:
    """Wait until the JavaScript ``condition`` on the root's dataset ``d`` holds."""
    widget.page.wait_for_function(f"el => {{ const d = el.dataset; return {condition}; }}",
                                  arg=widget.element_handle(), timeout=timeout_ms)


def button(widget, name: str):
    return widget.locator(f"button[name={name}]")


def test_the_lecture_cell_displays_the_lab_paused(page, widget):
    assert widget_errors(page) == [] and page.script_errors == []
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0  # the cell's checks held
    wait_for(widget, "d.step === '10'")  # the cell trained one frame before showing the lab
    d = dataset(widget)
    assert d["playing"] == "0" and int(d["frame"]) >= 1
    assert visible_controls(widget) == applicable_controls(LabSettings()) | LOCAL


def test_play_runs_pause_stops_and_step_trains_one_frame(page, widget, latencies):
    spf = LabSettings().steps_per_frame
    start = int(dataset(widget)["step"])
    button(widget, "play").click()
    wait_for(widget, f"d.playing === '1' && Number(d.step) >= {start + 5 * spf}")
    time.sleep(1.0)  # a second of play, for the rates
    playing = dataset(widget)
    button(widget, "play").click()  # now labelled pause
    wait_for(widget, "d.playing === '0'")
    stopped = int(dataset(widget)["step"])
    assert stopped > start and (stopped - start) % spf == 0
    time.sleep(1.0)
    assert int(dataset(widget)["step"]) == stopped  # paused: no more training
    frames = int(dataset(widget)["frame"])
    button(widget, "step").click()
    wait_for(widget, f"Number(d.frame) > {frames} && d.step !== '{stopped}'")
    time.sleep(0.3)
    assert int(dataset(widget)["step"]) == stopped + spf and dataset(widget)["playing"] == "0"
    assert page.script_errors == []
    rates = {"widget": WIDGET, "fps_drawn": float(playing["fps"]), "kernel_fps": float(playing["kernelFps"]),
             "steps_per_s": float(playing["stepsPerS"]), "load": os.getloadavg()[0]}
    print(json.dumps(rates))


def test_the_screenshot_after_play(page, widget, tmp_path):
    """A picture of the lab once play has trained it a while (for docs/figures: 1,500 steps, about a second of
    play on a quiet core)."""
    update = os.environ.get("GANCOURSE_UPDATE_FIGURES") == "1"
    figure = FIGURE if update else tmp_path / FIGURE.name
    if update:
        button(widget, "play").click()
        wait_for(widget, "d.playing === '1' && Number(d.step) >= 1500", timeout_ms=120_000)
        button(widget, "play").click()
        wait_for(widget, "d.playing === '0'")
    figure.parent.mkdir(parents=True, exist_ok=True)
    size = widget_screenshot(page, widget, figure, MAX_FIGURE_BYTES)
    assert 10_000 < size <= MAX_FIGURE_BYTES, size


def test_every_control_redraws_the_frame(page, widget, latencies):
    choice: dict = {}
    previous = canvas_hash(frame_state(widget, text=TITLE))
    changed = set()
    for name, value, update in SCRIPT:
        control = "points" if name.startswith("points") else name
        assert control in visible_controls(widget), f"{control} is hidden before its turn"
        if name == "points_new":
            widget.locator("button[name=clear]").click()
        action = click_field(widget, *value, canvas="canvas.gc-main") if control == "points" else \
            set_value(widget, name, value)
        after = change_and_wait(widget, action, text=TITLE)
        assert after["error"] == "", (name, value, after["error"])
        assert after["hash"] != previous, f"setting {name} to {value!r} did not change the frame"
        previous = after["hash"]
        choice.update(update)
        assert visible_controls(widget) == applicable_controls(LabSettings(**choice)) | LOCAL, (name, value)
        if choice.get("trick") == "label smoothing":  # the losses it cannot be combined with are greyed out
            assert widget.locator("select[name=loss] option[value=hinge]").is_disabled()
        latencies.append({"widget": WIDGET, "control": name, "value": value, "latency_ms": after["latency"]})
        changed.add(control)
    assert changed == set(CONTROLS) | LOCAL
    assert "1 point:" in widget.locator(".gc-hint").inner_text()  # the new drawing has the one point clicked
    assert widget_errors(page) == [] and page.script_errors == []
    ms = [r["latency_ms"] for r in latencies if r.get("widget") == WIDGET]
    print(json.dumps({"median_ms": sorted(ms)[len(ms) // 2], "max_ms": max(ms)}))
