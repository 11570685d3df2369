"""Lecture 7's image explorer in a real browser: JupyterLab in Chromium runs the lecture's explorer cell on a
stand-in generator (untrained, with random weights large enough that its images differ from code to code: the
test checks the widget, not the training), then every control is changed and each change must redraw the frame.

Latencies are recorded, never asserted. The screenshot goes into the test's temporary folder; with
``GANCOURSE_UPDATE_FIGURES=1`` the stand-in is a generator trained briefly on MNIST-5k instead (800 steps of the
smoke preset, a few minutes on a CPU), so that docs/figures/image_explorer.png (the README shows it) shows digits.
"""
from __future__ import annotations

import os

import pytest

from browser_lab import (
    IMAGE_STANDIN_SETUP,
    NOTEBOOK_07,
    ROOT,
    canvas_hash,
    change_and_wait,
    frame_state,
    open_notebook,
    set_value,
    tagged_cell_source,
    visible_controls,
    widget_errors,
    widget_screenshot,
    write_notebook,
)

pytest.importorskip("torch")
from gancourse.deep.explorer_widget import CONTROLS  # noqa: E402

pytestmark = pytest.mark.browser

WIDGET = "image explorer"
FIGURE = ROOT / "docs" / "figures" / "image_explorer.png"
MAX_FIGURE_BYTES = 200_000

#: with GANCOURSE_UPDATE_FIGURES=1: a generator trained briefly on MNIST-5k, for the picture in docs/figures
SETUP_TRAINED = """import numpy as np
import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.train_gan import GANTrainer, dcgan_preset

trainer = GANTrainer(dcgan_preset(tier="smoke", steps=800), mnist5k("train")[0], "cpu")
trainer.train(progress=False)"""
UPDATE = os.environ.get("GANCOURSE_UPDATE_FIGURES") == "1"

SCRIPT: list[tuple[str, str]] = [
    ("t", "0.2"), ("t", "0.9"), ("seed_a", "5"), ("seed_b", "12"), ("method", "lerp"), ("psi", "0.5"),
    ("psi", "0"), ("psi", "1.5"), ("method", "slerp"), ("t", "0"),
]


@pytest.fixture(scope="module")
def page(browser, lab):
    write_notebook(lab.root / "images.ipynb", SETUP_TRAINED if UPDATE else IMAGE_STANDIN_SETUP,
                   tagged_cell_source(NOTEBOOK_07, "image-explorer"))
    p = open_notebook(browser, lab, "images.ipynb", root=".gc-images", timeout_ms=900_000 if UPDATE else 150_000)
    p.set_default_timeout(150_000)
    yield p
    p.close()


@pytest.fixture(scope="module")
def widget(page):
    return page.locator(".gc-images").first


def test_the_lecture_cell_displays_the_explorer(page, widget):
    assert widget_errors(page) == [] and page.script_errors == []
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0  # the cell's checks held
    state = frame_state(widget)
    assert state["frame"] >= 1 and state["error"] == ""
    assert visible_controls(widget) == set(CONTROLS)


def test_the_screenshot(page, widget, tmp_path):
    figure = FIGURE if UPDATE else tmp_path / FIGURE.name
    figure.parent.mkdir(parents=True, exist_ok=True)
    size = widget_screenshot(page, widget, figure, MAX_FIGURE_BYTES)
    assert 5_000 < size <= MAX_FIGURE_BYTES, size


def test_every_control_redraws_the_frame(page, widget, latencies):
    previous = canvas_hash(frame_state(widget))
    changed = set()
    for name, value in SCRIPT:
        after = change_and_wait(widget, set_value(widget, name, value), text=".gc-caption")
        assert after["error"] == "", (name, value, after["error"])
        assert after["hash"] != previous, f"setting {name} to {value!r} did not change the frame"
        previous = after["hash"]
        latencies.append({"widget": WIDGET, "control": name, "value": value, "latency_ms": after["latency"]})
        changed.add(name)
    assert changed == set(CONTROLS)
    assert "diversity (per-pixel std) 0.000" not in widget.locator(".gc-caption").last.inner_text()  # psi 1.5
    assert widget_errors(page) == [] and page.script_errors == []
