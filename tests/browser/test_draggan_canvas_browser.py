"""Lecture 21's DragGAN canvas in a real browser: JupyterLab in Chromium runs the lecture's canvas cell on a
stand-in generator (a tiny StyleGAN with random weights: the test checks the widget, not the training); the mouse
clicks a handle and a target on the canvas, *Drag* must change the image and report the handle-to-target distance,
*Undo* must bring back exactly what was there before the drag, and *Drag* with a handle but no target must be
answered with a message, not a traceback.

Latencies (from a click or a button press to the drawn frame that answers it; a drag's includes the drag itself)
are recorded, never asserted. The screenshot, taken after a drag of two pairs at once, goes into the test's
temporary folder; with ``GANCOURSE_UPDATE_FIGURES=1`` the stand-in is lecture 21's generator instead (the mini
StyleGAN's lecture preset trained on MNIST-5k, or a checkpoint of that run named by
``GANCOURSE_DRAGGAN_CHECKPOINT``), so that docs/figures/draggan_canvas.png shows a digit.
"""
from __future__ import annotations

import os
import re

import pytest

from browser_lab import (
    NOTEBOOK_21,
    ROOT,
    canvas_hash,
    change_and_wait,
    frame_state,
    open_notebook,
    tagged_cell_source,
    widget_errors,
    widget_screenshot,
    write_notebook,
)

pytest.importorskip("torch")
pytest.importorskip("anywidget")

pytestmark = pytest.mark.browser

WIDGET = "DragGAN canvas"
FIGURE = ROOT / "docs" / "figures" / "draggan_canvas.png"
MAX_FIGURE_BYTES = 200_000
UPDATE = os.environ.get("GANCOURSE_UPDATE_FIGURES") == "1"
DISTANCE = re.compile(r"handle-to-target distance (\d+\.\d) → (\d+\.\d) px")

#: what lecture 21's canvas cell needs (R, ws_demo, DRAG, DragSession), with an untrained tiny StyleGAN
SETUP_STANDIN = """import torch

from gancourse.deep.draggan import stylegan_renderer
from gancourse.deep.draggan_eval import generated_styles
from gancourse.deep.draggan_widget import DragSession
from gancourse.deep.stylegan import StyleGenerator

torch.set_num_threads(1)
torch.manual_seed(0)
G = StyleGenerator(z_dim=8, w_dim=8, mapping_layers=2, width=4)  # untrained: the widget is tested, not the training
R = stylegan_renderer(G, layer=4)
ws_demo = generated_styles(G, 8, seed=1, psi=0.7)
DRAG = dict(steps=40, lr=0.01, r1=2.0, r2=3, tolerance=1.0, n_edit=R.n_spatial)"""

#: with GANCOURSE_UPDATE_FIGURES=1: the generator of lecture 21 (the mini StyleGAN's lecture preset, trained on
#: MNIST-5k, some ten CPU minutes) for the picture in docs/figures; GANCOURSE_DRAGGAN_CHECKPOINT may name a checkpoint
#: of that finished run (``gancourse train stylegan --tier lecture``) to load instead of training it again
SETUP_TRAINED = """import os

import torch

from gancourse.deep.data import mnist5k
from gancourse.deep.draggan import stylegan_renderer
from gancourse.deep.draggan_eval import generated_styles
from gancourse.deep.draggan_widget import DragSession
from gancourse.deep.train_stylegan import StyleGANTrainer, stylegan_preset

torch.set_num_threads(2)
trainer = StyleGANTrainer(stylegan_preset(tier="lecture"), mnist5k("train")[0], "cpu")
if os.environ.get("GANCOURSE_DRAGGAN_CHECKPOINT"):
    trainer.load(os.environ["GANCOURSE_DRAGGAN_CHECKPOINT"])  # checks the config and the training data
else:
    trainer.train(progress=False)
assert trainer.step == trainer.config.steps
G = trainer.G_ema
R = stylegan_renderer(G, layer=4)
ws_demo = generated_styles(G, 8, seed=1, psi=0.7)
DRAG = dict(steps=300, lr=0.01, r1=2.0, r2=3, tolerance=1.0, n_edit=R.n_spatial)"""


@pytest.fixture(scope="module")
def page(browser, lab):
    write_notebook(lab.root / "draggan.ipynb", SETUP_TRAINED if UPDATE else SETUP_STANDIN,
                   tagged_cell_source(NOTEBOOK_21, "draggan-canvas"))
    p = open_notebook(browser, lab, "draggan.ipynb", root=".gc-drag", timeout_ms=1_200_000 if UPDATE else 150_000)
    p.set_default_timeout(150_000)
    yield p
    p.close()


@pytest.fixture(scope="module")
def widget(page):
    return page.locator(".gc-drag").first


def image_size(widget) -> int:
    return int(re.match(r"(\d+)x", widget.locator(".gc-caption").inner_text()).group(1))


def pixel_values(widget) -> list[int]:
    """The canvas's red channel at the centre of each image pixel, row by row (S * S values)."""
    s = image_size(widget)
    return widget.evaluate("""(el, S) => {
        const c = el.querySelector('canvas.gc-image');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const k = c.width / S, out = [];
        for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
            const px = Math.floor((x + 0.5) * k), py = Math.floor((y + 0.5) * k);
            out.push(data[4 * (py * c.width + px)]);
        }
        return out;
    }""", s)


def ink_pixel(widget, rows: tuple[float, float] = (0.25, 0.75)) -> tuple[int, int]:
    """The brightest pixel (x, y) in the central half of the columns and the fraction ``rows`` of the rows of the
    image: a handle on the digit's ink."""
    s, values = image_size(widget), pixel_values(widget)
    area = [(x, y) for y in range(int(rows[0] * s), int(rows[1] * s)) for x in range(s // 4, 3 * s // 4)]
    return max(area, key=lambda p: values[p[1] * s + p[0]])


def click_pixel(widget, x: int, y: int):
    """An action that clicks the mouse on the centre of image pixel (x, y) of the canvas."""
    canvas = widget.locator("canvas.gc-image")

    def act() -> None:
        box = canvas.bounding_box()
        s = image_size(widget)
        canvas.page.mouse.click(box["x"] + (x + 0.5) * box["width"] / s, box["y"] + (y + 0.5) * box["height"] / s)

    return act


def press(widget, name: str):
    return lambda: widget.locator(f'button[name="{name}"]').click()


def status(widget) -> str:
    return widget.locator(".gc-status").inner_text()


def record(latencies: list, control: str, state: dict, widget=None) -> None:
    """Keep a latency; for a drag, with the number of live frames drawn so far (``data-progress``)."""
    value = "" if widget is None else f"{widget.get_attribute('data-progress') or 0} live frames so far"
    latencies.append({"widget": WIDGET, "control": control, "value": value, "latency_ms": state["latency"]})


def test_the_lecture_cell_displays_the_canvas(page, widget):
    assert widget_errors(page) == [] and page.script_errors == []
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0  # the cell's checks held
    state = frame_state(widget)
    assert state["frame"] >= 1 and state["error"] == ""
    assert image_size(widget) == 32 and "click a handle" in status(widget)
    assert {b.get_attribute("name") for b in widget.locator("button").all()} == {"drag", "undo", "reset", "clear"}
    assert widget.locator('button[name="undo"]').is_disabled()  # no drag yet


def test_click_drag_and_undo(page, widget, latencies):
    x, y = ink_pixel(widget)
    tx = x + 4 if x + 4 < image_size(widget) else x - 4
    first = frame_state(widget)
    handle = change_and_wait(widget, click_pixel(widget, x, y))
    assert handle["error"] == "" and handle["hash"] != canvas_hash(first)  # the red dot is drawn
    record(latencies, "click handle", handle)
    target = change_and_wait(widget, click_pixel(widget, tx, y))
    assert target["error"] == "" and widget.get_attribute("data-points") == "2"
    record(latencies, "click target", target)
    assert "1 pair, handle-to-target distance 4.0 px" in status(widget)
    before = pixel_values(widget)

    dragged = change_and_wait(widget, press(widget, "drag"), timeout_ms=300_000)
    assert dragged["error"] == "", dragged["error"]
    record(latencies, "drag", dragged, widget)
    after = pixel_values(widget)
    changed = sum(abs(a - b) > 2 for a, b in zip(before, after))
    assert changed > 100, f"the drag changed only {changed} of the image's pixels"  # the image, not only the dots
    m = DISTANCE.search(status(widget))
    assert m and float(m.group(1)) == 4.0 and float(m.group(2)) < 4.0, status(widget)  # the handle came closer
    assert dragged["hash"] != target["hash"]
    assert widget.locator('button[name="undo"]').is_enabled()

    undone = change_and_wait(widget, press(widget, "undo"))
    assert undone["error"] == "" and "undone: 0 drags applied" in status(widget)
    record(latencies, "undo", undone)
    assert undone["hash"] == target["hash"]  # exactly the image and the points from before the drag
    assert widget.locator('button[name="undo"]').is_disabled()  # nothing left to undo
    assert widget_errors(page) == [] and page.script_errors == []


def test_drag_without_a_target_is_answered_with_a_message(page, widget, latencies):
    cleared = change_and_wait(widget, press(widget, "clear"))
    assert cleared["error"] == "" and widget.get_attribute("data-points") == "0"
    x, y = ink_pixel(widget)
    change_and_wait(widget, click_pixel(widget, x, y))
    refused = change_and_wait(widget, press(widget, "drag"))
    assert "has no target yet" in refused["error"] and widget.locator(".gc-error").is_visible()
    assert refused["hash"] != cleared["hash"]  # the handle stays drawn
    assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0  # no traceback
    ok = change_and_wait(widget, click_pixel(widget, x, max(0, y - 4)))  # the target: the message goes away
    assert ok["error"] == "" and not widget.locator(".gc-error").is_visible()
    record(latencies, "click target", ok)
    assert widget_errors(page) == [] and page.script_errors == []


def test_two_pairs_in_one_drag_and_the_screenshot(page, widget, tmp_path, latencies):
    reset = change_and_wait(widget, press(widget, "reset"))
    assert reset["error"] == "" and widget.get_attribute("data-points") == "0"
    (x1, y1), (x2, y2) = ink_pixel(widget, (0.2, 0.5)), ink_pixel(widget, (0.5, 0.8))
    for x, y in ((x1, y1), (min(x1 + 5, 31), y1), (x2, y2), (max(x2 - 5, 0), y2)):
        clicked = change_and_wait(widget, click_pixel(widget, x, y))
        assert clicked["error"] == ""
    assert widget.get_attribute("data-points") == "4" and "2 pairs" in status(widget)
    dragged = change_and_wait(widget, press(widget, "drag"), timeout_ms=300_000)
    assert dragged["error"] == "" and "drag 1: 2 pairs" in status(widget)
    m = DISTANCE.search(status(widget))
    assert m and float(m.group(2)) < float(m.group(1)), status(widget)
    record(latencies, "drag 2 pairs", dragged, widget)
    figure = FIGURE if UPDATE else tmp_path / FIGURE.name
    figure.parent.mkdir(parents=True, exist_ok=True)
    size = widget_screenshot(page, widget, figure, MAX_FIGURE_BYTES)
    assert 5_000 < size <= MAX_FIGURE_BYTES, size
    assert widget_errors(page) == [] and page.script_errors == []
