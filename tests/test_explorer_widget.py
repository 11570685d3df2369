"""The explorer widget's thin layer (no browser): its controls, its messages, its files; notebook 04 uses it."""
from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("anywidget")

from gancourse.dynamics.explorer import CONTROLS, GAMES, ExplorerSettings, explore  # noqa: E402
from gancourse.dynamics.games import LOSSES, REGULARIZERS  # noqa: E402
from gancourse.dynamics.integrators import METHODS  # noqa: E402
from gancourse.viz import explorer_widget as ew  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = {c["name"]: c for c in ew.CONTROL_SPECS}


def test_the_browser_gets_one_control_per_setting():
    assert set(SPECS) | {"start"} == set(CONTROLS)  # the start is set by a click on the field
    assert [c for c in CONTROLS if c in SPECS] == [c["name"] for c in ew.CONTROL_SPECS]  # in the same order


@pytest.mark.parametrize("name, choices", [("game", GAMES), ("loss", LOSSES), ("reg", REGULARIZERS),
                                           ("method", METHODS)])
def test_every_choice_is_offered(name, choices):
    assert [v for v, _ in SPECS[name]["options"]] == list(choices)


def test_every_default_lies_on_its_control():
    default = ExplorerSettings()
    for name, spec in SPECS.items():
        value = getattr(default, name)
        if spec["kind"] in ("range", "log"):
            assert spec["min"] <= value <= spec["max"], name
        if spec["kind"] == "log":
            assert spec["min"] > 0
        if spec["kind"] == "matrix":
            assert all(spec["min"] <= a <= spec["max"] for a in value)
    assert SPECS["beta"]["min"] > -1 and SPECS["beta"]["max"] < 1  # the slider stays inside beta's range


def test_the_front_end_knows_every_kind_of_control():
    js = ew.DynamicsExplorer._esm  # the shared helpers (makeControl draws the controls), then explorer.js
    assert js.startswith((ew.STATIC / "widget_common.js").read_text())
    for kind in {c["kind"] for c in ew.CONTROL_SPECS}:
        assert f'spec.kind === "{kind}"' in js, kind
    assert "export default" in js and (ew.STATIC / "explorer.css").is_file()


def test_the_static_files_ship_with_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gancourse"]
    for f in ew.STATIC.iterdir():
        rel = f.relative_to(ROOT / "gancourse").as_posix()
        assert any(fnmatch(rel, pattern) for pattern in data), rel


def _floats(b: bytes, *shape: int) -> np.ndarray:
    return np.frombuffer(b, dtype=np.float32).reshape(shape)


def test_frame_message_carries_the_frame_as_float32_buffers():
    s = ExplorerSettings(game="bilinear", A=(1.0, 0.5, 0.0, 2.0), method="optimistic", steps=50, grid=7)
    frame = explore(s)
    msg = ew.frame_message(frame, request=7)
    json.dumps({k: v for k, v in msg.items() if k not in ("planes", "distance", "eigenvalues", "flow_image")})
    assert msg["request"] == 7 and msg["error"] == "" and msg["grid"] == 7
    assert msg["controls"] == sorted(frame.controls) and "A" in msg["controls"]
    assert len(msg["planes"]) == 2
    for k, plane in enumerate(msg["planes"]):
        assert np.allclose(_floats(plane["field"], 7, 7, 2), frame.planes[k].field, rtol=1e-6, atol=1e-6)
        assert np.allclose(_floats(plane["trajectory"], 51, 2), frame.planes[k].trajectory, rtol=1e-6)
    mu = _floats(msg["eigenvalues"], -1, 2)
    assert mu.shape == (8, 2)  # optimistic GD remembers the last state: twice the game's 4 dimensions
    assert np.allclose(mu[:, 0] + 1j * mu[:, 1], frame.discrete_eigenvalues, atol=1e-6)
    assert msg["rho"] == frame.spectral_radius and msg["verdict"] == frame.verdict
    assert msg["blowup_step"] is None


def test_a_blow_up_is_reported_with_its_step():
    msg = ew.frame_message(explore(ExplorerSettings(game="xy", h=3.0, steps=1000)))
    d = _floats(msg["distance"], -1)
    assert msg["blowup_step"] == int(np.argmax(~np.isfinite(d)))
    assert msg["distances"][1] == pytest.approx(float(d[msg["blowup_step"] - 1]), rel=1e-6)


def test_the_widget_answers_each_request_with_a_frame_or_an_error():
    w = ew.dynamics_explorer(game="xy", method="altgd", h=1.0, steps=6)
    assert w.frame["request"] == 0 and w.frame["verdict"] == "cycles"
    assert w.settings["game"] == "xy" and w.settings["start"] == [1.0, 1.0]
    w.settings = {**w.settings, "method": "extragradient", "request": 3}
    assert w.frame["request"] == 3 and w.frame["title"] == "xy · extragradient (h=1)"
    assert w.frame["compute_ms"] >= 0
    w.settings = {**w.settings, "start": [0, 0], "request": 4}
    assert w.frame == {"request": 4, "error": "the start is the equilibrium (0, 0), where nothing moves: "
                                               "start elsewhere"}
    w.settings = {**w.settings, "start": [1, 1], "method": "adam", "request": 5}
    assert w.frame["request"] == 5 and "valid options are: 'flow'" in w.frame["error"]


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown explorer settings"):
        ew.dynamics_explorer(eta=0.1)


# --- notebook 04 shows the explorer, and its figures fit a notebook column ---------------------------------------

NB04 = ROOT / "notebooks" / "04_numerics_of_gans.ipynb"


def _cells():
    return json.loads(NB04.read_text(encoding="utf-8"))["cells"]


def test_notebook_04_shows_the_explorer_in_one_tagged_cell():
    tagged = [c for c in _cells() if "explorer" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert "dynamics_explorer(" in "".join(tagged[0]["source"])
    assert "dynamics_widget" not in NB04.read_text(encoding="utf-8")


def test_notebook_04_figures_are_at_most_11_inches_wide():
    widths = [float(m.group(1)) for c in _cells() if c["cell_type"] == "code"
              for m in re.finditer(r"figsize=\(\s*([\d.]+)\s*,", "".join(c["source"]))]
    assert widths and max(widths) <= 11, widths
