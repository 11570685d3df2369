"""The game-dynamics explorer as a notebook widget: controls and canvases drawn in the browser.

A thin layer over :mod:`gancourse.dynamics.explorer`. The browser (``static/explorer.js``) owns the controls and
draws on canvases; on every change it sends the settings, the kernel answers with one frame (the arrays as
float32 buffers, the verdicts as text) and the browser redraws. Controls that do not apply to the current choice
(:func:`gancourse.dynamics.explorer.applicable_controls`) are hidden. Click the field to move the start point.

>>> from gancourse.viz.explorer_widget import dynamics_explorer
>>> explorer = dynamics_explorer(game="xy", method="altgd", h=1.0)   # doctest: +SKIP
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import traitlets

try:
    import anywidget
except ImportError as exc:  # pragma: no cover - anywidget comes with the dev and notebooks extras
    raise ImportError('the dynamics explorer needs anywidget: python -m pip install -e ".[dev]"') from exc

from gancourse.dynamics.explorer import ExplorerSettings, Frame, explore
from gancourse.dynamics.games import LOSSES, REGULARIZERS
from gancourse.dynamics.integrators import METHODS
from gancourse.viz.widget_io import STATIC, module_source

__all__ = ["CONTROL_SPECS", "settings_dict", "frame_message", "error_message", "DynamicsExplorer",
           "dynamics_explorer"]


_LOSS_NAMES = {"gan": "GAN (saturating)", "ns": "non-saturating GAN", "wgan": "WGAN"}
_REG_NAMES = {"none": "none", "r1": "R1", "r2": "R2", "wgan-gp": "WGAN-GP", "instance-noise": "instance noise"}
_METHOD_NAMES = {"flow": "flow (RK4 steps)", "simgd": "simultaneous GD", "altgd": "alternating GD",
                 "extragradient": "extragradient", "optimistic": "optimistic GD", "consensus": "consensus",
                 "momentum": "momentum"}

#: the controls the browser draws, in order: ``select`` (options), ``range`` (min, max, step), ``log`` (a slider
#: over log10 of the value), ``checkbox`` and ``matrix`` (four number inputs); ``start`` is set by a click
CONTROL_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "game", "kind": "select", "group": "game", "label": "game",
     "options": [["dirac", "Dirac-GAN"], ["xy", "xy game"], ["bilinear", "x^T A y, 2x2 A"]]},
    {"name": "loss", "kind": "select", "group": "game", "label": "loss",
     "options": [[k, _LOSS_NAMES[k]] for k in LOSSES]},
    {"name": "reg", "kind": "select", "group": "game", "label": "regularizer",
     "options": [[k, _REG_NAMES[k]] for k in REGULARIZERS]},
    {"name": "gamma", "kind": "range", "group": "game", "label": "penalty γ", "min": 0.05, "max": 5.0,
     "step": 0.05},
    {"name": "sigma", "kind": "range", "group": "game", "label": "noise σ", "min": 0.05, "max": 3.0, "step": 0.05},
    {"name": "clipping", "kind": "checkbox", "group": "game", "label": "clip |ψ|"},
    {"name": "clip", "kind": "range", "group": "game", "label": "clip bound", "min": 0.1, "max": 3.0,
     "step": 0.05},
    {"name": "A", "kind": "matrix", "group": "game", "label": "A", "min": -5.0, "max": 5.0, "step": 0.1},
    {"name": "method", "kind": "select", "group": "update rule", "label": "method",
     "options": [[k, _METHOD_NAMES[k]] for k in METHODS]},
    {"name": "h", "kind": "log", "group": "update rule", "label": "step h", "min": 0.01, "max": 3.0},
    {"name": "n_d", "kind": "range", "group": "update rule", "label": "D steps n_d", "min": 1, "max": 10,
     "step": 1},
    {"name": "n_g", "kind": "range", "group": "update rule", "label": "G steps n_g", "min": 1, "max": 10,
     "step": 1},
    {"name": "consensus", "kind": "range", "group": "update rule", "label": "consensus c", "min": 0.05,
     "max": 5.0, "step": 0.05},
    {"name": "beta", "kind": "range", "group": "update rule", "label": "momentum β", "min": -0.95, "max": 0.95,
     "step": 0.05},
    {"name": "alternating", "kind": "checkbox", "group": "update rule", "label": "players in turn"},
    {"name": "steps", "kind": "range", "group": "run", "label": "steps", "min": 50, "max": 1000, "step": 50},
    {"name": "lim", "kind": "log", "group": "run", "label": "window ±", "min": 0.25, "max": 10.0},
)


def settings_dict(s: ExplorerSettings) -> dict[str, Any]:
    """The settings as JSON-ready values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(s).items()}


def _f32(x: np.ndarray) -> bytes:
    return np.ascontiguousarray(x, dtype=np.float32).tobytes()


def _complex_pairs(lam: np.ndarray) -> bytes:
    lam = np.asarray(lam, dtype=complex)
    return _f32(np.stack([lam.real, lam.imag], axis=1))  # (k, 2)


def _eigs_text(lam: np.ndarray) -> str:
    return ", ".join(f"{z.real:+.4f}{z.imag:+.4f}i" for z in np.asarray(lam, dtype=complex))


def frame_message(frame: Frame, request: int = 0) -> dict[str, Any]:
    """The frame as the browser reads it: arrays as float32 bytes, the rest as JSON values."""
    s = frame.settings
    d = frame.distance
    last = int(np.flatnonzero(np.isfinite(d))[-1])
    return {
        "request": int(request),
        "error": "",
        "controls": sorted(frame.controls),
        "title": f"{frame.game_label} · {frame.method_label}",
        "axis_labels": list(frame.axis_labels),
        "field_name": frame.field_name,
        "lim": s.lim,
        "grid": int(frame.axis.size),
        "start": list(s.start),
        "clip": s.clip if "clip" in frame.controls else None,
        "planes": [{"label": p.label, "field": _f32(p.field), "trajectory": _f32(p.trajectory)}
                   for p in frame.planes],
        "distance": _f32(d),
        "steps": s.steps,
        "blowup_step": None if last == d.size - 1 else last + 1,
        "eigenvalues": _complex_pairs(frame.discrete_eigenvalues),
        "flow_image": _complex_pairs(frame.flow_image),
        "rho": frame.spectral_radius,
        "verdict": frame.verdict,
        "reason": frame.reason,
        "simulated": frame.simulated_verdict,
        "distances": [float(d[0]), float(d[last])],
        "note": frame.note,
        "agree": frame.agree,
        "continuous_text": _eigs_text(frame.continuous_eigenvalues),
        "discrete_text": _eigs_text(frame.discrete_eigenvalues),
    }


def error_message(message: str, request: int = 0) -> dict[str, Any]:
    """A frame that only says what is wrong with the settings (the browser keeps the last drawing)."""
    return {"request": int(request), "error": message}


class DynamicsExplorer(anywidget.AnyWidget):
    """The explorer widget: ``settings`` come from the browser, ``frame`` goes back (see the module doc)."""

    _esm = module_source("explorer")
    _css = STATIC / "explorer.css"
    specs = traitlets.List().tag(sync=True)
    settings = traitlets.Dict().tag(sync=True)
    frame = traitlets.Dict().tag(sync=True)

    def __init__(self, settings: ExplorerSettings | None = None, **kwargs: Any) -> None:
        s = settings or ExplorerSettings()
        super().__init__(specs=[dict(c) for c in CONTROL_SPECS], **kwargs)
        self.settings = {**settings_dict(s), "request": 0}

    @traitlets.observe("settings")
    def _redraw(self, change: dict) -> None:
        values = dict(change["new"])
        request = int(values.pop("request", 0))
        self.frame = self.render_frame(values, request)

    @staticmethod
    def render_frame(values: dict[str, Any], request: int = 0) -> dict[str, Any]:
        """The frame message for the settings ``values``, or an error message naming what is wrong."""
        t0 = time.perf_counter()
        try:
            message = frame_message(explore(ExplorerSettings.from_mapping(values)), request)
        except (ValueError, TypeError) as exc:  # settings the maths refuses: the message names what is wrong
            return error_message(str(exc), request)
        except (ArithmeticError, np.linalg.LinAlgError) as exc:  # a run the numerics cannot follow
            return error_message(f"{type(exc).__name__}: {exc}", request)
        message["compute_ms"] = 1e3 * (time.perf_counter() - t0)
        return message


def dynamics_explorer(**settings: Any) -> DynamicsExplorer:
    """The explorer widget, starting from :class:`~gancourse.dynamics.explorer.ExplorerSettings` ``(**settings)``
    (e.g. ``game="xy", method="altgd", h=1.0``); unknown names are refused with the valid ones."""
    return DynamicsExplorer(ExplorerSettings.from_mapping(settings))
