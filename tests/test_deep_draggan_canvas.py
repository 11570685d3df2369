"""The DragGAN canvas's kernel side: points, the drag/undo/reset/clear actions, the frames and the refusals (the
browser side is tested in tests/browser/test_draggan_canvas_browser.py)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

pytest.importorskip("anywidget")

from gancourse.deep.draggan import drag, stylegan_renderer  # noqa: E402
from gancourse.deep.draggan_canvas import (  # noqa: E402
    ACTIONS, MAX_PAIRS, DragCanvas, DragCanvasWidget, check_points, drag_canvas, split_pairs,
)
from gancourse.deep.draggan_eval import generated_styles  # noqa: E402
from gancourse.deep.draggan_widget import DragSession  # noqa: E402
from gancourse.deep.stylegan import StyleGenerator  # noqa: E402

torch.set_num_threads(1)
S = 32
DRAG = dict(lr=0.01, r1=2.0, r2=3, tolerance=1.0)


@pytest.fixture(scope="module")
def renderer():
    torch.manual_seed(0)  # a tiny StyleGAN with random weights: the canvas is tested, not the training
    return stylegan_renderer(StyleGenerator(z_dim=8, w_dim=8, mapping_layers=2, width=4))


@pytest.fixture(scope="module")
def ws0(renderer):
    return generated_styles(renderer.G, 1, seed=0, psi=0.7)


@pytest.fixture
def widget(renderer, ws0) -> DragCanvasWidget:
    return drag_canvas(DragSession(renderer, ws0, n_edit=renderer.n_spatial, **DRAG), steps=40)


def send(w: DragCanvasWidget, request: int, **changes) -> dict:
    w._on_msg(w, {"type": "change", "request": request, "changes": changes}, [])
    return w.last


def shown_image(w: DragCanvasWidget) -> np.ndarray:
    """The image of the widget's current frame as the browser reads it: (S, S, C) float32."""
    msg, buffers = w.render_frame({})
    arrays = dict(zip(msg["buffers"], buffers))
    return np.frombuffer(arrays["image"], dtype=np.float32).reshape(msg["size"], msg["size"], msg["channels"])


# ------------------------------------------------------------------------------------------ points
def test_check_points_accepts_pixels_and_names_a_bad_point():
    assert check_points([[0, 0], (31, 12.5)], S) == ((0.0, 0.0), (31.0, 12.5))
    assert check_points([], S) == ()
    with pytest.raises(ValueError, match=r"point 1 = \(32, 3\) lies outside the 32x32 image.*\[0, 31\]"):
        check_points([[1, 1], [32, 3]], S)
    with pytest.raises(ValueError, match=r"point 0 = \(-1, 3\)"):
        check_points([[-1, 3]], S)
    with pytest.raises(ValueError, match="outside"):
        check_points([[float("nan"), 3]], S)
    with pytest.raises(ValueError, match="point 0 must be a pair of numbers"):
        check_points([[1, 2, 3]], S)
    with pytest.raises(ValueError, match="point 0 must be a pair of numbers"):
        check_points([["a", 2]], S)
    with pytest.raises(ValueError, match="list of"):
        check_points("12", S)
    with pytest.raises(ValueError, match=f"at most {MAX_PAIRS} handle/target pairs"):
        check_points([[1, 1]] * (2 * MAX_PAIRS + 1), S)


def test_split_pairs_leaves_out_an_unpaired_handle():
    h, t = split_pairs(((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0), (9.0, 9.0)))
    assert h.tolist() == [[1, 2], [5, 6]] and t.tolist() == [[3, 4], [7, 8]]
    h, t = split_pairs(())
    assert h.shape == t.shape == (0, 2)


# ------------------------------------------------------------------------------------------ messages
def test_hello_answers_the_first_frame_with_the_image(widget):
    widget._on_msg(widget, {"type": "hello"}, [])
    msg = widget.last
    json.dumps(msg, allow_nan=False)  # strict JSON, as Jupyter needs it
    assert msg["type"] == "frame" and msg["request"] == 0 and msg["size"] == S and msg["channels"] == 1
    assert msg["points"] == [] and msg["drags"] == 0 and msg["path_shape"] == [0, 0]
    assert "click a handle" in msg["status"] and msg["compute_ms"] >= 0
    with torch.no_grad():
        expected = ((widget.session.image()[0].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    assert np.allclose(shown_image(widget), expected, atol=1e-6)
    widget._on_msg(widget, {"type": "something else"}, [])  # other messages are ignored
    assert widget.last is msg


def test_clicked_points_come_back_with_what_to_click_next(widget):
    msg = send(widget, 1, points=[[10, 10]])
    assert msg["type"] == "frame" and msg["points"] == [[10, 10]] and "click the target" in msg["status"]
    msg = send(widget, 2, points=[[10, 10], [13, 14]])
    assert msg["points"] == [[10, 10], [13, 14]] and "1 pair, handle-to-target distance 5.0 px" in msg["status"]
    msg = send(widget, 3, points=[[10, 10], [13, 14], [20, 20], [20, 24]])
    assert "2 pairs, handle-to-target distance 4.5 px (mean)" in msg["status"]
    msg = send(widget, 4, action="clear")
    assert msg["points"] == [] and msg["status"].startswith("points cleared") and widget.session.history == []


def test_bad_changes_are_answered_with_a_message_and_change_nothing(widget):
    send(widget, 1, points=[[10, 10], [13, 14]])
    before = widget.current
    for request, changes, match in [
        (2, {"points": [[10, 10], [40, 2]]}, r"point 1 = \(40, 2\) lies outside the 32x32 image"),
        (3, {"steps": 0}, r"steps must be an integer in \[5, 300\]"),
        (4, {"steps": 2.5}, "steps must be an integer"),
        (5, {"action": "fly"}, "drag.*undo.*reset.*clear"),
        (6, {"zoom": 2}, r"unknown DragGAN canvas changes \['zoom'\]; valid ones are: points, steps, action"),
        (7, {"action": "drag", "points": []}, "no handle/target pair to drag"),
        (8, {"action": "drag", "points": [[10, 10]]}, r"handle at \(10, 10\) has no target yet"),
        (9, {"action": "drag", "points": [[10, 10], [13, 14], [20, 20]]}, r"handle at \(20, 20\) has no target"),
        (10, {"action": "drag", "points": [[10, 10], [40, 14]]}, "outside"),
    ]:
        msg = send(widget, request, **changes)
        assert msg == {"type": "error", "request": request, "error": msg["error"]}, msg
        assert re.search(match, msg["error"]), (match, msg["error"])
        assert widget.current == before and widget.session.history == []  # nothing changed
    assert set(ACTIONS) == {"drag", "undo", "reset", "clear"}


def test_undo_and_reset_without_drags_do_nothing_wrong(widget):
    msg = send(widget, 1, action="undo")
    assert msg["type"] == "frame" and "0 drags applied" in msg["status"]
    msg = send(widget, 2, points=[[3, 3]], action="reset")
    assert msg["type"] == "frame" and msg["points"] == [] and msg["status"].startswith("reset")


# ------------------------------------------------------------------------------------------ dragging
def test_a_drag_moves_the_handle_towards_its_target_and_undo_brings_everything_back(widget):
    image0 = shown_image(widget).copy()
    clicked = [[10, 10], [15, 13]]
    send(widget, 1, points=clicked, steps=40)
    msg = send(widget, 2, action="drag")
    assert msg["type"] == "frame" and msg["action"] == "drag" and msg["drags"] == 1
    result = widget.session.history[-1]
    (d0,), (d1,) = msg["distance_before"], msg["distance_after"]
    assert d0 == pytest.approx(34 ** 0.5) and d1 < 0.5 * d0  # the tracked handle got at least twice as close
    assert 1 <= msg["drag_steps"] <= 40 and msg["drag_seconds"] > 0
    assert f"handle-to-target distance {d0:.1f} → {d1:.1f} px" in msg["status"]
    # the handle now sits where tracking found it, the target stays
    assert msg["points"] == [result.handles[0].tolist(), [15, 13]]
    assert msg["path_shape"] == [result.path.shape[0], 1] and result.path[0].tolist() == [[10, 10]]
    after = shown_image(widget)
    assert np.abs(after - image0).max() > 1e-3  # the image changed
    with torch.no_grad():
        assert np.allclose(after[..., 0], (result.image[0, 0].clamp(-1, 1).numpy() + 1) / 2, atol=1e-6)

    msg = send(widget, 3, action="undo")
    assert msg["drags"] == 0 and msg["points"] == clicked and msg["path_shape"] == [0, 0]
    assert np.array_equal(shown_image(widget), image0)  # exactly the first image again


def test_several_pairs_are_one_drag_of_the_session(renderer, ws0):
    session = DragSession(renderer, ws0, n_edit=renderer.n_spatial, **DRAG)
    w = drag_canvas(session, steps=15)
    points = [[9, 9], [12, 9], [22, 20], [22, 17]]
    msg = send(w, 1, points=points, action="drag")
    assert msg["type"] == "frame" and len(msg["distance_before"]) == 2 and "2 pairs" in msg["status"]
    # the same drag called directly: the canvas adds no drag logic of its own
    direct = drag(renderer, ws0, torch.tensor([[9.0, 9], [22, 20]]), torch.tensor([[12.0, 9], [22, 17]]), steps=15,
                  n_edit=renderer.n_spatial, **DRAG)
    assert torch.equal(session.ws, direct.ws) and torch.equal(session.history[-1].path, direct.path)
    assert msg["points"][1] == [12, 9] and msg["points"][3] == [22, 17]
    assert msg["points"][0] == direct.handles[0].tolist() and msg["points"][2] == direct.handles[1].tolist()


def test_drags_build_on_each_other_then_reset(widget):
    image0 = shown_image(widget).copy()
    send(widget, 1, points=[[10, 10], [13, 10]], action="drag")
    ws1 = widget.session.ws.clone()
    image1 = shown_image(widget).copy()
    msg = send(widget, 2, points=[*widget.last["points"], [20, 20], [20, 23]], action="drag")
    assert msg["drags"] == 2 and msg["status"].startswith("drag 2: 2 pairs")
    assert not torch.equal(widget.session.ws, ws1)
    msg = send(widget, 3, action="undo")
    assert msg["drags"] == 1 and torch.equal(widget.session.ws, ws1) and np.array_equal(shown_image(widget), image1)
    assert len(msg["points"]) == 4 and msg["path_shape"][1] == 1  # the first drag's path again
    msg = send(widget, 4, action="reset")
    assert msg["drags"] == 0 and msg["points"] == [] and np.array_equal(shown_image(widget), image0)
    assert widget.canvas.before == [] and widget.canvas.drag_seconds == []


def test_the_canvas_refuses_what_it_cannot_use(renderer, ws0):
    session = DragSession(renderer, ws0)
    with pytest.raises(TypeError, match="DragSession"):
        DragCanvas(object())
    with pytest.raises(ValueError, match="steps"):
        DragCanvas(session, steps=1000)
    with pytest.raises(ValueError, match="scale"):
        drag_canvas(session, scale=0)
    w = drag_canvas(session, steps=25, scale=6)
    assert w.scale == 6 and w.settings == {"steps": 25} and [s["name"] for s in w.specs] == ["steps"]
    assert "function explorerLoop" in w._esm and "gc-drag" in w._esm  # widget_common.js, then its own module


def test_session_run_takes_one_point_or_several(renderer, ws0):
    a = DragSession(renderer, ws0, n_edit=renderer.n_spatial, steps=5, **DRAG)
    b = DragSession(renderer, ws0, n_edit=renderer.n_spatial, steps=5, **DRAG)
    a.run((10, 10), (13, 10))
    b.run([[10, 10]], [[13, 10]])
    assert torch.equal(a.ws, b.ws)
    with pytest.raises(ValueError, match="one shape"):
        a.run([[10, 10], [12, 12]], [[13, 10]])


def test_a_running_drag_reports_its_progress(renderer, ws0):
    sent = []
    canvas = DragCanvas(DragSession(renderer, ws0, n_edit=renderer.n_spatial, **DRAG), steps=10, progress_every=0.0,
                        on_progress=lambda msg, buffers: sent.append((msg, buffers)))
    canvas.apply({"points": [[10, 10], [16, 10]], "action": "drag"})
    result = canvas.session.history[-1]
    assert [m["step"] for m, _ in sent] == list(range(1, result.steps + 1))  # every step after the start
    for (msg, buffers), handles in zip(sent, result.path[1:]):
        json.dumps(msg, allow_nan=False)
        assert msg["type"] == "progress" and msg["steps"] == 10 and msg["buffers"] == ["image"]
        assert msg["points"] == [handles[0].tolist(), [16, 10]]
        assert msg["distance"] == pytest.approx(float((torch.tensor([16.0, 10]) - handles[0]).norm()))
    last = np.frombuffer(sent[-1][1][0], dtype=np.float32).reshape(S, S, 1)
    assert np.array_equal(last, canvas.image())  # the last progress image is the drag's result
    # the widget sends them to the browser; without a listener (a session, or progress_every) nothing is sent
    w = DragCanvasWidget(DragCanvas(DragSession(renderer, ws0), steps=5, progress_every=0.0))
    assert w.canvas.on_progress is not None
    quiet = DragCanvas(DragSession(renderer, ws0), steps=5)
    assert quiet._live(torch.zeros(1, 2), 5) == {}
    with pytest.raises(ValueError, match="progress_every"):
        DragCanvas(DragSession(renderer, ws0), progress_every=-1)
