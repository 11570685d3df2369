"""The live 2D GAN lab as a notebook widget: the NumPy engine trains in the kernel, the browser draws each frame.

A thin layer over :mod:`gancourse.viz.gan_lab` (what a frame shows) and :mod:`gancourse.viz.lab_runner` (the
thread that plays it). The browser (``static/gan_lab.js``) owns the controls and the canvases; the kernel sends
each frame as one message with its arrays as float32 buffers, and the browser acknowledges each frame it drew.
Controls that do not apply to the current choice are hidden (``applicable_controls``), options that cannot be
combined with it are disabled (``disabled_options``). With the data "drawn", click or drag on the canvas to add
points.

>>> lab = gan_lab(data="grid25")        # doctest: +SKIP
>>> lab.step().step                      # one frame: 10 training steps   # doctest: +SKIP
10
"""
from __future__ import annotations

import time
from typing import Any

import traitlets

try:
    import anywidget
except ImportError as exc:  # pragma: no cover - anywidget comes with the dev and notebooks extras
    raise ImportError('the GAN lab needs anywidget: python -m pip install -e ".[dev]"') from exc

from gancourse.nn import PENALTIES
from gancourse.viz.gan_lab import LAB_DATA, LAB_TRICKS, LabFrame, LabSession, LabSettings
from gancourse.viz.lab_runner import LabRunner
from gancourse.viz.widget_io import STATIC, f32, json_safe, module_source

__all__ = ["CONTROL_SPECS", "LOSS_NAMES", "frame_message", "error_message", "GANLab", "gan_lab"]

LOSS_NAMES = {"gan": "minimax (saturating)", "ns": "non-saturating", "wgan": "WGAN", "hinge": "hinge",
              "lsgan": "least squares", "rpgan": "relativistic (RpGAN)"}
_DATA_NAMES = {"ring8": "ring of 8", "grid25": "grid of 25", "two_moons": "two moons", "spiral": "spiral",
               "drawn": "points you draw"}
_PENALTY_NAMES = {"none": "none", "r1": "R1 (reals)", "r2": "R2 (fakes)", "wgan-gp": "WGAN-GP", "r1+r2": "R1 + R2"}

#: the controls the browser draws, in order (see static/gan_lab.js); ``local`` ones change only the drawing
CONTROL_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "data", "kind": "select", "group": "data", "label": "data",
     "options": [[k, _DATA_NAMES[k]] for k in LAB_DATA]},
    {"name": "points", "kind": "points", "group": "data", "label": "drawing"},
    {"name": "seed", "kind": "range", "group": "data", "label": "seed", "min": 0, "max": 20, "step": 1},
    {"name": "loss", "kind": "select", "group": "game", "label": "loss",
     "options": [[k, v] for k, v in LOSS_NAMES.items()]},
    {"name": "penalty", "kind": "select", "group": "game", "label": "penalty",
     "options": [[k, _PENALTY_NAMES[k]] for k in PENALTIES]},
    {"name": "gamma", "kind": "log", "group": "game", "label": "weight γ", "min": 0.001, "max": 10.0},
    {"name": "trick", "kind": "select", "group": "game", "label": "trick", "options": [[k, k] for k in LAB_TRICKS]},
    {"name": "lr_g", "kind": "log", "group": "training", "label": "lr G", "min": 1e-4, "max": 3e-2},
    {"name": "lr_d", "kind": "log", "group": "training", "label": "lr D", "min": 1e-4, "max": 3e-2},
    {"name": "n_critic", "kind": "range", "group": "training", "label": "D steps / G step", "min": 1, "max": 5,
     "step": 1},
    {"name": "steps_per_frame", "kind": "select", "group": "training", "label": "steps / frame",
     "options": [[n, str(n)] for n in (1, 2, 5, 10, 20, 50)]},
    {"name": "show_heat", "kind": "checkbox", "group": "show", "label": "D heatmap", "local": True},
    {"name": "show_real", "kind": "checkbox", "group": "show", "label": "data", "local": True},
    {"name": "show_fake", "kind": "checkbox", "group": "show", "label": "samples", "local": True},
    {"name": "show_manifold", "kind": "checkbox", "group": "show", "label": "G's manifold", "local": True},
    {"name": "show_arrows", "kind": "checkbox", "group": "show", "label": "G's gradient", "local": True},
)
#: the front end's own controls (what to draw) and their first values
LOCAL_DEFAULTS = {"show_heat": True, "show_real": True, "show_fake": True, "show_manifold": True,
                  "show_arrows": True}


def _title(s: LabSettings) -> str:
    penalty = "no penalty" if s.penalty == "none" else f"{_PENALTY_NAMES[s.penalty]} γ = {s.gamma:g}"
    trick = "no trick" if s.trick == "none" else s.trick
    return (f"{_DATA_NAMES[s.data]} · {LOSS_NAMES[s.loss]} loss · {penalty} · Adam lr G {s.lr_g:g}, D {s.lr_d:g} · "
            f"{s.n_critic} D step{'s' if s.n_critic > 1 else ''} per G step · {trick} · "
            f"{s.steps_per_frame} steps per frame · seed {s.seed}")


def _metrics_text(m: dict[str, Any]) -> str:
    if "modes" in m:
        return f"modes {m['modes']}/{m['K']} · HQ {100 * m['hq']:.1f}% · reverse KL {m['reverse_kl']:.3g}"
    if "energy" in m:
        return f"energy distance {m['energy']:.3g} · sliced W1 {m['sliced_w1']:.3g}"
    return ""


def frame_message(frame: LabFrame, info: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """The frame as the browser reads it: JSON values, and the arrays as float32 buffers named in ``buffers``
    (in the order of the list that comes with it)."""
    arrays = {"heat": frame.heat, "real": frame.real, "fake": frame.fake, "arrows": frame.arrows,
              "manifold": frame.manifold, "centers": frame.centers, "curve_step": frame.curve_step,
              **{f"curve_{k}": v for k, v in frame.curves.items()}, "metric_step": frame.metric_step,
              **{f"metric_{k}": v for k, v in frame.metrics.items()}}
    s = frame.settings
    msg = {
        "type": "frame", **info,
        "step": frame.step, "frame": frame.frame, "window": frame.window, "heat_n": int(frame.heat.shape[0]),
        "heat_range": list(frame.heat_range), "heat_label": frame.heat_label,
        "manifold_n": int(frame.manifold.shape[0]), "arrow_norm": frame.arrow_norm,
        "metric_labels": [[k, v] for k, v in frame.metric_labels.items()],
        "metric_unit_range": "modes" in frame.metric_labels, "metrics_text": _metrics_text(frame.last_metrics),
        "title": _title(s), "settings": s.to_dict(), "controls": sorted(frame.controls),
        "disabled": frame.disabled, "diverged": frame.diverged, "buffers": list(arrays),
    }
    return json_safe(msg), [f32(v) for v in arrays.values()]


def error_message(message: str, info: dict[str, Any]) -> dict[str, Any]:
    """A message that only says what is wrong (the browser keeps the last drawing)."""
    return json_safe({"type": "error", **info, "error": message})


class GANLab(anywidget.AnyWidget):
    """The lab widget (see the module doc); ``session`` and ``runner`` are the lab's logic and its thread."""

    _esm = module_source("gan_lab")
    _css = STATIC / "gan_lab.css"
    specs = traitlets.List().tag(sync=True)
    settings = traitlets.Dict().tag(sync=True)

    def __init__(self, session: LabSession, **kwargs: Any) -> None:
        super().__init__(specs=[dict(c) for c in CONTROL_SPECS],
                         settings={**session.settings.to_dict(), **LOCAL_DEFAULTS}, **kwargs)
        self.session = session
        self.runner = LabRunner(session, self._send_frame)
        self.last: dict[str, Any] = {}  # the JSON part of the last message sent
        self.on_msg(self._on_msg)

    # ------------------------------------------------------------------------------- from the notebook
    def play(self) -> None:
        """Train frame after frame on a background thread (the kernel stays free)."""
        self.runner.play()

    def pause(self) -> None:
        self.runner.pause()

    def step(self) -> LabFrame:
        """Pause, train one frame (``steps_per_frame`` steps) and show it."""
        return self.runner.step()

    def reset(self) -> LabFrame:
        """Start the run again from step 0."""
        return self.runner.reset()

    def change(self, **settings: Any) -> str:
        """Change settings as the controls do (``"live"``, ``"restart"`` or ``"none"``); bad ones raise."""
        how = self.runner.change(settings)
        if how == "error":
            raise ValueError(self.last.get("error", "invalid settings"))
        return how

    @property
    def playing(self) -> bool:
        return self.runner.playing

    def close(self) -> None:
        """Stop the thread, then close the widget."""
        self.runner.close()
        super().close()

    # ----------------------------------------------------------------------------------- the browser
    def _send_frame(self, frame: LabFrame | None, info: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        if frame is None:
            msg, buffers = error_message(info.pop("error"), info), []
        else:
            msg, buffers = frame_message(frame, info)
            msg["pack_ms"] = 1e3 * (time.perf_counter() - t0)
        self.last = msg
        if self.comm is not None:
            self.send(msg, buffers)

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: list) -> None:
        kind = content.get("type")
        if kind == "ack":
            self.runner.ack(int(content.get("number", 0)))
        elif kind == "hello":
            self.runner.publish_current()
        elif kind == "play":
            self.runner.play()
        elif kind == "pause":
            self.runner.pause()
        elif kind == "step":
            self.runner.step()
        elif kind == "reset":
            self.runner.reset()
        elif kind == "change":
            self.runner.change(dict(content.get("changes", {})), int(content.get("request", 0)))


def gan_lab(*, sizes: dict[str, Any] | None = None, **settings: Any) -> GANLab:
    """The lab widget, paused at step 0 of :class:`~gancourse.viz.gan_lab.LabSettings` ``(**settings)`` (e.g.
    ``data="grid25", loss="hinge"``); ``sizes`` fix the networks and batches (default: the recipe's, e.g.
    ``sizes=dict(g_hidden=(64, 64), d_hidden=(64, 64))``). Unknown names are refused with the valid ones."""
    return GANLab(LabSession(LabSettings.from_mapping(settings), **(sizes or {})))
