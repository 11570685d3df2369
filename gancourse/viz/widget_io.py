"""What the course's canvas widgets share on the kernel's side: their static files and the form of their messages.

A widget's ES module is ``static/widget_common.js`` (canvases, plots, controls, the request loop) followed by its
own file; arrays travel as float32 buffers; the JSON part of a message must be strict JSON (Jupyter refuses NaN
and infinities), so non-finite numbers travel as the strings ``"inf"``, ``"-inf"`` and ``"nan"``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["STATIC", "module_source", "f32", "json_safe", "RequestedFrames"]

STATIC = Path(__file__).with_name("static")


def module_source(name: str) -> str:
    """The ES module of a widget: the shared helpers (``static/widget_common.js``), then ``static/<name>.js``."""
    return (STATIC / "widget_common.js").read_text() + "\n" + (STATIC / f"{name}.js").read_text()


def f32(x: Any) -> bytes:
    """``x`` as the bytes of a C-contiguous float32 array."""
    return np.ascontiguousarray(x, dtype=np.float32).tobytes()


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as ``"inf"``, ``"-inf"`` or ``"nan"``, NumPy scalars as Python ones,
    and tuples as lists (dicts and lists are copied)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return value


class RequestedFrames:
    """The kernel's side of the request loop of ``widget_common.js``, for an anywidget: the browser sends
    ``{"type": "hello"}`` once and ``{"type": "change", "changes": {...}, "request": n}`` for each change; each is
    answered with the frame of the settings after the changes (or an error message naming what is wrong), which is
    kept in ``last``. A widget sets ``current`` (its settings) and calls :meth:`listen` in ``__init__``, and gives
    :meth:`compute`; ``REFUSED`` are the exceptions answered with their message, ``NUMERIC`` those answered with
    their type and message (a run the numerics cannot follow)."""

    REFUSED: tuple[type[BaseException], ...] = (ValueError, TypeError)
    NUMERIC: tuple[type[BaseException], ...] = ()

    def listen(self) -> None:
        self.last: dict[str, Any] = {}
        self.on_msg(self._on_msg)

    def compute(self, changes: dict[str, Any], request: int) -> tuple[Any, dict[str, Any], list[bytes]]:
        """The new settings, and the frame's JSON part and buffers, for the current settings after ``changes``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def render_frame(self, changes: dict[str, Any], request: int = 0) -> tuple[dict[str, Any], list[bytes]]:
        """The frame after ``changes`` of the settings, or an error message naming what is wrong."""
        t0 = time.perf_counter()
        try:
            settings, msg, buffers = self.compute(changes, request)
        except self.REFUSED as exc:
            return {"type": "error", "request": int(request), "error": str(exc)}, []
        except self.NUMERIC as exc:
            return {"type": "error", "request": int(request), "error": f"{type(exc).__name__}: {exc}"}, []
        self.current = settings
        msg["compute_ms"] = 1e3 * (time.perf_counter() - t0)
        return msg, buffers

    def frame(self) -> dict[str, Any]:
        """The JSON part of the frame of the current settings (for notebooks and tests)."""
        return self.render_frame({})[0]

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: list) -> None:
        if content.get("type") == "hello":
            msg, buffers = self.render_frame({}, 0)
        elif content.get("type") == "change":
            msg, buffers = self.render_frame(dict(content.get("changes", {})), int(content.get("request", 0)))
        else:
            return
        self.last = msg
        self.send(msg, buffers)
