"""Cross-checks of gancourse.nn against torch autograd in float64 (relative error < 1e-6).

An equivalent torch model is built from an MLP's configuration and its
parameters (``W`` is stored (in, out): ``y = x @ W + b``); spectral-norm
layers use the MLP's frozen power-iteration vectors, ``W_sn = W / (u^T W v)``.
Gradient penalties go through ``torch.autograd.grad(create_graph=True)``.
Also checked: every GAN loss, feature matching, historical averaging, a full
discriminator step and generator step of the toy trainer, and the optimizers
against ``torch.optim``.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from gancourse.nn import (  # noqa: E402
    EMA,
    LOSSES,
    MLP,
    SGD,
    Adam,
    HistoricalAverage,
    RMSProp,
    apply_penalty,
    clip_weights,
    d_loss_bce,
    feature_matching_loss,
    get_loss,
    make_optimizer,
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

TOL = 1e-6
DT = torch.float64

#: worst relative error seen per kind of check (printed at the end of the module, shown with -s)
WORST: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    yield
    if WORST:
        print("\nworst relative errors (gancourse vs torch):")
        for name, err in sorted(WORST.items()):
            print(f"  {name:<28s} {err:.2e}")


def t(a) -> "torch.Tensor":
    return torch.tensor(np.asarray(a), dtype=DT)


def assert_close(kind: str, ours, theirs, tol: float = TOL, floor: float = 0.0) -> float:
    """``rel_error(ours, theirs) < tol``; ``floor`` bounds the scale from below, for a block of
    parameters whose exact gradient is zero (say a bias that cancels out of a relativistic loss)."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, (kind, ours.shape, theirs.shape)
    err = rel_error(ours, theirs)
    scale = np.abs(ours).max(initial=0.0) + np.abs(theirs).max(initial=0.0)
    if scale < floor:
        err = float(np.abs(ours - theirs).max(initial=0.0) / floor)
        kind += " (zero block)"
    WORST[kind] = max(WORST.get(kind, 0.0), err)
    assert err < tol, f"{kind}: relative error {err:.3e} >= {tol:g}"
    return err


# ------------------------------------------------------------------------------- torch twin of MLP


class TorchMLP:
    """The network an ``MLP`` describes, as a torch function of a dict of parameter tensors.

    The layer sequence is rebuilt from ``net.sizes`` and ``net.config`` as the MLP
    documents it (``Linear -> [LayerNorm] -> act`` per hidden layer, minibatch
    discrimination before the last Linear, optional output activation); the
    parameter keys ``"{layer}.{name}"`` must match the network's exactly.
    """

    def __init__(self, net: MLP):
        cfg, sizes = net.config, net.sizes
        self.cfg = cfg
        spec: list[tuple] = []
        n_lin = len(sizes) - 1
        for i in range(n_lin):
            width = sizes[i]
            if i == n_lin - 1 and cfg["minibatch_discrimination"] is not None:
                B, C = cfg["minibatch_discrimination"]
                spec.append(("mbd", int(B), int(C)))
                width += int(B)
            spec.append(("linear", width, sizes[i + 1]))
            if i < n_lin - 1:
                if cfg["layer_norm"]:
                    spec.append(("ln", sizes[i + 1]))
                spec.append(("act", cfg["activation"]))
        if cfg["out_activation"] is not None:
            spec.append(("act", cfg["out_activation"]))
        self.spec = spec
        expected = {f"{j}.{n}" for j, s in enumerate(spec)
                    for n in {"linear": ("W", "b"), "ln": ("gain", "bias"), "mbd": ("T",), "act": ()}[s[0]]}
        assert expected == set(net.params), (sorted(expected), sorted(net.params))
        state = net.state_dict()
        # spectral norm: the power-iteration vectors, frozen (the MLP is in eval mode)
        self.uv = {j: (t(state[f"{j}.u"]), t(state[f"{j}.v"])) for j, s in enumerate(spec)
                   if s[0] == "linear" and cfg["spectral_norm"]}
        assert set(k for k in state if k.endswith((".u", ".v"))) == {f"{j}.{n}" for j in self.uv for n in "uv"}

    @staticmethod
    def params(net: MLP, requires_grad: bool = True) -> dict[str, "torch.Tensor"]:
        return {k: t(v).requires_grad_(requires_grad) for k, v in net.params.items()}

    def weight(self, j: int, P: dict) -> "torch.Tensor":
        W = P[f"{j}.W"]
        if j in self.uv:
            u, v = self.uv[j]
            W = W / (u @ W @ v)  # W_sn = W / sigma, sigma = u^T W v
        return W

    def __call__(self, x, P: dict, groups=None, upto: int | None = None):
        for j, s in enumerate(self.spec[:upto]):
            kind = s[0]
            if kind == "linear":
                x = x @ self.weight(j, P) + P[f"{j}.b"]
            elif kind == "ln":
                x = F.layer_norm(x, (s[1],), P[f"{j}.gain"], P[f"{j}.bias"], eps=1e-5)
            elif kind == "mbd":
                x = self._mbd(x, P[f"{j}.T"], s[1], s[2], groups)
            else:
                x = self._act(kind=s[1], x=x)
        return x

    def _act(self, kind: str, x):
        if kind == "relu":
            return torch.relu(x)
        if kind == "leaky_relu":
            return F.leaky_relu(x, self.cfg["slope"])
        if kind == "tanh":
            return torch.tanh(x)
        assert kind == "sigmoid"
        return torch.sigmoid(x)

    @staticmethod
    def _mbd(f, T, B: int, C: int, groups):
        """Salimans et al. 2016: M = f T as (N, B, C); o_ib = sum_j exp(-||M_ib - M_jb||_1) within a group."""
        n = f.shape[0]
        M = (f @ T).reshape(n, B, C)
        outs = []
        for Mg in torch.split(M, list(groups) if groups is not None else [n]):
            c = torch.exp(-(Mg[:, None] - Mg[None, :]).abs().sum(dim=3))  # (n, n, B)
            outs.append(c.sum(dim=1))
        return torch.cat([f, torch.cat(outs)], dim=1)


def compare_grads(kind: str, net: MLP, P: dict) -> None:
    """Each named gradient of ``net`` against torch's, on its own scale (floored at 1e-6 of the largest)."""
    floor = 1e-6 * np.abs(net.dtheta).max()
    for k, g in net.grads.items():
        theirs = P[k].grad if P[k].grad is not None else torch.zeros_like(P[k])
        assert_close(kind, g, theirs, floor=floor)


# ----------------------------------------------------------------------------- layers through MLP

ACTS = ("relu", "leaky_relu", "tanh", "sigmoid")


@pytest.mark.parametrize("kw, groups", MLP_GROUP_CASES, ids=[case_id({**k, "groups": g}) for k, g in MLP_GROUP_CASES])
def test_mlp_matches_torch(kw, groups):
    rng = np.random.default_rng(1)
    sizes = [3, 6, 5, 2]
    x = rng.standard_normal((N, sizes[0]))
    net = make_net(sizes, x=x, **kw)
    tm = TorchMLP(net)
    w = rng.standard_normal((N, sizes[-1]))

    out = net.forward(x, groups=groups)
    net.zero_grad()
    dx = net.backward(w.copy())

    P, xt = tm.params(net), t(x).requires_grad_(True)
    out_t = tm(xt, P, groups=groups)
    assert_close("mlp forward", out, out_t, tol=1e-12)
    (out_t * t(w)).sum().backward()
    compare_grads("mlp params", net, P)
    assert_close("mlp dL/dx", dx, xt.grad)


def test_feature_index_matches_upto():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, 3))
    for kw in (dict(), dict(layer_norm=True), dict(minibatch_discrimination=(2, 2))):
        net = make_net([3, 6, 5, 1], **kw)
        tm = TorchMLP(net)
        k = net.feature_index()
        assert tm.spec[k][0] == "linear" and all(s[0] != "linear" for s in tm.spec[k + 1 :])
        assert_close("mlp forward", net.forward(x, upto=k), tm(t(x), tm.params(net), upto=k), tol=1e-12)


def test_spectral_norm_matches_torch_parametrization():
    """Our ``W / (u^T W v)`` equals torch's spectral_norm (eval mode: u, v frozen) on the transposed weight."""
    from torch.nn.utils.parametrizations import spectral_norm

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((N, 4)), rng.standard_normal((N, 3))
    net = make_net([4, 3], x=x, spectral_norm=True)
    state = net.state_dict()
    lin = torch.nn.Linear(4, 3, dtype=DT)
    with torch.no_grad():
        lin.weight.copy_(t(net.params["0.W"].T))  # torch stores (out, in)
        lin.bias.copy_(t(net.params["0.b"]))
    lin = spectral_norm(lin)
    lin.eval()
    sn = lin.parametrizations.weight[0]
    with torch.no_grad():  # torch's u lives on the output side, v on the input side: ours swapped
        sn._u.copy_(t(state["0.v"]))
        sn._v.copy_(t(state["0.u"]))
    xt = t(x).requires_grad_(True)
    out_t = lin(xt)
    (out_t * t(w)).sum().backward()
    out = net.forward(x)
    net.zero_grad()
    dx = net.backward(w)
    assert_close("spectral norm module", out, out_t, tol=1e-12)
    assert_close("spectral norm module", net.grads["0.W"], lin.parametrizations.weight.original.grad.T)
    assert_close("spectral norm module", net.grads["0.b"], lin.bias.grad)
    assert_close("spectral norm module", dx, xt.grad)


def test_layer_norm_matches_torch_module():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((N, 3)), rng.standard_normal((N, 5))
    net = make_net([3, 5, 2], layer_norm=True, activation="tanh")
    ln = torch.nn.LayerNorm(5, eps=1e-5, dtype=DT)
    with torch.no_grad():
        ln.weight.copy_(t(net.params["1.gain"]))
        ln.bias.copy_(t(net.params["1.bias"]))
    h = t(x @ net.params["0.W"] + net.params["0.b"])
    out_t = ln(h)
    (out_t * t(w)).sum().backward()
    # the layer norm's output is the tanh's input: compare through the first two layers
    ours = net.forward(x, upto=2)
    net.zero_grad()
    net.backward(w)
    assert_close("layer norm module", ours, out_t, tol=1e-12)
    assert_close("layer norm module", net.grads["1.gain"], ln.weight.grad)
    assert_close("layer norm module", net.grads["1.bias"], ln.bias.grad)


# ------------------------------------------------------------------------------- input gradient


def torch_input_grad(tm: TorchMLP, P: dict, xt, rows=slice(None), dout=None, create_graph=True):
    """``g = d(sum_{i in rows} dout_i . D(x_i))/dx_i``: the gradient of the chosen rows' outputs."""
    out = tm(xt, P)
    sel = out[rows]
    weight = torch.ones_like(sel) if dout is None else t(dout)
    (g,) = torch.autograd.grad((sel * weight).sum(), xt, create_graph=create_graph)
    return out, g[rows]


@pytest.mark.parametrize("rows", [slice(None), slice(0, 3), slice(4, 8)])
@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("out_activation", [None, "sigmoid"])
@pytest.mark.parametrize("activation", ACTS)
def test_input_grad_matches_torch(activation, out_activation, spectral_norm, rows):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, 3))
    net = make_net([3, 6, 5, 1], x=x, activation=activation, out_activation=out_activation,
                   spectral_norm=spectral_norm)
    tm = TorchMLP(net)
    net.forward(x)
    g = net.input_grad(rows=rows)
    _, g_t = torch_input_grad(tm, tm.params(net, False), t(x).requires_grad_(True), rows, create_graph=False)
    assert_close("input_grad", g, g_t)


# ------------------------------------------------------------------------- double backprop (penalties)


def torch_penalty(kind: str, g, weight: float):
    sq = (g * g).sum(dim=1)
    if kind in ("r1", "r2"):
        return 0.5 * weight * sq.mean()  # gamma/2 E||g||^2
    return weight * ((sq.sqrt() - 1) ** 2).mean()  # lambda E(||g|| - 1)^2


@pytest.mark.parametrize("with_loss", [False, True])
@pytest.mark.parametrize("rows", [slice(None), slice(0, 4), slice(5, 8)], ids=["all", "first", "last"])
@pytest.mark.parametrize("penalty", ["r1", "wgan-gp"])
@pytest.mark.parametrize("kw", DOUBLE_CASES, ids=[case_id(k) for k in DOUBLE_CASES])
def test_double_backprop_matches_torch(kw, penalty, rows, with_loss):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, 2))
    net = make_net([2, 6, 5, 1], x=x, **kw)
    tm = TorchMLP(net)
    w = rng.standard_normal((N, 1))
    weight = 10.0 if penalty == "r1" else 5.0

    net.forward(x)
    net.zero_grad()
    g = net.input_grad(rows=rows)
    value, dg = (r1_penalty if penalty == "r1" else wgan_gp_penalty)(g, weight)
    dx = net.backward(w.copy() if with_loss else None, d_input_grad=dg)

    P, xt = tm.params(net), t(x).requires_grad_(True)
    out_t, g_t = torch_input_grad(tm, P, xt, rows)
    total = torch_penalty(penalty, g_t, weight)
    assert_close(f"{penalty} value", value, total, tol=1e-12)
    if with_loss:
        total = total + (out_t * t(w)).sum()
    total.backward()
    assert_close("input_grad", g, g_t)
    compare_grads(f"{penalty} params", net, P)
    dx_t = xt.grad if xt.grad is not None else torch.zeros_like(xt)
    assert_close(f"{penalty} dx", np.zeros_like(x) if dx is None else dx, dx_t)


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu", "sigmoid"])
@pytest.mark.parametrize("kind", ["r1", "r2", "wgan-gp"])
def test_apply_penalty_matches_torch(kind, activation):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((N, 2))
    net = make_net([2, 6, 5, 1], activation=activation)
    tm = TorchMLP(net)
    net.zero_grad()
    value = apply_penalty(net, x, kind, 3.0)
    P = tm.params(net)
    _, g_t = torch_input_grad(tm, P, t(x).requires_grad_(True))
    total = torch_penalty(kind, g_t, 3.0)
    total.backward()
    assert_close(f"apply_penalty {kind}", value, total, tol=1e-12)
    compare_grads(f"apply_penalty {kind}", net, P)


# -------------------------------------------------------------------------------------- losses


def torch_d_loss(name: str, r, f, real_label: float = 1.0):
    a = real_label
    if name in ("gan", "ns"):
        return (a * F.softplus(-r) + (1 - a) * F.softplus(r)).mean() + F.softplus(f).mean()
    if name == "wgan":
        return f.mean() - r.mean()
    if name == "hinge":
        return torch.relu(1 - r).mean() + torch.relu(1 + f).mean()
    if name == "lsgan":
        return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()
    assert name == "rpgan"
    return F.softplus(f - r).mean()


def torch_g_loss(name: str, f, r=None):
    if name == "gan":
        return -F.softplus(f).mean()  # E log(1 - sigmoid(f))
    if name == "ns":
        return F.softplus(-f).mean()  # -E log sigmoid(f)
    if name in ("wgan", "hinge"):
        return -f.mean()
    if name == "lsgan":
        return 0.5 * ((f - 1) ** 2).mean()
    assert name == "rpgan"
    return F.softplus(r - f).mean()


def _logits(rng, n: int, shape_1d: bool = False) -> np.ndarray:
    x = rng.uniform(-4, 4, size=n)
    x[np.abs(np.abs(x) - 1) < 0.05] += 0.1  # away from the hinge kinks at +-1
    return x if shape_1d else x[:, None]


LOSS_CASES = [(name, 1.0) for name in LOSSES] + [("gan", 0.9), ("ns", 0.9)]  # label smoothing: cross-entropy only


@pytest.mark.parametrize("shape_1d", [False, True])
@pytest.mark.parametrize("name, real_label", LOSS_CASES)
def test_losses_match_torch(name, real_label, shape_1d):
    rng = np.random.default_rng(11)
    real, fake = _logits(rng, N, shape_1d), _logits(rng, N, shape_1d)
    pair = get_loss(name)
    loss, dr, df = d_loss_bce(real, fake, real_label) if name in ("gan", "ns") else pair.d(real, fake)
    rt, ft = t(real).requires_grad_(True), t(fake).requires_grad_(True)
    lt = torch_d_loss(name, rt, ft, real_label)
    lt.backward()
    assert_close(f"loss {name}", loss, lt, tol=1e-12)
    assert_close(f"loss {name}", dr, rt.grad)
    assert_close(f"loss {name}", df, ft.grad)

    gl, dg = pair.g(fake, real)
    ft = t(fake).requires_grad_(True)
    glt = torch_g_loss(name, ft, t(real))
    glt.backward()
    assert_close(f"loss {name}", gl, glt, tol=1e-12)
    assert_close(f"loss {name}", dg, ft.grad)


def test_bce_matches_torch_binary_cross_entropy_with_logits():
    rng = np.random.default_rng(12)
    real, fake = _logits(rng, N), _logits(rng, N)
    for a in (1.0, 0.9):
        rt, ft = t(real).requires_grad_(True), t(fake).requires_grad_(True)
        lt = F.binary_cross_entropy_with_logits(rt, torch.full_like(rt, a)) + \
            F.binary_cross_entropy_with_logits(ft, torch.zeros_like(ft))
        lt.backward()
        loss, dr, df = d_loss_bce(real, fake, a)
        assert_close("loss bce (torch BCE)", loss, lt, tol=1e-12)
        assert_close("loss bce (torch BCE)", dr, rt.grad)
        assert_close("loss bce (torch BCE)", df, ft.grad)


# ------------------------------------------------------------------------------ training tricks


def test_feature_matching_matches_torch():
    rng = np.random.default_rng(14)
    real, fake = rng.standard_normal((N, 2)), rng.standard_normal((N - 2, 2))
    D = make_net([2, 6, 5, 1], activation="tanh")
    tm = TorchMLP(D)
    k = D.feature_index()
    f_real, f_fake = D.forward(real, upto=k), D.forward(fake, upto=k)
    loss, df = feature_matching_loss(f_real, f_fake)
    dx = D.backward(df, param_grads=False)

    P = tm.params(D, False)
    xt = t(fake).requires_grad_(True)
    lt = ((tm(t(real), P, upto=k).mean(0) - tm(xt, P, upto=k).mean(0)) ** 2).sum()
    lt.backward()
    assert_close("feature matching", loss, lt, tol=1e-12)
    assert_close("feature matching", dx, xt.grad)


def test_historical_average_matches_torch():
    rng = np.random.default_rng(16)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    history = [{k: v.copy() for k, v in params.items()}]
    hist = HistoricalAverage(params, weight=0.7)
    for _ in range(3):
        for p in params.values():
            p += 0.3 * rng.standard_normal(p.shape)
        history.append({k: v.copy() for k, v in params.items()})
        hist.update(params)
    for p in params.values():
        p += 0.3 * rng.standard_normal(p.shape)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    value = hist.penalty(params, grads)

    pt = {k: t(v).requires_grad_(True) for k, v in params.items()}
    lt = 0.7 * sum(((pt[k] - t(np.mean([h[k] for h in history], axis=0))) ** 2).sum() for k in pt)
    lt.backward()
    assert_close("historical average", value, lt, tol=1e-12)
    for k in params:
        assert_close("historical average", grads[k], pt[k].grad)


# ------------------------------------------------------------------- full trainer D and G steps


def per_key(net: MLP, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Split a flat gradient into the network's named parameters (through its ``grads`` views)."""
    saved = net.dtheta.copy()
    net.dtheta[...] = flat
    out = {k: v.copy() for k, v in net.grads.items()}
    net.dtheta[...] = saved
    return out


def _flat_t(P: dict) -> "torch.Tensor":
    return torch.cat([p.reshape(-1) for p in P.values()])


@pytest.mark.parametrize("overrides", D_STEP_CASES, ids=[case_id(k) for k in D_STEP_CASES])
def test_trainer_d_step_matches_torch(monkeypatch, overrides):
    gan, batch, recorded = frozen_gan(monkeypatch, **overrides)
    cfg = gan.config
    hist_mean = None if gan.hist_d is None else gan.hist_d.mean["theta"].copy()
    PD, PG = TorchMLP.params(gan.D), TorchMLP.params(gan.G, False)
    loss, penalty = gan.d_step()
    # spectral norm: the step ran one power iteration and differentiated with the new u, v held
    # constant; the torch twin is built after the step so that it uses exactly those u, v
    gan.D.eval()
    tD, tG = TorchMLP(gan.D), TorchMLP(gan.G)

    real = t(batch["real"])
    fake = tG(t(batch["z"]), PG)
    parts = [real, fake] + ([t(batch["xhat"])] if cfg.penalty == "wgan-gp" else [])
    x_all = torch.cat(parts).requires_grad_(True)
    out = tD(x_all, PD, groups=[B] * len(parts))
    loss_t = torch_d_loss(cfg.loss, out[:B], out[B : 2 * B], cfg.label_smoothing)
    penalty_t = torch.zeros((), dtype=DT)
    if cfg.penalty != "none":
        rows = {"r1": slice(0, B), "r2": slice(B, 2 * B), "wgan-gp": slice(2 * B, 3 * B)}[cfg.penalty]
        (g,) = torch.autograd.grad(out[rows].sum(), x_all, create_graph=True)
        penalty_t = torch_penalty(cfg.penalty, g[rows], cfg.gamma)
    if hist_mean is not None:
        penalty_t = penalty_t + cfg.historical_averaging * ((_flat_t(PD) - t(hist_mean)) ** 2).sum()
    (loss_t + penalty_t).backward()

    assert_close("D step value", loss, loss_t, tol=1e-12)
    assert_close("D step value", penalty, penalty_t, tol=1e-12)
    floor = 1e-6 * np.abs(recorded["d"]).max()
    for k, g_ours in per_key(gan.D, recorded["d"]).items():
        assert_close(f"D step {cfg.penalty}", g_ours, PD[k].grad, floor=floor)


@pytest.mark.parametrize("overrides", G_STEP_CASES, ids=[case_id(k) for k in G_STEP_CASES])
def test_trainer_g_step_matches_torch(monkeypatch, overrides):
    gan, batch, recorded = frozen_gan(monkeypatch, **overrides)
    cfg = gan.config
    hist_mean = None if gan.hist_g is None else gan.hist_g.mean["theta"].copy()
    tD, tG = TorchMLP(gan.D), TorchMLP(gan.G)
    PD, PG = tD.params(gan.D, False), tG.params(gan.G)
    gan.D.eval()  # spectral norm: u, v fixed (rpgan runs D twice, a power iteration each time in train mode)
    loss = gan.g_step()

    real, fake = t(batch["real"]), tG(t(batch["z"]), PG)
    if cfg.feature_matching:
        k = gan.D.feature_index()
        loss_t = ((tD(real, PD, upto=k).mean(0) - tD(fake, PD, upto=k).mean(0)) ** 2).sum()
    else:
        loss_t = torch_g_loss(cfg.loss, tD(fake, PD), tD(real, PD))
    if hist_mean is not None:
        loss_t = loss_t + cfg.historical_averaging * ((_flat_t(PG) - t(hist_mean)) ** 2).sum()
    loss_t.backward()

    assert_close("G step value", loss, loss_t, tol=1e-12)
    name = "G step feature matching" if cfg.feature_matching else f"G step {cfg.loss}"
    floor = 1e-6 * np.abs(recorded["g"]).max()
    for k, g_ours in per_key(gan.G, recorded["g"]).items():
        assert_close(name, g_ours, PG[k].grad, floor=floor)


# ----------------------------------------------------------------------------------- optimizers


def _problem(seed: int = 20, steps: int = 5):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(steps)]
    return params, grads


def _run_against_torch(ours, make_torch, kind: str, seed: int = 20) -> None:
    params, grads = _problem(seed)
    tp = {k: t(v).requires_grad_(True) for k, v in params.items()}
    opt_t = make_torch(list(tp.values()))
    for g in grads:
        ours.step(params, g)
        for k, p in tp.items():
            p.grad = t(g[k])
        opt_t.step()
        for k in params:
            assert_close(kind, params[k], tp[k], tol=1e-12)


@pytest.mark.parametrize("momentum", [0.0, 0.9, -0.5])
def test_sgd_matches_torch(momentum):
    """Ours: ``v = mu v - lr g; p += v``. Torch: ``b = mu b + g; p -= lr b``: equal for a constant lr."""

    def make(ps):
        opt = torch.optim.SGD(ps, lr=0.05, momentum=abs(momentum))
        opt.param_groups[0]["momentum"] = momentum  # torch's constructor refuses negative momentum
        return opt

    _run_against_torch(SGD(lr=0.05, momentum=momentum), make, "SGD")
    _run_against_torch(make_optimizer("momentum", 0.05, momentum=momentum), make, "SGD")


@pytest.mark.parametrize("lr, beta1, beta2", [(1e-3, 0.9, 0.999), (2e-2, 0.5, 0.99), (1e-1, 0.0, 0.9)])
def test_adam_matches_torch(lr, beta1, beta2):
    _run_against_torch(
        Adam(lr=lr, beta1=beta1, beta2=beta2, eps=1e-8),
        lambda ps: torch.optim.Adam(ps, lr=lr, betas=(beta1, beta2), eps=1e-8),
        "Adam",
    )


@pytest.mark.parametrize("lr", [1e-3, 1e-2])
def test_rmsprop_matches_torch(lr):
    _run_against_torch(
        RMSProp(lr=lr, alpha=0.99, eps=1e-8),
        lambda ps: torch.optim.RMSprop(ps, lr=lr, alpha=0.99, eps=1e-8),
        "RMSProp",
    )


def test_optimizer_updates_network_in_place_through_theta():
    """The trainer steps ``{"theta": net.theta}``; the named parameter views follow."""
    net = make_net([2, 3, 1])
    params_before = {k: v.copy() for k, v in net.params.items()}
    rng = np.random.default_rng(21)
    net.dtheta[...] = rng.standard_normal(net.dtheta.shape)
    Adam(lr=0.1).step({"theta": net.theta}, {"theta": net.dtheta})
    for k, v in net.params.items():
        assert not np.array_equal(v, params_before[k])
        assert np.shares_memory(v, net.theta)


def test_optimizer_state_dict_resumes_exactly():
    params, grads = _problem(22, steps=6)
    a = Adam(lr=0.01)
    p_a = {k: v.copy() for k, v in params.items()}
    for g in grads[:3]:
        a.step(p_a, g)
    b = Adam(lr=0.01)
    b.load_state_dict(a.state_dict())
    p_b = {k: v.copy() for k, v in p_a.items()}
    for g in grads[3:]:
        a.step(p_a, g)
        b.step(p_b, g)
    for k in params:
        np.testing.assert_array_equal(p_a[k], p_b[k])


# --------------------------------------------------------------------------- EMA and weight clip


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_values(warmup):
    p = {"theta": np.array([0.0, 2.0])}
    ema = EMA(p, beta=0.9, warmup=warmup)
    expected = p["theta"].copy()
    for step in range(1, 6):
        p["theta"] = p["theta"] + 1.0
        ema.update(p)
        beta = min(0.9, (1 + step) / (10 + step)) if warmup else 0.9
        expected = beta * expected + (1 - beta) * p["theta"]
        np.testing.assert_allclose(ema.avg["theta"], expected, rtol=1e-14)
    assert ema.t == 5
    # the average is a copy, not a view of the parameters
    p["theta"][...] = 100.0
    assert ema.avg["theta"].max() < 100.0
    with pytest.raises(ValueError):
        EMA(p, beta=1.0)


def test_ema_first_update_with_warmup():
    p = {"theta": np.zeros(3)}
    ema = EMA(p, beta=0.999)
    p["theta"] = np.ones(3)
    ema.update(p)  # beta_1 = min(0.999, 2 / 11)
    np.testing.assert_allclose(ema.avg["theta"], 1 - 2 / 11)


def test_clip_weights_values():
    p = {"W": np.array([[-3.0, 0.005], [0.02, 2.0]]), "b": np.array([-0.01, 0.5])}
    W_view = p["W"]
    clip_weights(p, 0.01)
    np.testing.assert_array_equal(p["W"], [[-0.01, 0.005], [0.01, 0.01]])
    np.testing.assert_array_equal(p["b"], [-0.01, 0.01])
    assert p["W"] is W_view  # in place
    net = make_net([2, 3, 1])
    clip_weights(net.params, 0.05)
    assert np.abs(net.theta).max() <= 0.05
    with pytest.raises((ValueError, TypeError)):
        clip_weights(p, 0.0)
