"""Centred-difference gradient checks (float64) of every backward pass in gancourse.nn.

Each test compares an analytic gradient with ``numerical_grad`` (centred
differences) and asks for a relative error below 1e-6:
layers through MLP configurations, the input gradient, double backprop for
R1 / R2 / WGAN-GP, every GAN loss, feature matching, historical averaging,
and a full discriminator step and generator step of the toy trainer.

Spectral-norm networks run one forward pass in training mode and are then
put in eval mode, so the power-iteration vectors u, v stay fixed: the
gradient treats them as constants (Miyato et al. 2018).
"""
from __future__ import annotations

import numpy as np
import pytest

from gancourse.nn import (
    ACTIVATIONS,
    LOSSES,
    MLP,
    PENALTIES,
    PENALTY_POINTS,
    HistoricalAverage,
    apply_penalty,
    d_loss_bce,
    d_loss_hinge,
    d_loss_lsgan,
    d_loss_rpgan,
    d_loss_wgan,
    feature_matching_loss,
    g_loss_hinge,
    g_loss_lsgan,
    g_loss_nonsaturating,
    g_loss_rpgan,
    g_loss_saturating,
    g_loss_wgan,
    get_loss,
    numerical_grad,
    penalty_from_grad,
    r1_penalty,
    rel_error,
    wgan_gp_penalty,
)
from gan_testing import (  # noqa: E402
    D_STEP_CASES,
    DOUBLE_CASES,
    G_STEP_CASES,
    MLP_GROUP_CASES,
    B,
    N,
    case_id,
    frozen_gan,
    make_net,
)

# Step of the centred differences: near the float64 optimum cbrt(2^-52) ~ 6e-6, where truncation
# (~eps^2) and roundoff (~1e-16 |f| / eps) balance. With eps = 1e-6 the checks also pass, but
# ill-conditioned cases (WGAN-GP on a sigmoid-output network, whose penalty is ~1e4 times its
# gradient) then come within a factor 1.1 of the 1e-6 tolerance through roundoff alone.
EPS = 1e-5
TOL = 1e-6

#: worst relative error seen per kind of check (printed at the end of the module, shown with -s)
WORST: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    yield
    if WORST:
        print("\nworst relative errors (numeric vs analytic):")
        for name, err in sorted(WORST.items()):
            print(f"  {name:<28s} {err:.2e}")


def assert_close(kind: str, analytic: np.ndarray, numeric: np.ndarray, tol: float = TOL) -> float:
    """Relative error of two gradients, recorded under ``kind`` and asserted below ``tol``."""
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    assert analytic.shape == numeric.shape, (analytic.shape, numeric.shape)
    assert np.all(np.isfinite(analytic)), f"{kind}: non-finite analytic gradient"
    err = rel_error(analytic, numeric)
    WORST[kind] = max(WORST.get(kind, 0.0), err)
    assert err < tol, f"{kind}: relative error {err:.3e} >= {tol:g}"
    return err


def per_key(net: MLP, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Split a flat gradient into the network's named parameters (through its ``grads`` views)."""
    saved = net.dtheta.copy()
    net.dtheta[...] = flat
    out = {k: v.copy() for k, v in net.grads.items()}
    net.dtheta[...] = saved
    return out


def check_net_params(kind: str, net: MLP, f, analytic: np.ndarray) -> None:
    """Compare ``analytic`` (a copy of ``net.dtheta``) with the numeric gradient of ``f``: all of
    ``theta`` at once, then each named parameter on its own scale (so a small layer is not hidden
    behind a large one), skipping blocks whose gradient is zero up to roundoff."""
    compare_flat(kind, net, analytic, numerical_grad(f, net.theta, EPS))


def compare_flat(kind: str, net: MLP, analytic: np.ndarray, numeric: np.ndarray) -> None:
    assert_close(kind, analytic, numeric)
    ours, theirs = per_key(net, analytic), per_key(net, numeric)
    floor = 1e-6 * np.abs(numeric).max()
    for key in ours:
        if np.abs(theirs[key]).max() > floor:
            assert_close(f"{kind} [per key]", ours[key], theirs[key])


# ------------------------------------------------------------------------- layers through MLPs


@pytest.mark.parametrize("kw, groups", MLP_GROUP_CASES, ids=[case_id({**k, "groups": g}) for k, g in MLP_GROUP_CASES])
def test_mlp_backward(kw, groups):
    rng = np.random.default_rng(1)
    sizes = [3, 6, 5, 2]
    x = rng.standard_normal((N, sizes[0]))
    net = make_net(sizes, x=x, **kw)
    w = rng.standard_normal((N, sizes[-1]))

    def loss() -> float:
        return float(np.sum(w * net.forward(x, groups=groups)))

    loss()
    net.zero_grad()
    dx = net.backward(w.copy())
    analytic = net.dtheta.copy()
    check_net_params("mlp params", net, loss, analytic)
    assert_close("mlp dL/dx", dx, numerical_grad(loss, x, EPS))


def test_single_linear_layer_and_accumulation():
    """``MLP([4, 3])`` is one Linear layer; gradients accumulate until ``zero_grad``."""
    rng = np.random.default_rng(2)
    net = make_net([4, 3])
    x, w = rng.standard_normal((N, 4)), rng.standard_normal((N, 3))
    net.forward(x)
    net.zero_grad()
    dx = net.backward(w)
    np.testing.assert_allclose(net.grads["0.W"], x.T @ w, rtol=1e-12)
    np.testing.assert_allclose(net.grads["0.b"], w.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(dx, w @ net.params["0.W"].T, rtol=1e-12)
    first = net.dtheta.copy()
    net.forward(x)
    net.backward(w)
    np.testing.assert_allclose(net.dtheta, 2 * first, rtol=1e-12)
    net.zero_grad()
    assert not net.dtheta.any()


def test_backward_without_param_grads_leaves_grads_alone():
    rng = np.random.default_rng(3)
    net = make_net([3, 5, 1], activation="tanh")
    x, w = rng.standard_normal((N, 3)), rng.standard_normal((N, 1))
    net.zero_grad()
    net.forward(x)
    dx = net.backward(w, param_grads=False)
    assert not net.dtheta.any()
    assert_close("mlp dL/dx", dx, numerical_grad(lambda: float(np.sum(w * net.forward(x))), x, EPS))


def test_state_dict_roundtrip_keeps_gradients():
    """A network loaded from ``state_dict`` (spectral-norm vectors included) computes the same gradients."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((N, 3)), rng.standard_normal((N, 1))
    net = make_net([3, 5, 1], x=x, activation="tanh", spectral_norm=True)
    other = MLP([3, 5, 1], "tanh", dtype=np.float64, spectral_norm=True, seed=9).eval()
    other.load_state_dict(net.state_dict())
    for m in (net, other):
        m.zero_grad()
        m.forward(x)
        m.backward(w)
    np.testing.assert_array_equal(other.forward(x), net.forward(x))
    np.testing.assert_array_equal(other.dtheta, net.dtheta)


# ------------------------------------------------------------------------------- input gradient


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("out_activation", [None, "sigmoid"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_input_grad(activation, out_activation, spectral_norm):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, 3))
    net = make_net([3, 6, 5, 1], x=x, activation=activation, out_activation=out_activation,
                   spectral_norm=spectral_norm)
    net.zero_grad()
    net.forward(x)
    g = net.input_grad()
    assert g.shape == x.shape
    assert not net.dtheta.any(), "input_grad must not touch parameter gradients"
    assert_close("input_grad", g, numerical_grad(lambda: float(net.forward(x).sum()), x, EPS))


@pytest.mark.parametrize("rows", [slice(None), slice(0, 3), slice(3, 8), slice(2, 7)])
def test_input_grad_rows_and_dout(rows):
    """``input_grad(dout, rows)``: gradient of ``sum_i dout_i . D(x_i)`` for the chosen rows."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((N, 3))
    net = make_net([3, 6, 2], activation="tanh", out_activation="tanh")
    w = rng.standard_normal((N, 2))[rows]
    net.forward(x)
    g = net.input_grad(w, rows=rows)
    numeric = numerical_grad(lambda: float(np.sum(w * net.forward(x)[rows])), x, EPS)
    assert_close("input_grad", g, numeric[rows])
    with pytest.raises(ValueError, match="dout must have shape"):
        net.input_grad(np.ones((N + 1, 2)))


# ---------------------------------------------------------------------- double backprop (penalties)

PENALTY_FNS = {"r1": r1_penalty, "wgan-gp": wgan_gp_penalty}


@pytest.mark.parametrize("with_loss", [False, True])
@pytest.mark.parametrize("rows", [slice(None), slice(0, 4), slice(5, 8)], ids=["all", "first", "last"])
@pytest.mark.parametrize("penalty", ["r1", "wgan-gp"])
@pytest.mark.parametrize("kw", DOUBLE_CASES, ids=[case_id(k) for k in DOUBLE_CASES])
def test_double_backprop(kw, penalty, rows, with_loss):
    """``backward(dout, d_input_grad=dP/dg)`` gives d(loss + P(input_grad))/dtheta and /dx."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, 2))
    net = make_net([2, 6, 5, 1], x=x, **kw)
    w = rng.standard_normal((N, 1)) if with_loss else None
    weight = 10.0 if penalty == "r1" else 5.0
    fn = PENALTY_FNS[penalty]

    def objective() -> float:
        out = net.forward(x)
        value = fn(net.input_grad(rows=rows), weight)[0]
        return value + (float(np.sum(w * out)) if with_loss else 0.0)

    net.forward(x)
    net.zero_grad()
    g = net.input_grad(rows=rows)
    value, dg = fn(g, weight)
    dx = net.backward(None if w is None else w.copy(), d_input_grad=dg)
    analytic = net.dtheta.copy()
    if dx is None:  # nothing reached the input: piecewise-linear net and no loss term
        assert kw["activation"] in ("relu", "leaky_relu") and kw["out_activation"] is None and not with_loss
        dx = np.zeros_like(x)
    assert value == pytest.approx(fn(g, weight)[0])
    check_net_params(f"{penalty} params", net, objective, analytic)
    assert_close(f"{penalty} dx", dx, numerical_grad(objective, x, EPS))


@pytest.mark.parametrize("kind, fn", [("r1", r1_penalty), ("r2", r1_penalty), ("wgan-gp", wgan_gp_penalty)])
def test_one_penalty_dispatch(kind, fn):
    # penalty_from_grad is the one place that maps a penalty's name to its formula (trainer and apply_penalty)
    g = np.random.default_rng(3).standard_normal((N, 2))
    value, dg = penalty_from_grad(kind, g, 2.5)
    assert value == fn(g, 2.5)[0] and np.array_equal(dg, fn(g, 2.5)[1])
    net = make_net([2, 6, 1], activation="tanh")
    x = np.random.default_rng(4).standard_normal((N, 2))
    net.forward(x)
    expected = penalty_from_grad(kind, net.input_grad(), 2.5)[0]
    net.zero_grad()
    assert apply_penalty(net, x, kind, 2.5) == expected
    assert set(PENALTY_POINTS) == set(PENALTIES) - {"none"}


def test_penalty_dispatch_lists_the_penalties():
    with pytest.raises(ValueError, match="unknown penalty 'r3'; valid options are: 'r1', 'r2', 'wgan-gp'"):
        penalty_from_grad("r3", np.ones((2, 2)), 1.0)


@pytest.mark.parametrize("penalty", ["r1", "wgan-gp"])
def test_double_backprop_multi_output_dout(penalty):
    """A penalty on ``input_grad(dout)`` with a fixed ``dout`` over several outputs."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, 3))
    net = make_net([3, 6, 2], activation="tanh", out_activation="tanh")
    c = rng.standard_normal((N, 2))
    fn = PENALTY_FNS[penalty]

    def objective() -> float:
        net.forward(x)
        return fn(net.input_grad(c), 2.0)[0]

    net.forward(x)
    net.zero_grad()
    _, dg = fn(net.input_grad(c), 2.0)
    dx = net.backward(None, d_input_grad=dg)
    assert dx is not None
    check_net_params(f"{penalty} params", net, objective, net.dtheta.copy())
    assert_close(f"{penalty} dx", dx, numerical_grad(objective, x, EPS))


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu", "sigmoid"])
@pytest.mark.parametrize("kind", ["r1", "r2", "wgan-gp"])
def test_apply_penalty(kind, activation):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((N, 2))
    net = make_net([2, 6, 5, 1], activation=activation)
    weight = 3.0
    fn = wgan_gp_penalty if kind == "wgan-gp" else r1_penalty

    def objective() -> float:
        net.forward(x)
        return fn(net.input_grad(), weight)[0]

    net.zero_grad()
    value = apply_penalty(net, x, kind, weight)
    assert value == pytest.approx(objective(), rel=1e-12)
    check_net_params(f"apply_penalty {kind}", net, objective, net.dtheta.copy())


def test_penalty_value_and_grad_wrt_g():
    rng = np.random.default_rng(10)
    g = rng.standard_normal((N, 3))
    for fn, weight in ((r1_penalty, 10.0), (wgan_gp_penalty, 10.0)):
        value, dg = fn(g, weight)
        assert_close("penalty dP/dg", dg, numerical_grad(lambda: fn(g, weight)[0], g, EPS))
    norms = np.linalg.norm(g, axis=1)
    assert r1_penalty(g, 2.0)[0] == pytest.approx(np.mean(norms**2))
    assert wgan_gp_penalty(g, 2.0)[0] == pytest.approx(2.0 * np.mean((norms - 1) ** 2))


@pytest.mark.parametrize("kw", [dict(layer_norm=True), dict(minibatch_discrimination=(2, 2))])
def test_penalty_unsupported_layers_raise(kw):
    net = make_net([2, 4, 1], **kw)
    net.forward(np.ones((4, 2)))
    with pytest.raises(NotImplementedError, match="double backprop"):
        net.input_grad()


def test_backward_d_input_grad_needs_input_grad():
    net = make_net([2, 4, 1], activation="tanh")
    x = np.ones((4, 2))
    net.forward(x)
    with pytest.raises(RuntimeError, match="input_grad"):
        net.backward(None, d_input_grad=np.ones((4, 2)))
    net.input_grad()
    with pytest.raises(ValueError, match="shape"):
        net.backward(None, d_input_grad=np.ones((3, 2)))


# -------------------------------------------------------------------------------------- losses


def _logits(rng: np.random.Generator, n: int, shape_1d: bool = False, away_from=()) -> np.ndarray:
    """Random logits in about [-3, 3], at least 0.05 away from the kink points ``away_from``."""
    x = rng.uniform(-3, 3, size=n)
    for k in away_from:
        close = np.abs(x - k) < 0.05
        x[close] += 0.1
    return x if shape_1d else x[:, None]


D_LOSSES = {
    "bce": d_loss_bce,
    "bce-0.9": lambda r, f: d_loss_bce(r, f, real_label=0.9),
    "wgan": d_loss_wgan,
    "hinge": d_loss_hinge,
    "lsgan": d_loss_lsgan,
    "rpgan": d_loss_rpgan,
}
G_LOSSES = {
    "saturating": g_loss_saturating,
    "nonsaturating": g_loss_nonsaturating,
    "wgan": g_loss_wgan,
    "hinge": g_loss_hinge,
    "lsgan": g_loss_lsgan,
    "rpgan": g_loss_rpgan,
}


@pytest.mark.parametrize("shape_1d", [False, True])
@pytest.mark.parametrize("name", list(D_LOSSES))
def test_d_loss_gradients(name, shape_1d):
    rng = np.random.default_rng(11)
    n_fake = N if name == "rpgan" else N - 3  # unequal batch sizes where the loss allows them
    real = _logits(rng, N, shape_1d, away_from=(1.0,))
    fake = _logits(rng, n_fake, shape_1d, away_from=(-1.0,))
    fn = D_LOSSES[name]
    loss, d_real, d_fake = fn(real, fake)
    assert isinstance(loss, float)
    assert d_real.shape == real.shape and d_fake.shape == fake.shape
    assert_close(f"d_loss {name}", d_real, numerical_grad(lambda: fn(real, fake)[0], real, EPS))
    assert_close(f"d_loss {name}", d_fake, numerical_grad(lambda: fn(real, fake)[0], fake, EPS))


@pytest.mark.parametrize("shape_1d", [False, True])
@pytest.mark.parametrize("name", list(G_LOSSES))
def test_g_loss_gradients(name, shape_1d):
    rng = np.random.default_rng(12)
    fake = _logits(rng, N, shape_1d)
    real = _logits(rng, N, shape_1d)
    fn = G_LOSSES[name]
    loss, d_fake = fn(fake, real)
    assert isinstance(loss, float) and d_fake.shape == fake.shape
    assert_close(f"g_loss {name}", d_fake, numerical_grad(lambda: fn(fake, real)[0], fake, EPS))


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_registry_pairs(name):
    """Every registered pair has a D loss and a G loss whose gradients check out."""
    rng = np.random.default_rng(13)
    pair = get_loss(name)
    real, fake = _logits(rng, N, away_from=(1.0, -1.0)), _logits(rng, N, away_from=(1.0, -1.0))
    _, dr, df = pair.d(real, fake)
    assert_close(f"registry {name}", df, numerical_grad(lambda: pair.d(real, fake)[0], fake, EPS))
    assert_close(f"registry {name}", dr, numerical_grad(lambda: pair.d(real, fake)[0], real, EPS))
    _, dg = pair.g(fake, real)
    assert_close(f"registry {name}", dg, numerical_grad(lambda: pair.g(fake, real)[0], fake, EPS))


def test_bce_losses_are_stable_for_large_logits():
    big = np.array([[-800.0], [-40.0], [0.0], [40.0], [800.0]])
    for out in (d_loss_bce(big, big), d_loss_bce(big, big, 0.9), g_loss_saturating(big), g_loss_nonsaturating(big),
                d_loss_rpgan(big, big[::-1]), g_loss_rpgan(big, big[::-1])):
        assert np.isfinite(out[0]) and all(np.all(np.isfinite(a)) for a in out[1:])


# ------------------------------------------------------------------------------ training tricks


def test_feature_matching_loss_gradient():
    rng = np.random.default_rng(14)
    f_real, f_fake = rng.standard_normal((N, 5)), rng.standard_normal((N - 2, 5))
    loss, grad = feature_matching_loss(f_real, f_fake)
    assert loss == pytest.approx(np.sum((f_real.mean(0) - f_fake.mean(0)) ** 2))
    numeric = numerical_grad(lambda: feature_matching_loss(f_real, f_fake)[0], f_fake, EPS)
    assert_close("feature matching", grad, numeric)


@pytest.mark.parametrize("kw", [dict(activation="leaky_relu"), dict(activation="tanh", spectral_norm=True),
                                dict(activation="tanh", minibatch_discrimination=(2, 3))])
def test_feature_matching_through_discriminator(kw):
    """Feature matching on ``forward(upto=feature_index())``: gradient wrt the generated input."""
    rng = np.random.default_rng(15)
    real, fake = rng.standard_normal((N, 2)), rng.standard_normal((N, 2))
    D = make_net([2, 6, 5, 1], x=real, **kw)
    k = D.feature_index()

    def objective() -> float:
        return feature_matching_loss(D.forward(real, upto=k), D.forward(fake, upto=k))[0]

    f_real = D.forward(real, upto=k)
    f_fake = D.forward(fake, upto=k)
    assert f_fake.shape[1] == (5 + 2 if "minibatch_discrimination" in kw else 5)
    _, df = feature_matching_loss(f_real, f_fake)
    D.zero_grad()
    dx = D.backward(df, param_grads=False)
    assert not D.dtheta.any()
    assert_close("feature matching dx", dx, numerical_grad(objective, fake, EPS))


def test_historical_average_penalty_gradient():
    rng = np.random.default_rng(16)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    hist = HistoricalAverage(params, weight=0.7)
    snapshots = []
    for _ in range(3):
        for p in params.values():
            p += 0.3 * rng.standard_normal(p.shape)
        snapshots.append({k: v.copy() for k, v in params.items()})
        hist.update(params)
    # the running mean is the mean of the initial parameters and every update
    assert hist.count == 4
    for p in params.values():
        p += 0.3 * rng.standard_normal(p.shape)
    before = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    grads = {k: v.copy() for k, v in before.items()}
    value = hist.penalty(params, grads)
    assert value == pytest.approx(hist.penalty(params))
    for k, p in params.items():
        numeric = numerical_grad(lambda: hist.penalty(params), p, EPS)
        assert_close("historical average", grads[k] - before[k], numeric)


def test_historical_average_on_network_theta():
    """The trainer passes ``{"theta": net.theta}``; the penalty gradient lands in ``dtheta``."""
    rng = np.random.default_rng(17)
    net = make_net([2, 4, 1])
    hist = HistoricalAverage({"theta": net.theta}, weight=0.25)
    net.theta += 0.1 * rng.standard_normal(net.theta.shape)
    hist.update({"theta": net.theta})
    net.theta += 0.1 * rng.standard_normal(net.theta.shape)
    net.zero_grad()
    hist.penalty({"theta": net.theta}, {"theta": net.dtheta})
    numeric = numerical_grad(lambda: hist.penalty({"theta": net.theta}), net.theta, EPS)
    assert_close("historical average", net.dtheta, numeric)


# ------------------------------------------------------------------- full trainer D and G steps


def d_objective(gan, batch, hist_mean=None) -> tuple[float, float]:
    """The discriminator's loss and penalty recomputed from the public API (a function of ``D.theta``)."""
    cfg, D = gan.config, gan.D
    real, fake = batch["real"], gan.G.forward(batch["z"])
    parts, groups = [real, fake], [B, B]
    if cfg.penalty == "wgan-gp":
        parts.append(batch["xhat"])
        groups.append(B)
    out = D.forward(np.concatenate(parts), groups=groups)
    r, f = out[:B], out[B : 2 * B]
    if cfg.loss in ("gan", "ns"):
        loss = d_loss_bce(r, f, cfg.label_smoothing)[0]
    else:
        loss = get_loss(cfg.loss).d(r, f)[0]
    penalty = 0.0
    if cfg.penalty != "none":
        rows = {"r1": slice(0, B), "r2": slice(B, 2 * B), "wgan-gp": slice(2 * B, 3 * B)}[cfg.penalty]
        g = D.input_grad(rows=rows)
        penalty = (wgan_gp_penalty if cfg.penalty == "wgan-gp" else r1_penalty)(g, cfg.gamma)[0]
    if hist_mean is not None:
        diff = D.theta - hist_mean
        penalty += cfg.historical_averaging * float(diff @ diff)
    return loss, penalty


def g_objective(gan, batch, hist_mean=None) -> float:
    """The generator's loss recomputed from the public API (a function of ``G.theta``)."""
    cfg, D = gan.config, gan.D
    real, fake = batch["real"], gan.G.forward(batch["z"])
    if cfg.feature_matching:
        k = D.feature_index()
        loss = feature_matching_loss(D.forward(real, upto=k), D.forward(fake, upto=k))[0]
    else:
        pair = get_loss(cfg.loss)
        real_logits = D.forward(real) if pair.needs_real_in_g else None
        loss = pair.g(D.forward(fake), real_logits)[0]
    if hist_mean is not None:
        diff = gan.G.theta - hist_mean
        loss += cfg.historical_averaging * float(diff @ diff)
    return loss


@pytest.mark.parametrize("overrides", D_STEP_CASES, ids=[case_id(k) for k in D_STEP_CASES])
def test_trainer_d_step(monkeypatch, overrides):
    gan, batch, recorded = frozen_gan(monkeypatch, **overrides)
    hist_mean = None if gan.hist_d is None else gan.hist_d.mean["theta"].copy()
    loss, penalty = gan.d_step()
    # spectral norm: the step ran one power iteration and differentiated with the new u, v held
    # constant; eval mode keeps exactly those u, v for the reference
    gan.D.eval()
    assert gan.config.penalty != "wgan-gp" or "xhat" in batch
    ref_loss, ref_penalty = d_objective(gan, batch, hist_mean)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert penalty == pytest.approx(ref_penalty, rel=1e-12, abs=1e-15)
    if gan.config.penalty != "none":
        assert ref_penalty > 0
    numeric = numerical_grad(lambda: sum(d_objective(gan, batch, hist_mean)), gan.D.theta, EPS)
    compare_flat(f"D step {gan.config.penalty}", gan.D, recorded["d"], numeric)


@pytest.mark.parametrize("overrides", G_STEP_CASES, ids=[case_id(k) for k in G_STEP_CASES])
def test_trainer_g_step(monkeypatch, overrides):
    gan, batch, recorded = frozen_gan(monkeypatch, **overrides)
    hist_mean = None if gan.hist_g is None else gan.hist_g.mean["theta"].copy()
    d_before = gan.D.theta.copy()
    gan.D.eval()  # spectral norm: u, v fixed (rpgan runs D twice, a power iteration each time in train mode)
    loss = gan.g_step()
    np.testing.assert_array_equal(gan.D.theta, d_before)
    assert loss == pytest.approx(g_objective(gan, batch, hist_mean), rel=1e-12)
    numeric = numerical_grad(lambda: g_objective(gan, batch, hist_mean), gan.G.theta, EPS)
    name = "G step feature matching" if gan.config.feature_matching else f"G step {gan.config.loss}"
    compare_flat(name, gan.G, recorded["g"], numeric)
