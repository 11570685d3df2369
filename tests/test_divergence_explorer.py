"""The divergence explorer's maths (two 1D mixtures, the parallel lines) and its thin widget layer."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from scipy.stats import norm

from gancourse.divergences import (
    js_divergence,
    kl_divergence,
    optimal_discriminator,
    parallel_lines_closed_form,
    total_variation,
    wasserstein_1d,
)
from gancourse.divergences.explorer import (
    CONTROLS,
    DIVERGENCES,
    MIXTURE_CONTROLS,
    SHIFT,
    DivergenceSettings,
    applicable_controls,
    explore_divergences,
    inactive_controls,
    kl_divergence_log,
    shift_curves,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kwargs, match", [
    ({"example": "circles"}, "lines"),
    ({"p_m1": 5.0}, r"p_m1 must lie in \[-4, 4\]"),
    ({"q_s2": 0.0}, r"q_s2 must lie in \[0.2, 1.5\]"),
    ({"p_w": 1.5}, r"p_w must lie in \[0, 1\]"),
    ({"theta": 3.0}, "theta"),
    ({"q_m1": float("nan")}, "finite"),
    ({"q_m1": True}, "finite number"),
])
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DivergenceSettings(**kwargs)


def test_unknown_settings_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid ones are: example, p_m1"):
        DivergenceSettings.from_mapping({"mean": 1.0})


def test_each_example_shows_its_own_controls():
    assert applicable_controls(DivergenceSettings()) == {"example", *MIXTURE_CONTROLS}
    assert applicable_controls(DivergenceSettings(example="lines")) == {"example", "theta"}
    assert set(CONTROLS) == {f for f in DivergenceSettings.__dataclass_fields__}


def test_a_component_of_weight_zero_has_its_sliders_disabled():
    assert inactive_controls(DivergenceSettings(p_w=0.5, q_w=0.5)) == set()
    assert inactive_controls(DivergenceSettings(p_w=0.0, q_w=1.0)) == {"p_m1", "p_s1", "q_m2", "q_s2"}
    assert inactive_controls(DivergenceSettings(example="lines", p_w=0.0)) == set()
    # and indeed they change nothing
    a = explore_divergences(DivergenceSettings(q_w=1.0, q_m2=-3.0, q_s2=0.3))
    b = explore_divergences(DivergenceSettings(q_w=1.0, q_m2=3.0, q_s2=1.2))
    assert a.values == b.values


def test_kl_from_log_densities_is_the_grid_kl_and_stays_finite_in_the_tails():
    xs = np.linspace(-10, 10, 2001)
    dx = xs[1] - xs[0]
    lp, lq = norm.logpdf(xs, 0, 1), norm.logpdf(xs, 1.5, 2)
    assert kl_divergence_log(lp, lq, cell=dx) == pytest.approx(kl_divergence(np.exp(lp), np.exp(lq), cell=dx),
                                                               rel=1e-12)
    narrow = norm.logpdf(xs, -8, 0.2)  # rounds to 0 over most of the grid, where N(0, 1) is still positive
    assert np.exp(narrow).min() == 0.0 and kl_divergence(np.exp(lp), np.exp(narrow), cell=dx) == np.inf
    exact = np.log(0.2) + (1 + 8**2) / (2 * 0.2**2) - 0.5  # KL(N(0, 1) || N(-8, 0.2^2))
    assert kl_divergence_log(lp, narrow, cell=dx) == pytest.approx(exact, rel=1e-6)
    assert kl_divergence_log([0.0, -np.inf], [-np.inf, 0.0], cell=1.0) == np.inf
    assert kl_divergence_log([-np.inf, 0.0], [0.0, 0.0], cell=1.0) == 0.0
    with pytest.raises(ValueError, match="same grid"):
        kl_divergence_log(lp, lq[:-1], cell=dx)


def test_the_values_are_the_library_functions_on_the_grid():
    s = DivergenceSettings(p_m1=-1.0, p_s1=0.6, p_m2=2.5, p_s2=0.9, p_w=0.3, q_m1=0.5, q_s1=1.2, q_w=1.0)
    f = explore_divergences(s)
    xs = np.linspace(-17, 17, 1701)
    dx = xs[1] - xs[0]
    p = 0.3 * norm.pdf(xs, -1, 0.6) + 0.7 * norm.pdf(xs, 2.5, 0.9)
    q = norm.pdf(xs, 0.5, 1.2)
    assert f.values["kl"] == pytest.approx(kl_divergence(p, q, cell=dx), rel=1e-9)
    assert f.values["reverse_kl"] == pytest.approx(kl_divergence(q, p, cell=dx), rel=1e-9)
    assert f.values["jsd"] == pytest.approx(js_divergence(p, q, cell=dx), rel=1e-9)
    assert f.values["tv"] == pytest.approx(total_variation(p, q, cell=dx), rel=1e-9)
    assert f.values["v_star"] == pytest.approx(2 * f.values["jsd"] - np.log(4), abs=1e-12)
    # W1 on the grid against W1 between large samples
    rng = np.random.default_rng(0)
    n = 200_000
    xp = np.where(rng.random(n) < 0.3, rng.normal(-1, 0.6, n), rng.normal(2.5, 0.9, n))
    assert f.values["w1"] == pytest.approx(wasserstein_1d(xp, rng.normal(0.5, 1.2, n)), abs=0.01)
    d_star = optimal_discriminator(p, q)
    assert np.allclose(f.panel["d_star"], np.interp(f.x, xs, d_star), atol=1e-9)


def test_the_curves_at_t_zero_are_the_values_and_a_shift_is_a_shift():
    s = DivergenceSettings()
    f = explore_divergences(s)
    i0 = int(np.argmin(np.abs(f.sweep)))
    assert f.sweep[i0] == 0.0 and f.sweep[0] == -SHIFT and f.sweep[-1] == SHIFT
    for name in DIVERGENCES:
        assert f.curves[name][i0] == pytest.approx(f.values[name], rel=1e-12)
    moved = DivergenceSettings(q_m1=s.q_m1 + 1.0, q_m2=s.q_m2 + 1.0)  # q shifted by 1
    values = explore_divergences(moved).values
    i1 = int(np.argmin(np.abs(f.sweep - 1.0)))
    for name in DIVERGENCES:
        assert f.curves[name][i1] == pytest.approx(values[name], rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="multiples"):
        shift_curves(s, np.array([0.013]))


def test_disjoint_gaussians_saturate_the_bounded_divergences():
    t, c = shift_curves(DivergenceSettings(p_w=1.0, p_m1=0.0, p_s1=0.2, q_w=1.0, q_m1=0.0, q_s1=0.2))
    apart = np.abs(t) >= 2.0
    assert np.allclose(c["jsd"][apart], np.log(2), atol=1e-5) and np.allclose(c["tv"][apart], 1.0, atol=1e-5)
    assert np.allclose(c["w1"], np.abs(t), atol=1e-9)
    assert np.allclose(c["kl"], t**2 / (2 * 0.2**2), rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(c["kl"])) and np.all(np.isfinite(c["jsd"]))


@pytest.mark.parametrize("theta", [-1.5, -0.3, 0.0, 0.7, 2.0])
def test_the_parallel_lines(theta):
    f = explore_divergences(DivergenceSettings(example="lines", theta=theta))
    closed = parallel_lines_closed_form(theta)
    assert f.closed_form == closed
    assert f.values["jsd"] == pytest.approx(closed["jsd"], abs=1e-12) and f.values["kl"] == closed["kl"]
    assert f.values["tv"] == pytest.approx(closed["tv"], abs=1e-12)
    assert f.values["w"] == pytest.approx(abs(theta), abs=1e-9)
    assert np.allclose(f.panel["p_theta"][:, 0], theta) and np.allclose(f.panel["p0"][:, 0], 0.0)
    away = f.sweep != 0
    assert np.allclose(f.curves["jsd"][away], np.log(2)) and np.allclose(f.curves["w"], np.abs(f.sweep))


# ------------------------------------------------------------------------------------------------ the widget


def test_the_widget_layer():
    pytest.importorskip("anywidget")
    from gancourse.viz import divergence_widget as dw

    assert [c["name"] for c in dw.CONTROL_SPECS] == ["example", "theta", *MIXTURE_CONTROLS]
    default = DivergenceSettings()
    for spec in dw.CONTROL_SPECS:
        if spec["kind"] == "range":
            assert spec["min"] <= getattr(default, spec["name"]) <= spec["max"], spec["name"]
    w = dw.divergence_explorer(q_m1=1.0)
    msg, buffers = w.render_frame({"q_s1": 0.7}, request=3)
    json.dumps(msg, allow_nan=False)
    assert msg["request"] == 3 and msg["settings"]["q_s1"] == 0.7 and msg["settings"]["q_m1"] == 1.0
    arrays = dict(zip(msg["buffers"], (np.frombuffer(b, dtype=np.float32) for b in buffers)))
    assert len(arrays["panel_p"]) == len(arrays["x"]) and len(arrays["curve_w1"]) == len(arrays["sweep"])
    lines, _ = w.render_frame({"example": "lines", "theta": 0.5})
    json.dumps(lines, allow_nan=False)
    assert lines["values"]["kl"] == "inf" and lines["controls"] == ["example", "theta"]
    bad, _ = w.render_frame({"theta": 9.0}, request=4)
    assert bad["type"] == "error" and "theta" in bad["error"] and bad["request"] == 4
    assert w.current.theta == 0.5  # a refused change keeps the last good settings
    w._on_msg(w, {"type": "change", "request": 6, "changes": {"example": "mixtures", "p_w": 0.0}}, [])
    assert w.last["request"] == 6 and w.last["inactive"] == ["p_m1", "p_s1", "q_m2", "q_s2"]  # q_w is 1
    with pytest.raises(ValueError, match="valid ones"):
        dw.divergence_explorer(sigma=1.0)


def test_notebook_03_shows_the_explorer_in_one_tagged_cell():
    nb = nbformat.read(ROOT / "notebooks" / "03_wasserstein_and_wgan.ipynb", as_version=4)
    cells = [c for c in nb.cells if "divergence-explorer" in c.metadata.get("tags", [])]
    assert len(cells) == 1 and "divergence_explorer(" in cells[0].source
