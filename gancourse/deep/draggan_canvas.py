"""DragGAN on a canvas: click a handle, then its target, as many pairs as you like, and press *Drag*.

The browser (``static/draggan_canvas.js``) draws the current image enlarged on a canvas, the clicked handles (red),
targets (blue) and an arrow from each handle to its target; the kernel keeps the image. Every change goes to the
kernel through the request loop of the course's canvas widgets (:class:`gancourse.viz.widget_io.RequestedFrames`)
and is answered with a frame: the image as a float32 buffer (S, S, C) in [0, 1], the clicked points, the tracked
path of the last drag and a status line, or with an error message naming what is wrong (a point outside the image,
*Drag* with no complete pair); the browser keeps its last drawing then. While a drag runs, the kernel also sends
``progress`` messages (the image and the tracked handles so far) a few times a second, drawn as they come.

A change holds any of

- ``points``: every clicked point in order, handle, target, handle, target, ... (``(x, y)`` pixels: ``x`` the
  column, ``y`` the row); an odd count is a handle that waits for its target;
- ``steps``: the most optimiser steps of the next drag;
- ``action``: ``"drag"`` runs :meth:`gancourse.deep.draggan_widget.DragSession.run` on every pair at once (the
  handles then sit where tracking found them, the targets stay), ``"undo"`` forgets the last drag and brings back
  the points it started from, ``"reset"`` goes back to the first image without points, ``"clear"`` removes the
  points and keeps the image.

:class:`DragCanvas` is the logic (tested without a browser), :class:`DragCanvasWidget` the anywidget over it.

>>> canvas = drag_canvas(DragSession(stylegan_renderer(G), ws0, n_edit=5), steps=100)   # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import traitlets

try:
    import anywidget
except ImportError as exc:  # pragma: no cover - anywidget comes with the dev and notebooks extras
    raise ImportError('the DragGAN canvas needs anywidget: python -m pip install -e ".[dev]"') from exc

from gancourse.deep.draggan_widget import DragSession
from gancourse.errors import check_choice, check_positive, check_positive_int
from gancourse.viz.widget_io import STATIC, RequestedFrames, f32, json_safe, module_source

__all__ = ["ACTIONS", "CHANGES", "STEPS_RANGE", "MAX_PAIRS", "CONTROL_SPECS", "CanvasSettings", "check_points",
           "split_pairs", "DragCanvas", "DragCanvasWidget", "drag_canvas"]

ACTIONS = ("drag", "undo", "reset", "clear")
STEPS_RANGE = (5, 300)
MAX_PAIRS = 8
CHANGES = ("points", "steps", "action")

Point = tuple[float, float]


@dataclass(frozen=True)
class CanvasSettings:
    """What the canvas shows besides the image: the clicked ``points`` (handle, target, handle, ...) and the
    ``steps`` of the next drag."""

    points: tuple[Point, ...] = ()
    steps: int = 100


def check_points(points: Any, size: int, max_pairs: int = MAX_PAIRS) -> tuple[Point, ...]:
    """``points`` as a tuple of ``(x, y)`` floats, each a finite pixel position in ``[0, size - 1]``, at most
    ``2 max_pairs`` of them; anything else is refused with a message naming the bad point."""
    if isinstance(points, (str, bytes)) or not hasattr(points, "__len__"):
        raise ValueError(f"points must be a list of (x, y) pairs, got {type(points).__name__}")
    if len(points) > 2 * max_pairs:
        raise ValueError(f"at most {max_pairs} handle/target pairs ({2 * max_pairs} points), got {len(points)} points;"
                         " press Drag or Clear first")
    out = []
    for k, p in enumerate(points):
        ok = (not isinstance(p, (str, bytes)) and hasattr(p, "__len__") and len(p) == 2
              and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in p))
        if not ok:
            raise ValueError(f"point {k} must be a pair of numbers (x, y), got {p!r}")
        x, y = float(p[0]), float(p[1])
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= size - 1 and 0 <= y <= size - 1):
            raise ValueError(f"point {k} = ({x:g}, {y:g}) lies outside the {size}x{size} image: x and y must be in "
                             f"[0, {size - 1}]")
        out.append((x, y))
    return tuple(out)


def split_pairs(points: tuple[Point, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The complete pairs of ``points`` as handles (K, 2) and targets (K, 2) (a last, unpaired handle is left out)."""
    k = len(points) // 2
    p = torch.tensor(points[: 2 * k], dtype=torch.float32).reshape(k, 2, 2)  # (K, handle/target, xy)
    return p[:, 0], p[:, 1]


def _mean(d: torch.Tensor) -> float:
    return float(d.mean()) if len(d) else 0.0


class DragCanvas:
    """The canvas's logic over a :class:`DragSession`: the clicked points, the steps of the next drag, and for
    every drag the points it started from (so that *Undo* brings them back); see the module doc.

    ``session``: the drags (its ``drag_kwargs`` go to every drag, ``steps`` is set here). ``steps``: the default
    most steps of a drag, in ``STEPS_RANGE``. ``max_pairs``: the most handle/target pairs of one drag. While a drag
    runs, ``on_progress(msg, buffers)``, if set, receives :meth:`progress` messages (the image and the tracked
    handles so far) at most every ``progress_every`` seconds (0: after every step), for a live view."""

    def __init__(self, session: DragSession, steps: int = 100, max_pairs: int = MAX_PAIRS,
                 progress_every: float = 0.1,
                 on_progress: Callable[[dict[str, Any], list[bytes]], None] | None = None) -> None:
        if not isinstance(session, DragSession):
            raise TypeError(f"session must be a DragSession, got {type(session).__name__}")
        self.session = session
        self.max_pairs = check_positive_int("max_pairs", max_pairs)
        self.progress_every = check_positive("progress_every", progress_every, allow_zero=True)
        self.on_progress = on_progress
        self.before: list[tuple[Point, ...]] = []  # the points each drag of session.history started from
        self.drag_seconds: list[float] = []
        with torch.no_grad():
            self.size = int(session.image().shape[-1])
        self.settings = CanvasSettings((), self._check_steps(steps))

    @staticmethod
    def _check_steps(steps: Any) -> int:
        lo, hi = STEPS_RANGE
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not lo <= steps <= hi:
            raise ValueError(f"steps must be an integer in [{lo}, {hi}], got {steps!r}")
        return int(steps)

    def image(self) -> np.ndarray:
        """The current image as float32 (S, S, C) in [0, 1]."""
        with torch.no_grad():
            x = self.session.image().detach().float().cpu()[0]  # (C, S, S) in [-1, 1]
        return ((x.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).contiguous().numpy().astype(np.float32)

    def apply(self, changes: dict[str, Any]) -> tuple[CanvasSettings, str]:
        """Check ``changes`` (see the module doc) and carry out their action; returns the new settings and the
        action done (``""`` for none). Nothing changes when a change is refused (``ValueError``)."""
        unknown = sorted(set(changes) - set(CHANGES))
        if unknown:
            raise ValueError(f"unknown DragGAN canvas changes {unknown}; valid ones are: {', '.join(CHANGES)}")
        s = self.settings
        points = check_points(changes["points"], self.size, self.max_pairs) if "points" in changes else s.points
        steps = self._check_steps(changes["steps"]) if "steps" in changes else s.steps
        action = changes.get("action") or ""
        if action:
            check_choice("action", action, ACTIONS)
        if action == "drag":
            if len(points) % 2:
                x, y = points[-1]
                raise ValueError(f"the handle at ({x:g}, {y:g}) has no target yet: click its target (or Clear the "
                                 "points), then press Drag")
            if not points:
                raise ValueError("no handle/target pair to drag: click a handle on the image, then its target, "
                                 "then press Drag")
            handles, targets = split_pairs(points)
            t0 = time.perf_counter()
            result = self.session.run(handles, targets, steps=steps, **self._live(targets, steps))
            self.drag_seconds.append(time.perf_counter() - t0)
            self.before.append(points)
            moved = result.handles  # (K, 2): where tracking found the handles
            points = tuple(p for h, t in zip(moved.tolist(), targets.tolist()) for p in (tuple(h), tuple(t)))
        elif action == "undo":
            if self.session.history:
                self.session.undo()
                self.drag_seconds.pop()
                points = self.before.pop()
        elif action == "reset":
            self.session.reset()
            self.before.clear()
            self.drag_seconds.clear()
            points = ()
        elif action == "clear":
            points = ()
        self.settings = CanvasSettings(points, steps)
        return self.settings, action

    def _live(self, targets: torch.Tensor, steps: int) -> dict[str, Any]:
        """The ``callback`` of a drag that passes its progress to ``on_progress`` (nothing without one)."""
        if self.on_progress is None:
            return {}
        last = [time.perf_counter()]

        def callback(step: int, image: torch.Tensor, handles: torch.Tensor) -> None:
            now = time.perf_counter()
            if step > 0 and now - last[0] >= self.progress_every:
                last[0] = now
                self.on_progress(*self.progress(step, steps, image, handles, targets))

        return {"callback": callback}

    @staticmethod
    def progress(step: int, steps: int, image: torch.Tensor, handles: torch.Tensor,
                 targets: torch.Tensor) -> tuple[dict[str, Any], list[bytes]]:
        """A message of a running drag: its step, the tracked handles and targets (as ``points``), their mean
        distance, and the image (1, C, S, S) in [-1, 1] as a float32 buffer (S, S, C) in [0, 1]."""
        x = ((image[0].detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0)  # (S, S, C)
        points = [p for h, t in zip(handles.tolist(), targets.tolist()) for p in (h, t)]
        msg = {"type": "progress", "step": int(step), "steps": int(steps), "points": points,
               "distance": _mean((targets - handles).norm(dim=1)), "buffers": ["image"]}
        return json_safe(msg), [f32(x.numpy())]

    def status(self, action: str = "") -> str:
        """The status line: the last drag's handle-to-target distance before and after, its steps and time, or
        what to click next."""
        s, history = self.settings, self.session.history
        n = len(history)
        if action == "drag":
            r = history[-1]
            d0, d1 = r.distances()
            pairs = len(d0)
            return (f"drag {n}: {pairs} pair{'s' if pairs > 1 else ''}, handle-to-target distance "
                    f"{_mean(d0):.1f} → {_mean(d1):.1f} px{' (mean)' if pairs > 1 else ''}, {r.steps} step"
                    f"{'s' if r.steps != 1 else ''} in {self.drag_seconds[-1]:.2f} s"
                    f"{', reached' if r.converged else ', not reached'}")
        if action == "reset":
            return "reset: the first image, no points"
        head = {"undo": f"undone: {n} drag{'s' if n != 1 else ''} applied; ",
                "clear": "points cleared; "}.get(action, "")
        if len(s.points) % 2:
            return head + "click the target (blue) of the red handle"
        k = len(s.points) // 2
        if k == 0:
            return head + "click a handle (red) on the image, then its target (blue)"
        d = _mean((split_pairs(s.points)[1] - split_pairs(s.points)[0]).norm(dim=1))
        return (head + f"{k} pair{'s' if k > 1 else ''}, handle-to-target distance {d:.1f} px"
                f"{' (mean)' if k > 1 else ''}: press Drag, or click another handle")

    def frame(self, action: str = "", request: int = 0) -> tuple[dict[str, Any], list[bytes]]:
        """The frame: JSON values, and the image (S, S, C) and the last drag's tracked path (T, K, 2; empty
        without a drag) as float32 buffers, in the order named by ``buffers``."""
        image = self.image()
        history = self.session.history
        path = history[-1].path.numpy() if history else np.zeros((0, 0, 2), np.float32)  # (T, K, 2)
        msg = {
            "type": "frame", "request": int(request), "error": "", "action": action,
            "size": self.size, "channels": int(image.shape[2]), "points": [list(p) for p in self.settings.points],
            "steps": self.settings.steps, "drags": len(history), "path_shape": list(path.shape[:2]),
            "status": self.status(action), "buffers": ["image", "path"],
        }
        if action == "drag":
            d0, d1 = history[-1].distances()
            msg.update(distance_before=d0.tolist(), distance_after=d1.tolist(), drag_steps=history[-1].steps,
                       converged=history[-1].converged, drag_seconds=self.drag_seconds[-1])
        return json_safe(msg), [f32(image), f32(path)]


#: the controls the browser draws with widget_common.js's buildControls; the buttons and the canvas are its own
CONTROL_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "steps", "kind": "range", "group": "drag", "label": "steps at most", "min": STEPS_RANGE[0],
     "max": STEPS_RANGE[1], "step": 5},
)


class DragCanvasWidget(RequestedFrames, anywidget.AnyWidget):
    """The canvas widget: the browser sends each click and button press with a request number, the kernel answers
    with a frame or an error (see the module doc). ``scale``: screen pixels per image pixel."""

    _esm = module_source("draggan_canvas")
    _css = STATIC / "draggan_canvas.css"
    specs = traitlets.List().tag(sync=True)
    settings = traitlets.Dict().tag(sync=True)
    scale = traitlets.Int(8).tag(sync=True)

    def __init__(self, canvas: DragCanvas, scale: int = 8, **kwargs: Any) -> None:
        super().__init__(specs=[dict(c) for c in CONTROL_SPECS], settings={"steps": canvas.settings.steps},
                         scale=check_positive_int("scale", scale), **kwargs)
        self.canvas = canvas
        self.current = canvas.settings
        if canvas.on_progress is None:  # a live view of each drag
            canvas.on_progress = lambda msg, buffers: self.send(msg, buffers)
        self.listen()

    @property
    def session(self) -> DragSession:
        return self.canvas.session

    def compute(self, changes: dict[str, Any], request: int) -> tuple[CanvasSettings, dict[str, Any], list[bytes]]:
        settings, action = self.canvas.apply(changes)
        return (settings, *self.canvas.frame(action, request))


def drag_canvas(session: DragSession, steps: int = 100, scale: int = 8, max_pairs: int = MAX_PAIRS,
                progress_every: float = 0.1) -> DragCanvasWidget:
    """The DragGAN canvas on ``session``: its image drawn ``scale`` times enlarged, drags of at most ``steps``
    steps (changeable in the widget), at most ``max_pairs`` handle/target pairs at once, the running drag shown
    every ``progress_every`` seconds."""
    return DragCanvasWidget(DragCanvas(session, steps, max_pairs, progress_every), scale)
