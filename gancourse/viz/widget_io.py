"""What the course's canvas widgets share on the kernel's side: their static files and the form of their messages.

A widget's ES module is ``static/widget_common.js`` (canvases, plots, controls, the request loop) followed by its
own file; arrays travel as float32 buffers; the JSON part of a message must be strict JSON (Jupyter refuses NaN
and infinities), so non-finite numbers travel as the strings ``"inf"``, ``"-inf"`` and ``"nan"``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["STATIC", "module_source", "f32", "json_safe"]

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
