"""Regression tests for reliability faults in the maths layers: ``gancourse.nn``, ``gancourse.divergences``
and the torch losses of ``gancourse.deep.losses``.

Each section is named after the issue item it pins down and starts with the item's own repro. To add a
case later:

- a call that must be *rejected* with a clear message: append ``(id, callable, exception, regex)`` to
  ``BAD_CALLS`` (``callable`` takes no arguments; ``regex`` must name the offending argument);
- a call that must keep *working* at an edge: append to ``GOOD_EDGE_CALLS``;
- anything with more structure (a gradient check, a torch cross-check): a new ``test_itemNN_*`` function in
  a new section.

Torch tests use the ``torch_one_thread`` fixture of ``tests/conftest.py`` (which imports torch), so the NumPy
half of this file runs without torch.
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from gancourse.divergences import (
    SinkhornConvergenceWarning,
    frechet_distance,
    gaussian_stats,
    ot_exact,
    ot_sinkhorn,
    psd_sqrtm,
)
from gancourse.nn import (
    LOSSES,
    MLP,
    SGD,
    Adam,
    HistoricalAverage,
    LeakyReLU,
    RMSProp,
    apply_penalty,
    d_loss_bce,
    feature_matching_loss,
    instance_noise_std,
    numerical_grad,
    r1_penalty,
    rel_error,
    wgan_gp_penalty,
)

EMPTY = np.zeros((0, 1))
NAN = float("nan")


# =============================================================== item 6: frechet_distance on bad covariances


def test_item06_negative_definite_covariance_raises_instead_of_zero():
    """Repro: ``frechet_distance(0, -10 I, 1, I)`` was 0.0 (the clipped square root dropped everything)."""
    with pytest.raises(ValueError, match=r"cov1 .*positive semi-definite.*-10"):
        frechet_distance(np.zeros(2), -10 * np.eye(2), np.ones(2), np.eye(2))
    with pytest.raises(ValueError, match=r"cov2 .*positive semi-definite"):
        frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.diag([1.0, -0.5]))
    with pytest.raises(ValueError, match=r"positive semi-definite"):
        psd_sqrtm(np.diag([4.0, -1e-2]))  # relative -2.5e-3: far beyond round-off


def test_item06_roundoff_negative_eigenvalues_of_rank_deficient_covariances_still_work():
    """Rank-deficient covariances whose zero eigenvalues come out of eigh as -1e-16-ish noise are PSD."""
    rng = np.random.default_rng(6)
    for rank, d in ((1, 5), (2, 6), (3, 40)):
        a = rng.standard_normal((d, rank)) * 1e3
        c = a @ a.T  # its d - rank zero eigenvalues come out of eigh as round-off of either sign
        assert np.isfinite(frechet_distance(np.zeros(d), c, np.ones(d), c.T.copy()))
        s = psd_sqrtm(c)
        np.testing.assert_allclose(s @ s, c, atol=1e-8 * np.abs(c).max())
    # a covariance computed in float32 (say by torch.cov) carries float32 round-off, also once cast to float64
    x = rng.standard_normal((5, 30)).astype(np.float32)  # 5 samples in R^30: rank 4
    xc = x - x.mean(axis=0)
    c32 = xc.T @ xc / np.float32(4)  # (30, 30) float32, eigenvalues down to about -1e-7 max
    for c in (c32, c32.astype(np.float64)):
        assert np.isfinite(frechet_distance(np.zeros(30), c, np.zeros(30), np.eye(30)))


@pytest.mark.parametrize("seed", range(6))
def test_item06_mean_term_is_never_lost(seed):
    """Equal covariances: the trace term is 0 up to round-off, which used to swallow a small mean term."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((50, 8)) @ rng.standard_normal((8, 8))
    mu, cov = gaussian_stats(x)
    mu2 = mu + 1e-9
    d = mu2 - mu  # (the difference actually represented)
    assert frechet_distance(mu, cov, mu2, cov) >= d @ d > 0


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e160, 1e200, 1e300])
def test_item06_huge_and_tiny_covariances_are_computed_stably(scale):
    """``FD(0, s I, 0, 4 s I) = s D (1 - 2)^2 = s D``; at s = 1e160 it used to come out as 1e161."""
    d = 3
    fd = frechet_distance(np.zeros(d), scale * np.eye(d), np.zeros(d), 4 * scale * np.eye(d))
    assert fd == pytest.approx(scale * d, rel=1e-12)
    # the FD has the units of a squared length: means at sqrt(scale) and covariances at scale go together
    mu = math.sqrt(scale) * np.ones(d)
    fd = frechet_distance(mu, scale * np.eye(d), -mu, scale * np.eye(d))
    assert fd == pytest.approx(4 * scale * d, rel=1e-12)


@pytest.mark.parametrize(
    "mu2, cov",
    [(1e160, 1.0), (1e300, 1.0), (-1e308, 1e308)],
    ids=["mean 1e160", "mean 1e300", "mean and covariance at the float64 limit"],
)
def test_item06_values_beyond_float64_raise_instead_of_inf(mu2, cov):
    mu1 = np.full(2, 1e308 if mu2 < 0 else 0.0)
    with pytest.raises(OverflowError, match="float64"):
        frechet_distance(mu1, cov * np.eye(2), np.full(2, mu2), cov * np.eye(2))


def test_item06_huge_equal_means_do_not_overflow():
    mu = np.full(2, 1e300)
    assert frechet_distance(mu, np.eye(2), mu, 4 * np.eye(2)) == pytest.approx(2.0, rel=1e-12)


# ========================================================= item 10: WGAN-GP gradient at a zero input gradient


def test_item10_wgan_gp_penalty_zero_row_repro():
    """Repro: the zero row's gradient was NaN (``-2 lambda / (tiny N) * 0``)."""
    g = np.vstack([np.zeros((1, 2)), np.ones((3, 2))])
    for dtype in (np.float64, np.float32):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow / invalid-value warnings either
            value, dg = wgan_gp_penalty(g.astype(dtype), 10.0)
        assert dg.dtype == dtype and np.all(np.isfinite(dg))
        np.testing.assert_array_equal(dg[0], 0.0)  # the subgradient: d||g||/dg at 0 taken as 0
        root2 = math.sqrt(2.0)
        np.testing.assert_allclose(dg[1:], 2 * 10.0 * (root2 - 1) / (root2 * 4), rtol=1e-6)
        assert value == pytest.approx(10.0 * (1 + 3 * (root2 - 1) ** 2) / 4, rel=1e-6)


def test_item10_zero_row_matches_centred_differences():
    """At g = 0, ||+-eps e_j|| = eps, so the centred difference of P is exactly 0: it agrees with the subgradient."""
    rng = np.random.default_rng(10)
    g = rng.standard_normal((5, 3))
    g[[0, 3]] = 0.0
    _, dg = wgan_gp_penalty(g, 10.0)
    num = numerical_grad(lambda: wgan_gp_penalty(g, 10.0)[0], g, eps=1e-5)
    assert rel_error(dg, num) < 1e-8
    np.testing.assert_array_equal(dg[[0, 3]], 0.0)


def test_item10_underflowing_row_is_finite():
    """A row so small that its squared norm underflows to 0 is treated as the zero row, as torch does."""
    g = np.array([[1e-30, 1e-30], [0.6, 0.8]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, dg = wgan_gp_penalty(g, 10.0)
    assert np.all(np.isfinite(dg))
    np.testing.assert_array_equal(dg[0], 0.0)


def _dead_relu_critic() -> tuple[MLP, np.ndarray]:
    """A float64 ReLU critic and a batch whose row 0 lies in a dead region (every hidden unit off),
    so ``grad_x D(x_0) = 0`` exactly, with the other rows well inside the live region."""
    net = MLP([2, 4, 1], activation="relu", dtype=np.float64, seed=3)
    net.params["0.W"][...] = np.abs(net.params["0.W"]) + 0.2  # every hidden unit increases along (1, 1)
    net.params["0.b"][...] = 0.0
    x = np.array([[-1.0, -1.5], [1.0, 0.5], [0.3, 1.2], [2.0, 1.0]])
    return net, x


def test_item10_dead_relu_penalty_gradcheck():
    net, x = _dead_relu_critic()
    net.forward(x)
    g = net.input_grad()
    assert np.all(g[0] == 0.0) and np.all(np.linalg.norm(g[1:], axis=1) > 0.1)
    net.zero_grad()
    value = apply_penalty(net, x, "wgan-gp", 10.0)
    analytic = net.dtheta.copy()
    assert np.all(np.isfinite(analytic)), "NaN parameter gradient from the dead row"

    def penalty() -> float:
        net.forward(x)
        return wgan_gp_penalty(net.input_grad(), 10.0)[0]

    assert penalty() == value
    numeric = numerical_grad(penalty, net.theta, eps=1e-5)
    assert rel_error(analytic, numeric) < 1e-6


def test_item10_toy_trainer_keeps_training_with_a_dead_relu_critic():
    """Repro of the symptom: the NaN stopped training at step 1 with a DivergenceError advising a smaller
    learning rate. A critic whose every hidden unit is off has grad_x D = 0 on every interpolate; with a
    batch of 4, -2 lambda / (tiny N) overflowed float32 to -inf, and -inf * 0 is NaN."""
    from gancourse.toy import ToyGAN

    gan = ToyGAN(data="ring8", steps=4, batch_size=4, g_hidden=(8,), d_hidden=(8,), d_activation="relu",
                 loss="wgan", penalty="wgan-gp", gamma=10.0, ema=0.0)
    gan.D.params["0.b"][...] = -100.0  # Linear -> ReLU -> Linear: the ReLU is dead for every input
    for _ in range(3):
        losses = gan.train_step()
    assert losses["penalty"] == pytest.approx(10.0)  # lambda (0 - 1)^2 on every row
    assert np.all(np.isfinite(gan.D.theta)) and np.all(np.isfinite(gan.G.theta))


def _torch_twin(torch, net: MLP):
    """The torch module equal to a ``Linear -> ReLU -> Linear`` MLP (W stored (in, out) there)."""
    nn = torch.nn
    lin1, lin2 = nn.Linear(2, 4).double(), nn.Linear(4, 1).double()
    for lin, j in ((lin1, 0), (lin2, 2)):
        lin.weight.data = torch.tensor(net.params[f"{j}.W"].T.copy())
        lin.bias.data = torch.tensor(net.params[f"{j}.b"].copy())
    return nn.Sequential(lin1, nn.ReLU(), lin2, nn.Flatten(0))


def test_item10_torch_gradient_penalty_matches_numpy_engine_on_a_dead_row(torch_one_thread):
    import torch

    from gancourse.deep.losses import gradient_penalty, input_grad_norms

    net, x = _dead_relu_critic()
    net.zero_grad()
    value = apply_penalty(net, x, "wgan-gp", 10.0)
    critic = _torch_twin(torch, net)
    xt = torch.tensor(x)
    norms = input_grad_norms(critic, xt)
    assert norms[0].item() == 0.0
    ones = torch.ones(len(x), dtype=torch.float64)  # eps = 1: the interpolates are the real points exactly
    gp = gradient_penalty(critic, xt, torch.zeros_like(xt), lam=10.0, eps=ones)
    gp.backward()
    assert gp.item() == pytest.approx(value, rel=1e-12)
    for p, ours in ((critic[0].weight, net.grads["0.W"].T), (critic[0].bias, net.grads["0.b"]),
                    (critic[2].weight, net.grads["2.W"].T)):
        assert torch.isfinite(p.grad).all()
        np.testing.assert_allclose(p.grad.numpy(), ours, rtol=1e-10, atol=1e-12)


def test_item10_torch_input_grad_norms_double_backward_is_finite_at_zero(torch_one_thread):
    """d||g||/dg at g = 0 is 0 in double backward, whatever the torch version's norm backward does there."""
    import torch

    from gancourse.deep.losses import input_grad_norms

    w = torch.tensor([[0.0, 0.0], [1.0, -2.0]], dtype=torch.float64, requires_grad=True)

    def critic(x):  # row 0 of the batch sees the zero weight: its input gradient is exactly 0
        return (x * w).sum(dim=1)

    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    norms = input_grad_norms(critic, x, create_graph=True)
    assert norms.tolist() == [0.0, pytest.approx(math.sqrt(5.0))]
    ((norms - 1) ** 2).sum().backward()
    assert torch.isfinite(w.grad).all()
    np.testing.assert_array_equal(w.grad[0].numpy(), 0.0)
    np.testing.assert_allclose(w.grad[1].numpy(), 2 * (math.sqrt(5) - 1) * np.array([1.0, -2.0]) / math.sqrt(5))


def test_item10_torch_norms_are_bit_identical_to_plain_norm_on_nonzero_rows(torch_one_thread):
    import torch

    from gancourse.deep.losses import input_grad_norms

    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(12, 1)
    x = torch.randn(16, 3, 2, 2, generator=gen)

    def critic(z):
        return lin(z.flatten(1)).sum(dim=1) ** 2

    xx = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(xx).sum(), xx)
    assert torch.equal(input_grad_norms(critic, x), g.flatten(1).norm(2, dim=1))


# ================================================================= item 11: Sinkhorn stops before converging


def _sinkhorn_repro() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 2)), rng.standard_normal((60, 2)) + 3.0
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)  # (60, 60) squared distances
    return np.full(60, 1 / 60), cost


def test_item11_unconverged_sinkhorn_warns_and_reports_its_marginal_error():
    """Repro: reg = 1e-3, 300 sweeps: marginal error 1.6, cost 5.0 against an exact 15.9, silently."""
    a, cost = _sinkhorn_repro()
    assert issubclass(SinkhornConvergenceWarning, UserWarning)  # as POT warns
    with pytest.warns(SinkhornConvergenceWarning, match=r"did not converge.*max_iter.*reg"):
        res = ot_sinkhorn(a, a, cost, 1e-3, max_iter=300)
    value, plan = res  # the (cost, plan) pair callers unpack keeps working
    assert res[0] == value and res.cost == value and res.plan is plan
    assert not res.converged and res.n_iter == 300
    assert res.marginal_error == pytest.approx(np.abs(plan.sum(1) - a).sum(), rel=1e-12)
    assert res.marginal_error > 1.0 and value < 0.5 * ot_exact(a, a, cost)[0]


def test_item11_converged_sinkhorn_is_silent_and_reports_its_error():
    a, cost = _sinkhorn_repro()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ot_sinkhorn(a, a, cost / cost.max(), 0.05, tol=1e-9)
    assert res.converged and 1 <= res.n_iter < 10_000
    assert res.marginal_error < 1e-9
    assert res.marginal_error == pytest.approx(np.abs(res.plan.sum(1) - a).sum(), abs=1e-15)
    value, plan = res
    assert value == pytest.approx(float(np.sum(plan * cost / cost.max())), rel=1e-12)


# ======================================================================= item 13: MLP.backward misuse


def _net() -> MLP:
    return MLP([2, 5, 1], dtype=np.float64, seed=0)


def test_item13_backward_before_forward_names_the_missing_call():
    """Repro: AttributeError '_out_shape'."""
    with pytest.raises(RuntimeError, match=r"call forward\(x\) before backward\(dout\)"):
        _net().backward(np.ones((4, 1)))
    with pytest.raises(RuntimeError, match=r"call forward\(x\) before input_grad\(\)"):
        _net().input_grad()


def re_shape(shape: tuple) -> str:
    return re.escape(str(tuple(shape)))


@pytest.mark.parametrize("shape", [(4, 2), (3, 1), (4,), (1, 4, 1)])
def test_item13_wrong_dout_shape_says_expected_and_got(shape):
    """Repro: numpy broadcast errors from deep inside a layer (or silently wrong gradients)."""
    net = _net()
    net.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=rf"dout must have the output's shape \(4, 1\).*, got {re_shape(shape)}"):
        net.backward(np.ones(shape))


def test_item13_list_dout_is_read_as_an_array():
    """Repro: a list ``dout`` gave AttributeError; it is now converted (as ``forward`` converts ``x``)."""
    net = _net()
    x = np.arange(8.0).reshape(4, 2) / 8
    net.forward(x)
    net.zero_grad()
    dx = net.backward(np.ones((4, 1)))
    grads = net.dtheta.copy()
    net.forward(x)
    net.zero_grad()
    np.testing.assert_array_equal(net.backward([[1.0]] * 4), dx)
    np.testing.assert_array_equal(net.dtheta, grads)
    with pytest.raises(ValueError, match=r"dout must have the output's shape \(4, 1\).*, got \(4, 2\)"):
        net.backward([[1.0, 2.0]] * 4)
    with pytest.raises(TypeError, match="dout"):
        net.backward([["a"]] * 4)


def test_item13_d_input_grad_is_checked_like_dout():
    net = _net()
    x = np.zeros((3, 2))
    net.forward(x)
    net.input_grad()
    with pytest.raises(ValueError, match=r"d_input_grad must have the input gradient's shape \(3, 2\), got \(3, 1\)"):
        net.backward(None, d_input_grad=np.ones((3, 1)))
    net.zero_grad()
    net.backward(None, d_input_grad=[[1.0, 0.0]] * 3)  # a list of the right shape is accepted
    assert np.all(np.isfinite(net.dtheta))


# ================================================================================ item 18: API leniency


def _g() -> np.ndarray:
    return np.ones((3, 2))


def _opt_state(**changes) -> dict:
    opt = Adam(1e-3)
    opt.step({"p": np.ones(2)}, {"p": np.ones(2)})
    return {**opt.state_dict(), **changes}


def _load(opt, sd):
    return lambda: opt.load_state_dict(sd)


#: (id, call, exception, message regex): calls that must be rejected, naming the offending argument
BAD_CALLS: list[tuple[str, Callable[[], object], type[BaseException], str]] = [
    # penalty weights
    ("r1 negative gamma", lambda: r1_penalty(_g(), -1.0), ValueError, "gamma"),
    ("r1 nan gamma", lambda: r1_penalty(_g(), NAN), ValueError, "gamma"),
    ("wgan-gp negative lambda", lambda: wgan_gp_penalty(_g(), -10.0), ValueError, "lam"),
    ("wgan-gp nan lambda", lambda: wgan_gp_penalty(_g(), NAN), ValueError, "lam"),
    ("wgan-gp inf lambda", lambda: wgan_gp_penalty(_g(), math.inf), ValueError, "lam"),
    ("apply_penalty nan weight", lambda: apply_penalty(_net(), _g(), "r1", NAN), ValueError, "weight"),
    ("historical averaging negative weight", lambda: HistoricalAverage({"a": np.ones(2)}, -1.0), ValueError,
     "weight"),
    ("historical averaging nan weight", lambda: HistoricalAverage({"a": np.ones(2)}, NAN), ValueError, "weight"),
    # empty batches: losses, penalties, feature matching, the network
    ("r1 on 0 rows", lambda: r1_penalty(np.zeros((0, 2)), 1.0), ValueError, "empty"),
    ("wgan-gp on 0 rows", lambda: wgan_gp_penalty(np.zeros((0, 2)), 1.0), ValueError, "empty"),
    ("feature matching on 0 fake rows", lambda: feature_matching_loss(np.ones((3, 2)), np.zeros((0, 2))),
     ValueError, "f_fake.*empty"),
    ("feature matching on 0 real rows", lambda: feature_matching_loss(np.zeros((0, 2)), np.ones((3, 2))),
     ValueError, "f_real.*empty"),
    ("MLP forward on 0 rows", lambda: _net().forward(np.zeros((0, 2))), ValueError, "x.*empty"),
    ("apply_penalty on 0 rows", lambda: apply_penalty(_net(), np.zeros((0, 2)), "wgan-gp", 1.0), ValueError,
     "empty"),
    ("bce smoothing nan", lambda: d_loss_bce(np.ones((2, 1)), np.ones((2, 1)), NAN), ValueError, "real_label"),
    # the network's architecture
    ("MLP fractional width", lambda: MLP([2.7, 4, 1]), ValueError, r"sizes\[0\].*2\.7"),
    ("MLP float width", lambda: MLP([2, 4.0, 1]), ValueError, r"sizes\[1\]"),
    ("MLP zero width", lambda: MLP([2, 0, 1]), ValueError, r"sizes\[1\]"),
    ("MLP one width", lambda: MLP([2]), ValueError, "at least two"),
    ("MLP bool width", lambda: MLP([2, True, 1]), ValueError, r"sizes\[1\]"),
    ("MLP nan slope", lambda: MLP([2, 4, 1], slope=NAN), ValueError, "slope"),
    ("MLP inf slope", lambda: MLP([2, 4, 1], slope=math.inf), ValueError, "slope"),
    ("MLP string slope", lambda: MLP([2, 4, 1], slope="0.2"), TypeError, "slope"),
    ("LeakyReLU nan slope", lambda: LeakyReLU(NAN), ValueError, "slope"),
    # instance noise
    ("instance noise negative sigma", lambda: instance_noise_std(-1, 0, 10), ValueError, "sigma0"),
    ("instance noise nan sigma", lambda: instance_noise_std(NAN, 0, 10), ValueError, "sigma0"),
    ("instance noise negative step", lambda: instance_noise_std(1.0, -1, 10), ValueError, "step"),
    ("instance noise fractional total", lambda: instance_noise_std(1.0, 0, 2.5), ValueError, "total_steps"),
    # optimizer state
    ("load_state_dict negative lr", _load(Adam(1e-3), _opt_state(lr=-5.0)), ValueError, "lr"),
    ("load_state_dict nan lr", _load(SGD(1e-3), _opt_state(lr=NAN)), ValueError, "lr"),
    ("load_state_dict negative t", _load(RMSProp(1e-3), _opt_state(t=-1)), ValueError, r"\bt\b"),
]
for _name in LOSSES:  # every NumPy GAN loss on an empty batch
    _pair = LOSSES[_name]
    BAD_CALLS.append((f"{_name} d loss on 0 rows", lambda p=_pair: p.d(EMPTY, EMPTY), ValueError, "empty"))
    BAD_CALLS.append((f"{_name} g loss on 0 rows", lambda p=_pair: p.g(EMPTY, EMPTY), ValueError, "empty"))


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_item18_bad_calls_raise_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


#: (id, call, expected result): edge values that are legitimate and must keep working
GOOD_EDGE_CALLS: list[tuple[str, Callable[[], object], object]] = [
    ("instance noise sigma 0", lambda: instance_noise_std(0.0, 3, 10), 0.0),
    ("instance noise at step 0", lambda: instance_noise_std(0.5, 0, 10), 0.5),
    ("instance noise past the end", lambda: instance_noise_std(0.5, 20, 10), 0.0),
    ("instance noise total 0", lambda: instance_noise_std(0.5, 0, 0), 0.5),
    ("instance noise numpy ints", lambda: instance_noise_std(np.float32(0.5), np.int64(5), np.int64(10)), 0.25),
    ("MLP numpy widths", lambda: MLP([np.int64(2), np.int32(3), 1]).sizes, [2, 3, 1]),
    ("MLP zero slope", lambda: MLP([2, 3, 1], slope=0).config["slope"], 0),
    ("load_state_dict valid", lambda: _load(Adam(1e-3), _opt_state(lr=2e-4))() or 0, 0),
    ("load_state_dict lr 0 (end of a linear decay)", lambda: _load(SGD(1e-3), _opt_state(lr=0.0))() or 0, 0),
]


@pytest.mark.parametrize("call, expected", [c[1:] for c in GOOD_EDGE_CALLS], ids=[c[0] for c in GOOD_EDGE_CALLS])
def test_item18_edge_values_keep_working(call, expected):
    assert call() == expected


def test_item18_load_state_dict_keeps_valid_values():
    opt = Adam(1e-3)
    opt.load_state_dict(_opt_state(lr=2e-4, t=7))
    assert opt.lr == 2e-4 and opt.t == 7


def test_item18_torch_losses_reject_empty_batches(torch_one_thread):
    import torch

    from gancourse.deep import losses as tl

    e, one = torch.zeros(0), torch.zeros(3)
    calls = {
        "d_loss_bce": lambda: tl.d_loss_bce(one, e),
        "g_loss_nonsaturating": lambda: tl.g_loss_nonsaturating(e),
        "d_loss_lsgan": lambda: tl.d_loss_lsgan(e, one),
        "g_loss_lsgan": lambda: tl.g_loss_lsgan(e),
        "d_loss_wgan": lambda: tl.d_loss_wgan(e, one),
        "g_loss_wgan": lambda: tl.g_loss_wgan(e),
        "wasserstein_estimate": lambda: tl.wasserstein_estimate(one, e),
        "gradient_penalty": lambda: tl.gradient_penalty(lambda x: x.sum(1), torch.zeros(0, 2), torch.zeros(0, 2)),
        "cycle_loss": lambda: tl.cycle_loss(e, e),
        "identity_loss": lambda: tl.identity_loss(e, e),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="empty"):
            call()
    with pytest.raises(ValueError, match="lam"):
        tl.gradient_penalty(lambda x: x.sum(1), torch.ones(2, 2), torch.ones(2, 2), lam=NAN)


def test_deepcopy_of_an_mlp_keeps_its_weights_views_of_theta():
    import copy

    from gancourse.nn import MLP

    net = MLP([2, 8, 1], "relu", None, np.float64, seed=0)
    twin = copy.deepcopy(net)
    x = np.ones((3, 2))
    np.testing.assert_array_equal(twin.forward(x), net.forward(x))
    twin.theta[...] += 1.0  # an optimizer step on the copy moves the copy, and only the copy
    assert not np.allclose(twin.forward(x), net.forward(x))
    assert all(np.shares_memory(p, twin.theta) for p in twin.params.values())
