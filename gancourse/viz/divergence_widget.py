"""The divergence explorer as a notebook widget: sliders move two 1D Gaussian mixtures (or WGAN's parallel lines),
the kernel computes the divergences (:mod:`gancourse.divergences.explorer`), the browser draws them.

On every change the browser sends the settings with a request number; the kernel answers with one frame (the
curves as float32 buffers, the values as JSON) and the browser redraws. Controls of the other example are
hidden; the mean and std of a component of weight 0 are disabled.

>>> explorer = divergence_explorer(q_m1=1.0)    # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import traitlets

try:
    import anywidget
except ImportError as exc:  # pragma: no cover - anywidget comes with the dev and notebooks extras
    raise ImportError('the divergence explorer needs anywidget: python -m pip install -e ".[dev]"') from exc

from gancourse.divergences.explorer import (
    MEAN_RANGE,
    STD_RANGE,
    THETA_RANGE,
    DivergenceFrame,
    DivergenceSettings,
    explore_divergences,
)
from gancourse.viz.widget_io import STATIC, RequestedFrames, f32, json_safe, module_source

__all__ = ["CONTROL_SPECS", "divergence_message", "DivergenceExplorer", "divergence_explorer"]


def _mixture_specs(d: str) -> list[dict[str, Any]]:
    group = "p (data)" if d == "p" else "q (model)"
    out = []
    for k in (1, 2):
        out.append({"name": f"{d}_m{k}", "kind": "range", "group": group, "label": f"mean {k}", "min": MEAN_RANGE[0],
                    "max": MEAN_RANGE[1], "step": 0.05})
        out.append({"name": f"{d}_s{k}", "kind": "range", "group": group, "label": f"std {k}", "min": STD_RANGE[0],
                    "max": STD_RANGE[1], "step": 0.05})
    out.append({"name": f"{d}_w", "kind": "range", "group": group, "label": "weight of 1", "min": 0.0, "max": 1.0,
                "step": 0.05})
    return out


#: the controls the browser draws, in order (see static/divergence_explorer.js)
CONTROL_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "example", "kind": "select", "group": "example", "label": "example",
     "options": [["mixtures", "two Gaussian mixtures"], ["lines", "parallel lines (WGAN, Example 1)"]]},
    {"name": "theta", "kind": "range", "group": "example", "label": "θ", "min": THETA_RANGE[0],
     "max": THETA_RANGE[1], "step": 0.05},
    *_mixture_specs("p"),
    *_mixture_specs("q"),
)

_LABELS = {"kl": "KL(p‖q)", "reverse_kl": "KL(q‖p)", "jsd": "JSD", "tv": "TV", "w1": "W1", "w": "W1"}


def divergence_message(frame: DivergenceFrame, request: int = 0) -> tuple[dict[str, Any], list[bytes]]:
    """The frame as the browser reads it: JSON values, and the arrays as float32 buffers named in ``buffers``."""
    s = frame.settings
    arrays = {"x": frame.x, "sweep": frame.sweep,
              **{f"panel_{k}": v for k, v in frame.panel.items()},
              **{f"curve_{k}": v for k, v in frame.curves.items()}}
    msg = {
        "type": "frame", "request": int(request), "error": "", "example": s.example, "settings": vars(s).copy(),
        "controls": sorted(frame.controls), "inactive": sorted(frame.inactive), "values": frame.values,
        "closed_form": frame.closed_form, "labels": [[k, _LABELS[k]] for k in frame.curves],
        "log2": math.log(2.0), "buffers": list(arrays),
    }
    return json_safe(msg), [f32(v) for v in arrays.values()]


class DivergenceExplorer(RequestedFrames, anywidget.AnyWidget):
    """The widget: the browser sends each change with a request number, the kernel answers with a frame."""

    NUMERIC = (ArithmeticError, np.linalg.LinAlgError)
    _esm = module_source("divergence_explorer")
    _css = STATIC / "divergence_explorer.css"
    specs = traitlets.List().tag(sync=True)
    settings = traitlets.Dict().tag(sync=True)

    def __init__(self, settings: DivergenceSettings | None = None, **kwargs: Any) -> None:
        s = settings or DivergenceSettings()
        super().__init__(specs=[dict(c) for c in CONTROL_SPECS], settings=vars(s).copy(), **kwargs)
        self.current = s
        self.listen()

    def compute(self, changes: dict[str, Any], request: int) -> tuple[DivergenceSettings, dict[str, Any], list[bytes]]:
        s = DivergenceSettings.from_mapping({**vars(self.current), **changes})
        return (s, *divergence_message(explore_divergences(s), request))


def divergence_explorer(**settings: Any) -> DivergenceExplorer:
    """The explorer, starting from :class:`~gancourse.divergences.explorer.DivergenceSettings` ``(**settings)``
    (e.g. ``q_m1=1.0`` or ``example="lines", theta=0.5``); unknown names are refused with the valid ones."""
    return DivergenceExplorer(DivergenceSettings.from_mapping(settings))
