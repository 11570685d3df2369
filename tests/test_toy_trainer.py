"""Tests for the NumPy toy GAN trainer: determinism, every trick, checkpoints, divergence, input checks."""
from __future__ import annotations

import os

import numpy as np
import pytest

from gancourse.errors import DivergenceError, TrainingDiverged
from gancourse.nn import MLP, SGD, Adam, make_optimizer
from gancourse.toy import ToyConfig, ToyGAN, plain_gan
from gan_testing import assert_tree_equal

# Tiny networks and batches: every run below takes milliseconds.
SMALL = dict(batch_size=32, z_dim=4, g_hidden=(16, 16), d_hidden=(16, 16), n_eval=200)
STEPS = 12

MIXTURES = {"ring8", "grid25", "mixture1d"}
ONE_D = {"gaussian", "mixture1d"}


def tiny(data: str = "ring8", steps: int = STEPS, **changes) -> ToyConfig:
    """The recommended recipe (whatever its current defaults are) with tiny sizes."""
    return ToyConfig(data=data, steps=steps, **{**SMALL, **changes})


def trained(cfg: ToyConfig, **train_kwargs) -> ToyGAN:
    gan = ToyGAN(cfg)
    gan.train(progress=False, **train_kwargs)
    return gan


def expected_metric_keys(data: str) -> set[str]:
    keys = set()
    if data in MIXTURES:
        keys |= {"modes", "hq", "reverse_kl"}
    if data in ONE_D:
        keys |= {"w1"}
    if data not in MIXTURES and data not in ONE_D:
        keys |= {"energy", "sliced_w1"}
    return keys


def assert_same_run(a: ToyGAN, b: ToyGAN) -> None:
    assert a.step == b.step
    assert a.G.theta.dtype == b.G.theta.dtype
    assert np.array_equal(a.G.theta, b.G.theta)
    assert np.array_equal(a.D.theta, b.D.theta)
    assert_tree_equal(a.history, b.history, "history")
    assert np.array_equal(a.sample(64), b.sample(64))
    assert np.array_equal(a.sample(64, raw=True), b.sample(64, raw=True))


# --- determinism and every option ------------------------------------------------------------

CONFIGS = {
    "recipe": tiny(),
    "wgan-gp+hinge": tiny(loss="hinge", penalty="wgan-gp", gamma=1.0),
    "wgan-gp+wgan": tiny(loss="wgan", penalty="wgan-gp", gamma=1.0),
    "r2": tiny(penalty="r2", gamma=0.5),
    "plain": plain_gan("ring8", steps=STEPS, **SMALL),
    "saturating": plain_gan("ring8", loss="gan", steps=STEPS, **SMALL),
    "rpgan": tiny(loss="rpgan"),
    "lsgan": tiny(loss="lsgan", penalty="none"),
    "feature_matching": tiny(feature_matching=True),
    "minibatch_discrimination": tiny(minibatch_discrimination=4, penalty="none"),
    "historical_averaging": tiny(historical_averaging=0.01),
    "instance_noise": tiny(instance_noise=0.1),
    "unrolled": tiny(unrolled_steps=2),
    "n_critic": tiny(n_critic=3),
    "label_smoothing": tiny(loss="ns", label_smoothing=0.9),
    "weight_clip": tiny(loss="wgan", penalty="none", weight_clip=0.05),
    "spectral_norm": tiny(spectral_norm=True),
    "sgd": tiny(optimizer="sgd", lr_g=1e-2, lr_d=1e-2),
    "momentum": tiny(optimizer="momentum", momentum=0.5, lr_g=1e-2, lr_d=1e-2),
    "negative_momentum": tiny(optimizer="momentum", momentum=-0.3, lr_g=1e-2, lr_d=1e-2),
    "rmsprop": tiny(optimizer="rmsprop"),
    "float64": tiny(dtype="float64"),
    "tanh+xavier": tiny(g_activation="tanh", d_activation="tanh", init="xavier"),
    "no_ema": tiny(ema=0.0),
    "constant_lr": tiny(lr_schedule="constant"),
    "everything": tiny(
        loss="ns", penalty="none", feature_matching=True, minibatch_discrimination=2, historical_averaging=0.01,
        instance_noise=0.1, unrolled_steps=1, n_critic=2, label_smoothing=0.9, spectral_norm=True,
    ),
    "gaussian": tiny("gaussian"),
    "mixture1d": tiny("mixture1d"),
    "grid25": tiny("grid25"),
    "swiss_roll": tiny("swiss_roll"),
    "two_moons": tiny("two_moons"),
    "spiral": tiny("spiral"),
    "checkerboard": tiny("checkerboard"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_seed_is_bit_identical(name):
    cfg = CONFIGS[name]
    a, b = trained(cfg), trained(cfg)
    assert a.step == cfg.steps
    assert np.isfinite(a.G.theta).all() and np.isfinite(a.D.theta).all()
    assert_same_run(a, b)
    assert_tree_equal(a.opt_g.state_dict(), b.opt_g.state_dict(), "opt_g")
    assert_tree_equal(a.opt_d.state_dict(), b.opt_d.state_dict(), "opt_d")
    # evaluation is deterministic too and gives the metrics that suit the data set
    m1, m2 = a.evaluate(), b.evaluate()
    assert_tree_equal(m1, m2, "metrics")
    assert expected_metric_keys(cfg.data) <= set(m1), sorted(m1)
    if cfg.data not in MIXTURES:
        assert "modes" not in m1
    if cfg.data not in ONE_D:
        assert "w1" not in m1
    samples = a.sample(10)
    assert samples.shape == (10, a.dim) and samples.dtype == np.float64


@pytest.mark.parametrize("name", ["recipe", "plain", "wgan-gp+hinge", "rpgan", "gaussian", "spiral", "everything"])
def test_different_seed_differs(name):
    cfg = CONFIGS[name]
    a, b = trained(cfg), trained(cfg.replace(seed=cfg.seed + 1))
    assert not np.array_equal(a.G.theta, b.G.theta)
    assert not np.array_equal(a.D.theta, b.D.theta)
    assert not np.array_equal(a.sample(64), b.sample(64))
    assert a.history["d_loss"] != b.history["d_loss"]


def test_sampling_does_not_change_training():
    a, b = ToyGAN(tiny()), ToyGAN(tiny())
    a.train(5, progress=False)
    b.train(5, progress=False)
    a.sample(100)
    a.evaluate()
    a.discriminator(np.zeros((3, 2)))
    a.train(progress=False)
    b.train(progress=False)
    assert_same_run(a, b)


def test_overrides_and_dimensions():
    gan = ToyGAN(tiny(loss="ns"), data="gaussian", steps=3)
    assert gan.config.data == "gaussian" and gan.config.steps == 3
    assert gan.dim == 1 and gan.G.n_out == 1 and gan.D.n_in == 1
    gan.train(progress=False)
    assert gan.sample(7).shape == (7, 1)
    d = gan.discriminator(np.linspace(-1, 1, 5)[:, None])
    assert d.shape == (5,) and np.all((d > 0) & (d < 1))  # sigmoid of the logit for the 'ns' loss


def test_discriminator_uses_the_stable_sigmoid(monkeypatch):
    # one sigmoid: gancourse.nn's, which neither overflows nor warns for logits far below zero
    from gancourse.nn import sigmoid

    gan = ToyGAN(tiny())
    logits = np.array([[-1000.0], [-30.0], [0.0], [30.0], [1000.0]], dtype=gan.dtype)
    monkeypatch.setattr(gan.D, "forward", lambda x: logits)
    with np.errstate(over="raise", invalid="raise"):  # the old 1 / (1 + exp(-x)) overflowed at x = -1000
        d = gan.discriminator(np.zeros((5, 2)))
    np.testing.assert_array_equal(d, sigmoid(logits[:, 0].astype(np.float64)))
    assert d[0] == 0.0 and d[2] == 0.5 and d[-1] == 1.0 and 0 < d[1] < 1e-12


def test_discriminator_is_raw_output_for_wgan():
    gan = ToyGAN(tiny(loss="wgan", penalty="wgan-gp", gamma=1.0))
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    logits = gan.D.forward((x / gan.scale).astype(gan.dtype))[:, 0]
    assert np.array_equal(gan.discriminator(x), logits.astype(np.float64))


def test_ema_generator_differs_from_raw_and_is_the_average():
    gan = trained(tiny(ema=0.9))
    assert gan.ema is not None
    assert np.array_equal(gan.generator.theta, gan.ema.avg["theta"])
    assert not np.array_equal(gan.sample(32), gan.sample(32, raw=True))
    off = trained(tiny(ema=0.0))
    assert off.ema is None and off.generator is off.G
    assert np.array_equal(off.sample(32), off.sample(32, raw=True))


def test_train_in_pieces_equals_train_at_once():
    a = trained(tiny(steps=20), log_every=1)
    b = ToyGAN(tiny(steps=20))
    for target in (3, 3, 11, 20):
        b.train(target, progress=False, log_every=1)
    assert_same_run(a, b)


# --- checkpoint / resume ---------------------------------------------------------------------

RESUME_CONFIGS = {
    "recipe": tiny(steps=20),
    "hist+wgan-gp": tiny(steps=20, loss="wgan", penalty="wgan-gp", gamma=1.0, historical_averaging=0.01),
    "sn+noise+unrolled": tiny(
        steps=20, spectral_norm=True, instance_noise=0.1, unrolled_steps=1, n_critic=2, optimizer="rmsprop",
        eval_every=5,
    ),
    "mbd+momentum+1d": tiny(
        "mixture1d", steps=20, penalty="none", minibatch_discrimination=3, optimizer="momentum", momentum=0.5,
        lr_g=1e-2, lr_d=1e-2, dtype="float64",
    ),
}


@pytest.mark.parametrize("name", list(RESUME_CONFIGS))
def test_resume_is_exact(name, tmp_path):
    cfg = RESUME_CONFIGS[name]
    full = trained(cfg, log_every=1)

    half = ToyGAN(cfg)
    half.train(cfg.steps // 2, progress=False, log_every=1)
    path = half.save(tmp_path / "run.npz")
    assert path == tmp_path / "run.npz" and path.is_file()
    resumed = ToyGAN.load(path)
    assert resumed.config == cfg
    assert resumed.step == cfg.steps // 2
    assert_tree_equal(resumed.state_dict(), half.state_dict(), "state")
    resumed.train(progress=False, log_every=1)

    assert_same_run(full, resumed)
    assert_tree_equal(full.opt_g.state_dict(), resumed.opt_g.state_dict(), "opt_g")
    assert_tree_equal(full.opt_d.state_dict(), resumed.opt_d.state_dict(), "opt_d")
    assert_tree_equal(full.G.state_dict(), resumed.G.state_dict(), "G")
    assert_tree_equal(full.D.state_dict(), resumed.D.state_dict(), "D")  # includes spectral-norm vectors
    assert (full.ema is None) == (resumed.ema is None)
    if full.ema is not None:
        assert full.ema.t == resumed.ema.t
        assert np.array_equal(full.ema.avg["theta"], resumed.ema.avg["theta"])
    for name_ in ("hist_g", "hist_d"):
        a, b = getattr(full, name_), getattr(resumed, name_)
        assert (a is None) == (b is None)
        if a is not None:
            assert_tree_equal(a.state_dict(), b.state_dict(), name_)
    assert full.rng.bit_generator.state == resumed.rng.bit_generator.state
    assert_tree_equal(full.evaluate(), resumed.evaluate(), "metrics")


def test_checkpoint_of_fresh_run_and_resume_twice(tmp_path):
    cfg = tiny(steps=9, historical_averaging=0.01)
    full = trained(cfg, log_every=1)
    gan = ToyGAN(cfg)
    gan.save(tmp_path / "c.npz")  # step 0: empty optimizer state, empty history
    gan = ToyGAN.load(tmp_path / "c.npz")
    gan.train(4, progress=False, log_every=1)
    gan.save(tmp_path / "c.npz")  # overwrite in place
    gan = ToyGAN.load(tmp_path / "c.npz")
    gan.train(progress=False, log_every=1)
    assert_same_run(full, gan)


def test_checkpoint_is_written_atomically(tmp_path):
    gan = trained(tiny(steps=4))
    path = tmp_path / "ck" / "run.npz"  # the folder is created
    gan.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.npz"]
    gan.save(path)  # overwriting leaves no temporary file either
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.npz"]


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    gan = trained(tiny(steps=4))
    path = tmp_path / "run.npz"
    gan.save(path)
    before = path.read_bytes()
    gan.train(8, progress=False)

    def broken_savez(fh, **arrays):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        gan.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]
    assert ToyGAN.load(path).step == 4


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ToyGAN.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a gancourse checkpoint"):
        ToyGAN.load(tmp_path / "other.npz")


# --- divergence -----------------------------------------------------------------------------


def test_nan_data_raises_divergence_error_with_step_and_last_losses(monkeypatch):
    gan = ToyGAN(tiny(steps=20))
    k = 5
    real_batch = gan.real_batch

    def poisoned(n):
        x = real_batch(n)
        return x * np.nan if gan.step >= k else x

    monkeypatch.setattr(gan, "real_batch", poisoned)
    with pytest.raises(TrainingDiverged) as info:
        gan.train(progress=False, log_every=1)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert isinstance(err, DivergenceError)  # the earlier name is an alias: `except DivergenceError` still works
    assert DivergenceError is TrainingDiverged
    assert err.step == k + 1
    assert gan.step == k + 1
    last = {key: gan.history[key][-1] for key in ("d_loss", "g_loss", "penalty")}
    assert gan.history["step"][-1] == k
    assert err.last_finite == last
    assert all(np.isfinite(v) for v in err.last_finite.values())
    msg = str(err)
    assert f"step {k + 1}" in msg
    assert "last finite losses" in msg
    for key, value in last.items():
        assert f"{key}={value:.4g}" in msg


@pytest.mark.parametrize("loss", ["lsgan", "wgan"])
def test_huge_learning_rate_diverges(loss):
    cfg = tiny(steps=50, loss=loss, penalty="none", optimizer="sgd", lr_g=1e6, lr_d=1e6, ema=0.0)
    gan = ToyGAN(cfg)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"diverged at step \d+") as info:
        gan.train(progress=False)
    err = info.value
    assert 1 <= err.step <= cfg.steps
    assert err.step == gan.step
    assert isinstance(err.last_finite, dict)
    if err.step > 1:
        assert set(err.last_finite) == {"d_loss", "g_loss", "penalty"}
        assert all(np.isfinite(v) for v in err.last_finite.values())


def test_divergence_on_first_step_says_none_yet(monkeypatch):
    gan = ToyGAN(tiny())
    monkeypatch.setattr(gan, "real_batch", lambda n: np.full((n, 2), np.inf, gan.dtype))
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="step 1.*none yet") as info:
        gan.train(progress=False)
    assert info.value.step == 1 and info.value.last_finite == {}


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, listed",
    [
        ("loss", "'ns'"),
        ("penalty", "'wgan-gp'"),
        ("optimizer", "'adam'"),
        ("g_activation", "'leaky_relu'"),
        ("d_activation", "'relu'"),
        ("init", "'xavier'"),
        ("lr_schedule", "'linear'"),
        ("dtype", "'float64'"),
    ],
)
def test_unknown_option_lists_valid_ones(field, listed):
    with pytest.raises(ValueError, match=rf"unknown {field} 'nope'; valid options are: .*{listed}"):
        ToyConfig(**{field: "nope"})


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown data 'nope'; valid options are: .*'ring8'.*'checkerboard'"):
        ToyGAN(ToyConfig(data="nope", **SMALL))


@pytest.mark.parametrize(
    "changes, exc, pattern",
    [
        (dict(lr_g=0), ValueError, r"lr_g must be a finite number > 0, got 0"),
        (dict(lr_d=-1), ValueError, r"lr_d must be a finite number > 0, got -1"),
        (dict(lr_d=float("nan")), ValueError, r"lr_d must be a finite number"),
        (dict(lr_g="0.1"), TypeError, r"lr_g must be a number, got str"),
        (dict(steps=10.5), TypeError, r"steps must be a non-negative integer, got 10.5"),
        (dict(steps="10"), TypeError, r"steps must be a number, got str"),
        (dict(steps=0), ValueError, r"steps must be a finite number > 0"),
        (dict(batch_size=True), TypeError, r"batch_size must be a number, got bool"),
        (dict(unrolled_steps=-1), TypeError, r"unrolled_steps must be a non-negative integer"),
        (dict(label_smoothing=0.0), ValueError, r"label_smoothing .* \(0, 1\], got 0.0"),
        (dict(label_smoothing=1.5), ValueError, r"label_smoothing .* \(0, 1\], got 1.5"),
        (dict(loss="wgan", penalty="none", label_smoothing=0.9), ValueError, r"label_smoothing applies to .*'wgan'"),
        (dict(penalty="r1", gamma=0.0), ValueError, r"penalty 'r1' needs a positive weight \(gamma\), got 0"),
        (dict(penalty="wgan-gp", gamma=0.0), ValueError, r"penalty 'wgan-gp' needs a positive weight"),
        (dict(gamma=-1.0), ValueError, r"gamma must be a finite number >= 0"),
        (dict(penalty="r1", gamma=1.0, minibatch_discrimination=4), ValueError, r"minibatch discrimination"),
        (dict(ema=1.0), ValueError, r"ema is a decay in \[0, 1\)"),
        (dict(lr_final=2.0), ValueError, r"lr_final .* \[0, 1\], got 2.0"),
        (dict(g_hidden=[16, 16]), TypeError, r"g_hidden must be a tuple of positive integers"),
        (dict(d_hidden=(16, 0)), TypeError, r"d_hidden must be a tuple of positive integers"),
    ],
)
def test_bad_config_values(changes, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ToyConfig(**{**SMALL, **changes})
    with pytest.raises(exc, match=pattern):  # replace() validates again
        tiny().replace(**changes)


def test_from_dict_rejects_unknown_fields_and_round_trips():
    cfg = tiny(spectral_norm=True)
    assert ToyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['lr'\]; valid fields are: .*'lr_g'"):
        ToyConfig.from_dict({**cfg.to_dict(), "lr": 1e-3})


def test_train_behind_current_step():
    gan = trained(tiny(steps=6))
    with pytest.raises(ValueError, match=r"steps=3 is behind the current step 6"):
        gan.train(3, progress=False)


def test_mlp_input_checks():
    net = MLP([2, 8, 1], "relu", seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\), got shape \(5, 3\)"):
        net.forward(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\), got shape \(2,\)"):
        net.forward(np.zeros(2))
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; valid options are: .*'leaky_relu'"):
        MLP([2, 8, 1], "swish")
    with pytest.raises(ValueError, match=r"unknown out_activation 'softmax'"):
        MLP([2, 8, 1], out_activation="softmax")
    with pytest.raises(ValueError, match=r"unknown init 'zeros'"):
        MLP([2, 8, 1], init="zeros")
    with pytest.raises(ValueError, match=r"sizes must list at least two positive widths"):
        MLP([2])
    assert net.forward(np.zeros((5, 2))).shape == (5, 1)


def test_mlp_load_state_dict_checks_keys_and_shapes():
    net = MLP([2, 8, 1], seed=0)
    other = MLP([2, 8, 1], seed=1)
    sd = other.state_dict()
    net.load_state_dict(sd)
    assert np.array_equal(net.theta, other.theta)

    missing = {k: v for k, v in sd.items() if k != "0.W"}
    with pytest.raises(ValueError, match=r"keys do not match.*missing \['0.W'\]"):
        net.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected \['bogus'\]"):
        net.load_state_dict({**sd, "bogus": np.zeros(1)})
    with pytest.raises(ValueError, match=r"state_dict\['0.W'\] has shape \(3, 8\), expected \(2, 8\)"):
        net.load_state_dict({**sd, "0.W": np.zeros((3, 8))})
    with pytest.raises(ValueError, match=r"keys do not match"):
        net.load_state_dict(MLP([2, 8, 8, 1]).state_dict())
    assert np.array_equal(net.theta, other.theta)  # failed loads leave the weights alone


def test_optimizer_checks():
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got 0"):
        Adam(lr=0)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got -1"):
        SGD(lr=-1)
    with pytest.raises(ValueError, match=r"momentum must be in \(-1, 1\)"):
        SGD(lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\)"):
        Adam(lr=0.1, beta1=1.0)
    with pytest.raises(ValueError, match=r"unknown optimizer 'adagrad'; valid options are: .*'rmsprop'"):
        make_optimizer("adagrad", 0.1)
    opt = Adam(lr=0.1)
    with pytest.raises(ValueError, match=r"same keys"):
        opt.step({"a": np.zeros(2)}, {"b": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grads\['a'\] has shape \(3,\), params\['a'\] has shape \(2,\)"):
        opt.step({"a": np.zeros(2)}, {"a": np.zeros(3)})


def test_discriminator_input_checks():
    gan = ToyGAN(tiny())
    with pytest.raises(ValueError, match=r"x contains 1 NaN/inf value\(s\); the first is at index \(1, 0\)"):
        gan.discriminator(np.array([[0.0, 0.0], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\), got shape \(4, 1\)"):
        gan.discriminator(np.zeros((4, 1)))
    with pytest.raises(TypeError, match=r"x must hold numbers"):
        gan.discriminator(np.array([["a", "b"]]))


# --- callbacks, history, periodic evaluation ------------------------------------------------


def test_callbacks_are_called_every_n_steps():
    seen = []
    gan = ToyGAN(tiny(steps=10))
    gan.train(progress=False, callbacks=[lambda g: seen.append(g.step), lambda g: seen.append(-g.step)],
              callback_every=3)
    assert seen == [3, -3, 6, -6, 9, -9]
    # resuming keeps counting on the global step
    seen.clear()
    gan.train(13, progress=False, callbacks=[lambda g: seen.append(g.step)], callback_every=4)
    assert seen == [12]


def test_callback_sees_a_consistent_trainer():
    shapes = []

    def cb(gan: ToyGAN) -> None:
        shapes.append((gan.step, gan.sample(5, raw=True).shape, len(gan.history["step"])))

    ToyGAN(tiny(steps=4)).train(progress=False, callbacks=[cb], callback_every=2, log_every=1)
    assert shapes == [(2, (5, 2), 2), (4, (5, 2), 4)]


@pytest.mark.parametrize("steps, log_every, logged", [(25, 10, [10, 20]), (6, 1, [1, 2, 3, 4, 5, 6]), (5, 10, [])])
def test_history_lists_have_the_same_length(steps, log_every, logged):
    gan = trained(tiny(steps=steps), log_every=log_every)
    h = gan.history
    assert h["step"] == logged
    for key in ("d_loss", "g_loss", "penalty"):
        assert len(h[key]) == len(h["step"])
        assert all(isinstance(v, float) and np.isfinite(v) for v in h[key])
    assert h["eval"] == []  # eval_every=0: metrics only at the end, by evaluate()


def test_penalty_is_recorded_when_on_and_zero_when_off():
    on = trained(tiny(penalty="r1", gamma=1.0), log_every=1)
    off = trained(tiny(penalty="none"), log_every=1)
    assert any(p > 0 for p in on.history["penalty"])
    assert all(p == 0 for p in off.history["penalty"])


@pytest.mark.parametrize("data", ["ring8", "gaussian", "two_moons"])
def test_eval_every_records_metrics(data):
    gan = trained(tiny(data, steps=10, eval_every=4))
    ev = gan.history["eval"]
    assert [e["step"] for e in ev] == [4, 8]
    for e in ev:
        assert expected_metric_keys(data) <= set(e)
    # the last recorded evaluation is what evaluate() gave at that step
    again = ToyGAN(tiny(data, steps=10, eval_every=4))
    again.train(8, progress=False)
    assert_tree_equal({"step": 8, **again.evaluate()}, ev[-1], "eval")


def test_run_returns_metrics_steps_and_seconds():
    result = ToyGAN(tiny(steps=5)).run(progress=False)
    assert {"modes", "hq", "reverse_kl", "steps", "seconds"} <= set(result)
    assert result["steps"] == 5 and result["seconds"] >= 0


def test_smoke_mode_reads_the_environment(monkeypatch):
    from gancourse.toy import smoke_mode

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("GANCOURSE_SMOKE", "0")
    assert not smoke_mode()
    monkeypatch.setenv("GANCOURSE_SMOKE", "1")
    assert smoke_mode()
    monkeypatch.delenv("GANCOURSE_SMOKE")
    monkeypatch.setenv("CI", "true")
    assert smoke_mode()
    assert os.environ["CI"] == "true"
