"""The live 2D GAN lab without a browser: its settings, frames, gradients, the thread that plays it, the widget."""
from __future__ import annotations

import json
import threading
import time
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import nbformat
import numpy as np
import pytest

from gancourse.errors import TrainingDiverged
from gancourse.nn import LOSSES, PENALTIES
from gancourse.toy import ToyConfig
from gancourse.toy.drawn import MAX_POINTS, DrawnPoints
from gancourse.toy.trick_table import TRICKS
from gancourse.viz import gan_lab as gl
from gancourse.viz.gan_lab import (
    CONTROLS,
    LAB_TRICKS,
    LIVE,
    RESTART,
    CurveBuffer,
    LabSession,
    LabSettings,
    applicable_controls,
    disabled_options,
    discriminator_map,
    generator_gradient,
    lab_config,
    latent_plane,
    make_lab_gan,
)
from gancourse.viz.lab_runner import LabRunner

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(batch_size=32, g_hidden=(16, 16), d_hidden=(16, 16), z_dim=4)  # fast sessions for the tests


def small_session(**settings) -> LabSession:
    return LabSession(LabSettings(**settings), heat=8, n_fake=64, n_arrows=16, manifold=5, metric_every=2, **SMALL)


# ------------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("kwargs, match", [
    ({"data": "moons"}, "ring8"),
    ({"loss": "bce"}, "hinge"),
    ({"penalty": "r3"}, "wgan-gp"),
    ({"trick": "dropout"}, "spectral norm"),
    ({"gamma": 0.0}, "gamma"),
    ({"lr_g": -1.0}, "lr_g"),
    ({"n_critic": 0}, "n_critic"),
    ({"steps_per_frame": 0}, "steps_per_frame"),
    ({"loss": "hinge", "trick": "label smoothing"}, "cross-entropy"),
    ({"points": ()}, "between 1 and"),
    ({"points": ((0.0, 3.0),)}, r"\[-2, 2\]"),
])
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LabSettings(**kwargs)


def test_unknown_settings_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid ones are: data, loss"):
        LabSettings.from_mapping({"learning_rate": 1e-3})


def test_settings_round_trip_through_json():
    s = LabSettings(data="drawn", points=((0.5, -1.0), (1.0, 1.0)), lr_d=1e-3)
    assert LabSettings.from_mapping(json.loads(json.dumps(s.to_dict()))) == s


def test_every_setting_is_a_control_and_applies_somewhere():
    assert set(CONTROLS) == {f for f in LabSettings.__dataclass_fields__} == set(LIVE) | set(RESTART)
    assert not set(LIVE) & set(RESTART)
    seen = set().union(*(applicable_controls(LabSettings(**kw)) for kw in ({}, {"data": "drawn"})))
    assert seen == set(CONTROLS)


def test_controls_that_do_not_apply_are_named():
    assert "gamma" not in applicable_controls(LabSettings(penalty="none"))
    assert "gamma" in applicable_controls(LabSettings(penalty="wgan-gp"))
    assert "points" in applicable_controls(LabSettings(data="drawn"))
    assert "points" not in applicable_controls(LabSettings(data="grid25"))


def test_options_that_cannot_be_combined_are_disabled():
    assert disabled_options(LabSettings()) == {}
    assert disabled_options(LabSettings(loss="wgan")) == {"trick": ["label smoothing"]}
    off = disabled_options(LabSettings(trick="label smoothing"))["loss"]
    assert set(off) == set(LOSSES) - {"gan", "ns"}
    for loss in off:  # every disabled combination is one the settings refuse
        with pytest.raises(ValueError):
            LabSettings(loss=loss, trick="label smoothing")


# --------------------------------------------------------------------------------------------------- config


def test_the_lab_trains_the_recipe_networks_at_a_constant_rate():
    cfg = lab_config(LabSettings(data="grid25", loss="hinge", penalty="r2", gamma=0.5, lr_g=1e-3, n_critic=2))
    recipe = ToyConfig()
    assert (cfg.batch_size, cfg.z_dim, cfg.g_hidden, cfg.d_hidden) == \
        (recipe.batch_size, recipe.z_dim, recipe.g_hidden, recipe.d_hidden)
    assert (cfg.lr_schedule, cfg.ema) == ("constant", 0.0)
    assert (cfg.data, cfg.loss, cfg.penalty, cfg.gamma, cfg.lr_g, cfg.n_critic) == ("grid25", "hinge", "r2", 0.5, 1e-3, 2)


@pytest.mark.parametrize("trick", [t for t in LAB_TRICKS if t != "none"])
def test_each_trick_is_its_row_of_the_table(trick):
    cfg = lab_config(LabSettings(trick=trick), **SMALL)
    for field, value in TRICKS[LAB_TRICKS[trick]].items():
        assert getattr(cfg, field) == value


def test_sizes_may_not_override_the_controls():
    with pytest.raises(ValueError, match="sets .*'loss'.* itself"):
        lab_config(LabSettings(), loss="wgan")


def test_drawn_points_are_the_data():
    pts = ((-1.0, 0.5), (1.5, 1.5))
    gan = make_lab_gan(LabSettings(data="drawn", points=pts), **SMALL)
    assert isinstance(gan.dataset, DrawnPoints) and gan.scale == 1.0
    batch = gan.real_batch(400)
    nearest = np.min(np.linalg.norm(batch[:, None, :] - np.array(pts)[None], axis=-1), axis=1)
    assert nearest.max() < 6 * gan.dataset.std


def test_a_drawing_is_a_mixture_with_modes():
    d = DrawnPoints(((0.0, 0.0), (1.0, 1.0)))
    assert d.centers.shape == (2, 2) and np.allclose(d.component_weights, 0.5)
    with pytest.raises(ValueError, match=str(MAX_POINTS)):
        DrawnPoints(tuple((0.0, 0.0) for _ in range(MAX_POINTS + 1)))


# ------------------------------------------------------------------------------------------------ pictures


def test_the_latent_plane_is_an_orthonormal_grid():
    z = latent_plane(6, 5, lim=2.0, seed=3)
    assert z.shape == (5, 5, 6)
    u, v = z[2, 3], z[3, 2]  # one grid step along a, then along b (lim 2, 5 points: steps of 1)
    assert np.allclose([u @ u, v @ v, u @ v], [1, 1, 0])
    assert np.allclose(z[2, 2], 0) and np.allclose(z[0, 4], -2 * v + 2 * u)
    assert np.allclose(latent_plane(2, 3, lim=1.0)[0, 2], [1.0, -1.0])  # z_dim 2: the axes themselves


@pytest.mark.parametrize("loss, trick", [("ns", "none"), ("gan", "none"), ("hinge", "none"), ("lsgan", "none"),
                                         ("rpgan", "none"), ("ns", "feature matching")])
def test_the_arrows_are_minus_the_generator_loss_gradient(loss, trick):
    gan = make_lab_gan(LabSettings(loss=loss, trick=trick), **SMALL, dtype="float64")
    for _ in range(5):
        gan.train_step()
    rng = np.random.default_rng(0)
    fake, real = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    grad = generator_gradient(gan, fake, real)

    def loss_at(x):
        xt, rt = x / gan.scale, real / gan.scale
        if gan.config.feature_matching:
            from gancourse.nn import feature_matching_loss
            k = gan.D.feature_index()
            return feature_matching_loss(gan.D.forward(rt, upto=k), gan.D.forward(xt, upto=k))[0]
        r = gan.D.forward(rt) if gan.loss.needs_real_in_g else None
        return gan.loss.g(gan.D.forward(xt), r)[0]

    h = 1e-6
    for i, j in [(0, 0), (2, 1), (5, 0)]:
        e = np.zeros_like(fake)
        e[i, j] = h
        numeric = (loss_at(fake + e) - loss_at(fake - e)) / (2 * h)
        assert grad[i, j] == pytest.approx(-numeric, rel=1e-5, abs=1e-10)


def test_drawing_never_changes_training():
    a, b = make_lab_gan(LabSettings(trick="spectral norm"), **SMALL), make_lab_gan(LabSettings(trick="spectral norm"), **SMALL)
    for _ in range(3):
        a.train_step()
        b.train_step()
        discriminator_map(a, np.zeros((5, 2)))  # eval mode: the power iteration does not advance
        generator_gradient(a, np.ones((4, 2)), np.zeros((4, 2)))
    a.train_step()
    b.train_step()
    assert np.array_equal(a.D.theta, b.D.theta) and np.array_equal(a.G.theta, b.G.theta)


def test_curves_keep_the_whole_run_in_bounded_memory():
    c = CurveBuffer(("y",), capacity=4)
    for k in range(1, 101):
        c.append(k, 2.0 * k)
    x, ys = c.arrays()
    assert 4 <= len(c) < 8 and x[0] < 10 and x[-1] > 90
    assert np.allclose(ys["y"], 2 * x)  # pairs are averaged, so a linear curve stays exact
    with pytest.raises(ValueError, match="expected 1 values"):
        c.append(1, 2, 3)


# --------------------------------------------------------------------------------------------------- session


def test_a_frame_shows_the_game():
    s = small_session()
    f = s.frame()
    assert f.step == 0 and f.frame == 0 and f.heat.shape == (8, 8) and f.fake.shape == (64, 2)
    assert f.real.shape == (64, 2) and f.arrows.shape == (16, 2) and f.manifold.shape == (5, 5, 2)
    assert f.centers.shape == (8, 2) and f.heat_range == (0.0, 1.0) and f.heat_label == "D(x)"
    assert np.all((f.heat >= 0) & (f.heat <= 1))
    assert np.max(np.linalg.norm(f.arrows, axis=1)) == pytest.approx(1.0)
    assert f.window == pytest.approx(gl.data_extent(s.dataset))
    assert set(f.metrics) == {"modes", "hq", "reverse_kl"} and len(f.metric_step) == 1  # measured at step 0


def test_frames_train_steps_per_frame_and_measure_every_few_frames():
    s = small_session(steps_per_frame=3)
    for k in range(1, 5):
        assert s.advance() == 3 and s.step == 3 * k
    f = s.frame()
    assert f.frame == 4 and list(f.curve_step) == [3, 6, 9, 12]
    assert list(f.metric_step) == [0, 6, 12]  # every metric_every = 2 frames
    assert np.all(np.isfinite(f.curves["d_loss"]))


def test_sample_metrics_for_data_without_modes():
    f = small_session(data="two_moons").frame()
    assert set(f.metrics) == {"energy", "sliced_w1"} and f.centers.shape == (0, 2)


def test_a_critic_is_drawn_with_its_own_range():
    f = small_session(loss="wgan", penalty="wgan-gp").frame()
    lo, hi = f.heat_range
    assert f.heat_label == "critic f(x)" and lo == pytest.approx(f.heat.min()) and hi == pytest.approx(f.heat.max())


def test_live_changes_keep_the_run_and_the_others_restart_it():
    s = small_session()
    s.advance()
    assert s.update({"lr_g": 5e-4, "lr_d": 1e-3, "penalty": "wgan-gp", "gamma": 2.0, "n_critic": 3}) == "live"
    assert s.step == 10
    cfg = s.gan.config
    assert (cfg.lr_g, cfg.lr_d, cfg.penalty, cfg.gamma, cfg.n_critic) == (5e-4, 1e-3, "wgan-gp", 2.0, 3)
    assert s.update({"steps_per_frame": 2}) == "live" and s.advance() == 2
    assert s.update({}) == "none"
    for change in ({"seed": 3}, {"data": "grid25"}, {"loss": "lsgan"}, {"trick": "instance noise"}):
        s.advance()
        assert s.update(change) == "restart" and s.step == 0, change


def test_a_refused_change_changes_nothing():
    s = small_session()
    s.advance()
    before = s.settings
    with pytest.raises(ValueError, match="cross-entropy"):
        s.update({"loss": "hinge", "trick": "label smoothing"})
    assert s.settings == before and s.step == 10


def test_same_settings_same_frames():
    a, b = small_session(seed=4), small_session(seed=4)
    for _ in range(3):
        a.advance()
        b.advance()
    fa, fb = a.frame(), b.frame()
    assert np.array_equal(fa.fake, fb.fake) and np.array_equal(fa.heat, fb.heat)


def test_a_diverged_run_stops_until_a_change_starts_a_new_one(monkeypatch):
    s = small_session()
    monkeypatch.setattr(s.gan, "train_step", lambda: (_ for _ in ()).throw(TrainingDiverged(7, {"d_loss": 1.0})))
    with pytest.raises(TrainingDiverged):
        s.advance()
    assert "press reset" in s.diverged and "press reset" in s.frame().diverged
    with pytest.raises(TrainingDiverged):
        s.advance()
    assert s.update({"lr_g": 1e-3}) == "restart" and not s.diverged  # even a live change starts afresh
    s.advance()


# ------------------------------------------------------------------------------------------------ the thread


class Recorder:
    def __init__(self):
        self.frames, self.infos = [], []
        self.lock = threading.Lock()

    def __call__(self, frame, info):
        with self.lock:
            self.frames.append(frame)
            self.infos.append(info)

    def wait(self, n, timeout=60.0):
        deadline = time.monotonic() + timeout
        while len(self.frames) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.frames) >= n


def test_play_pause_step_and_close():
    rec = Recorder()
    runner = LabRunner(small_session(steps_per_frame=2), rec)
    try:
        runner.play()
        assert rec.wait(6)
        runner.pause()
        assert not runner.playing and rec.infos[-1]["playing"] is False
        step, count = runner.session.step, len(rec.frames)
        assert step > 0 and step % 2 == 0
        time.sleep(0.3)
        assert runner.session.step == step and len(rec.frames) == count  # paused: nothing trains
        frame = runner.step()
        assert frame.step == step + 2 and rec.frames[-1] is frame
        steps = [f.step for f in rec.frames if f is not None]
        assert steps == sorted(steps)
        numbers = [i["number"] for i in rec.infos]
        assert numbers == list(range(1, len(numbers) + 1))  # published in order
    finally:
        runner.close()
    assert not runner._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        runner.play()


def test_changes_land_between_frames_and_answer_their_request():
    rec = Recorder()
    runner = LabRunner(small_session(), rec)
    try:
        assert runner.change({"lr_d": 1e-3}, request=5) == "live"
        assert rec.infos[-1]["request"] == 5 and rec.frames[-1].settings.lr_d == 1e-3  # paused: answered at once
        assert runner.change({"loss": "wgan", "trick": "label smoothing"}, request=6) == "error"
        assert rec.frames[-1] is None and "cross-entropy" in rec.infos[-1]["error"] and rec.infos[-1]["request"] == 6
        runner.play()
        n = len(rec.frames)
        assert runner.change({"seed": 2}, request=7) == "restart"
        assert rec.wait(n + 2)
        runner.pause()
        assert rec.infos[-1]["request"] == 7 and rec.frames[-1].settings.seed == 2
    finally:
        runner.close()


def test_a_front_end_that_does_not_acknowledge_holds_the_frames():
    rec = Recorder()
    runner = LabRunner(small_session(), rec, max_in_flight=2, ack_timeout=0.5)
    try:
        runner.ack(0)  # a front end is there
        runner.play()
        time.sleep(0.3)
        held = len(rec.frames)
        assert held <= 1 + 2  # the play announcement, then at most two frames without an answer
        runner.ack(rec.infos[-1]["number"])
        assert rec.wait(held + 1)
        time.sleep(1.0)  # no answer for ack_timeout: the front end counts as gone, frames go on
        assert len(rec.frames) > held + 2
    finally:
        runner.close()


def test_an_error_in_the_thread_is_reported_and_stops_play(monkeypatch):
    rec = Recorder()
    runner = LabRunner(small_session(), rec)
    monkeypatch.setattr(runner.session, "advance", lambda: 1 / 0)
    try:
        runner.play()
        deadline = time.monotonic() + 30
        while runner.playing and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not runner.playing and "ZeroDivisionError" in runner.error
        assert any("the lab stopped" in i["error"] for i in rec.infos)
    finally:
        runner.close()


# ------------------------------------------------------------------------------------------------ the widget


def test_the_widget_layer():
    pytest.importorskip("anywidget")
    from gancourse.viz import lab_widget as lw

    specs = {c["name"]: c for c in lw.CONTROL_SPECS}
    assert [c for c in CONTROLS if c in specs] == [c["name"] for c in lw.CONTROL_SPECS if not c.get("local")]
    assert [v for v, _ in specs["loss"]["options"]] == list(LOSSES)
    assert [v for v, _ in specs["penalty"]["options"]] == list(PENALTIES)
    assert [v for v, _ in specs["trick"]["options"]] == list(LAB_TRICKS)
    default = LabSettings()
    for name, spec in specs.items():
        if spec["kind"] in ("range", "log"):
            assert spec["min"] <= getattr(default, name) <= spec["max"], name
        if spec["kind"] == "select":
            assert getattr(default, name) in [v for v, _ in spec["options"]], name
    js = (lw.STATIC / "gan_lab.js").read_text() + (lw.STATIC / "widget_common.js").read_text()
    assert "export default" in js and '"ack"' in js and '"hello"' in js


def test_frame_messages_are_strict_json_with_float32_buffers():
    pytest.importorskip("anywidget")
    from gancourse.viz.lab_widget import frame_message

    s = small_session()
    s.advance()
    f = s.frame()
    msg, buffers = frame_message(f, {"number": 3, "request": 2, "error": "", "playing": False, "fps": float("nan"),
                                     "steps_per_s": 0.0})
    json.dumps(msg, allow_nan=False)
    arrays = dict(zip(msg["buffers"], (np.frombuffer(b, dtype=np.float32) for b in buffers)))
    assert np.allclose(arrays["heat"].reshape(8, 8), f.heat, atol=1e-6)
    assert np.allclose(arrays["fake"].reshape(-1, 2), f.fake, rtol=1e-6, atol=1e-6)
    assert np.allclose(arrays["manifold"].reshape(5, 5, 2), f.manifold, rtol=1e-6, atol=1e-6)
    assert len(arrays["curve_d_loss"]) == len(arrays["curve_step"]) == 1
    assert msg["fps"] == "nan" and msg["step"] == 10 and msg["controls"] == sorted(applicable_controls(s.settings))
    assert "ring of 8" in msg["title"] and "10 steps per frame" in msg["title"]


def test_the_widget_answers_its_front_end():
    pytest.importorskip("anywidget")
    from gancourse.viz.lab_widget import GANLab

    lab = GANLab(small_session())
    try:
        lab._on_msg(lab, {"type": "hello"}, [])
        assert lab.last["type"] == "frame" and lab.last["step"] == 0
        lab._on_msg(lab, {"type": "step"}, [])
        assert lab.last["step"] == 10 and lab.last["playing"] is False
        lab._on_msg(lab, {"type": "change", "request": 4, "changes": {"penalty": "none"}}, [])
        assert lab.last["request"] == 4 and "gamma" not in lab.last["controls"]
        lab._on_msg(lab, {"type": "change", "request": 5, "changes": {"n_critic": "many"}}, [])
        assert lab.last["type"] == "error" and "n_critic" in lab.last["error"]
        with pytest.raises(ValueError, match="n_critic"):
            lab.change(n_critic=-1)
        assert lab.change(lr_g=1e-3) == "live"
        lab._on_msg(lab, {"type": "reset"}, [])
        assert lab.last["step"] == 0
        lab._on_msg(lab, {"type": "play"}, [])
        assert lab.playing
        lab._on_msg(lab, {"type": "pause"}, [])
        assert not lab.playing
    finally:
        lab.close()
    assert not lab.runner._thread.is_alive()


def test_the_static_files_ship_with_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gancourse"]
    for name in ("gan_lab.js", "gan_lab.css", "widget_common.js", "divergence_explorer.js",
                 "divergence_explorer.css", "image_explorer.js", "image_explorer.css"):
        rel = f"viz/static/{name}"
        assert (ROOT / "gancourse" / rel).is_file() and any(fnmatch(rel, p) for p in data), rel


def test_notebook_05b_shows_the_lab_paused():
    nb = nbformat.read(ROOT / "notebooks" / "05b_gan_lab.ipynb", as_version=4)
    cells = [c for c in nb.cells if "gan-lab" in c.metadata.get("tags", [])]
    assert len(cells) == 1 and "gan_lab(" in cells[0].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert ".play()" not in code  # the lab never starts on its own
