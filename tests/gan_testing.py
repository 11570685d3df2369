"""Shared test helpers: the networks, case tables and frozen GANs that the gradient-check and
torch cross-check files both run through."""
from __future__ import annotations

import numpy as np

import gancourse.toy.trainer as trainer_module
from gancourse.nn import ACTIVATIONS, INITS, MLP
from gancourse.toy import ToyConfig, ToyGAN

N = 8  # batch size of the network checks
B = 8  # batch size of the frozen GANs


def make_net(sizes, seed: int = 0, x: np.ndarray | None = None, **kw) -> MLP:
    """A float64 MLP with non-trivial biases and layer-norm gains; spectral norm frozen after one forward."""
    net = MLP(sizes, dtype=np.float64, seed=seed, **kw)
    rng = np.random.default_rng(seed + 100)
    for key, p in net.params.items():
        if not key.endswith((".W", ".T")):  # biases and layer-norm gain/bias start at 0 / 1
            p += rng.normal(0.0, 0.3, size=p.shape)
    if kw.get("spectral_norm"):
        net.train()
        warm = x if x is not None else rng.standard_normal((N, sizes[0]))
        for _ in range(3):  # a few power iterations, so that u^T W v is close to sigma_max
            net.forward(warm)
        net.eval()
    return net


MLP_CASES = (
    [dict(init=i) for i in INITS]
    + [dict(activation=a, out_activation=o) for a in ACTIVATIONS for o in (None, *ACTIVATIONS)]
    + [dict(activation=a, spectral_norm=True) for a in ACTIVATIONS]
    + [dict(activation="tanh", out_activation="sigmoid", spectral_norm=True)]
    + [dict(activation=a, layer_norm=True) for a in ACTIVATIONS]
    + [dict(activation=a, minibatch_discrimination=(3, 2)) for a in ("leaky_relu", "tanh")]
    + [dict(activation="tanh", spectral_norm=True, layer_norm=True, minibatch_discrimination=(2, 3))]
    + [dict(activation="leaky_relu", slope=0.1, layer_norm=True, out_activation="tanh")]
)


def case_id(kw: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in kw.items())


MLP_GROUP_CASES = [(kw, None) for kw in MLP_CASES] + [
    (kw, [3, 5]) for kw in MLP_CASES if "minibatch_discrimination" in kw  # real and fake rows kept apart
]


DOUBLE_CASES = [
    dict(activation=a, out_activation=o, spectral_norm=s)
    for a in ("tanh", "leaky_relu", "sigmoid", "relu")
    for o in (None, "sigmoid")
    for s in (False, True)
]


D_STEP_CASES = [
    dict(penalty="r1", gamma=10.0),
    dict(penalty="r1", gamma=1.0, d_activation="tanh"),
    dict(penalty="r2", gamma=3.0, d_activation="tanh"),
    dict(penalty="wgan-gp", gamma=10.0, loss="wgan"),
    dict(penalty="wgan-gp", gamma=10.0, loss="wgan", d_activation="tanh"),
    dict(penalty="wgan-gp", gamma=5.0, loss="ns"),
    dict(penalty="r1", gamma=10.0, spectral_norm=True, d_activation="tanh"),
    dict(penalty="wgan-gp", gamma=10.0, loss="hinge", spectral_norm=True),
    dict(penalty="none", gamma=0.0, loss="gan", label_smoothing=0.9),
    dict(penalty="r1", gamma=1.0, loss="ns", label_smoothing=0.9),
    dict(penalty="r1", gamma=1.0, loss="lsgan"),
    dict(penalty="r1", gamma=1.0, loss="rpgan"),
    dict(penalty="none", gamma=0.0, loss="hinge", spectral_norm=True),
    dict(penalty="none", gamma=0.0, loss="ns", minibatch_discrimination=3),
    dict(penalty="r1", gamma=1.0, historical_averaging=0.5),
]


G_STEP_CASES = [
    dict(penalty="r1", gamma=10.0),
    dict(penalty="wgan-gp", gamma=10.0, loss="wgan"),
    dict(penalty="r1", gamma=1.0, loss="gan"),
    dict(penalty="r1", gamma=1.0, loss="hinge", g_activation="tanh", d_activation="tanh"),
    dict(penalty="r1", gamma=1.0, loss="lsgan"),
    dict(penalty="r1", gamma=1.0, loss="rpgan"),
    dict(penalty="r1", gamma=1.0, loss="rpgan", spectral_norm=True, g_activation="tanh", d_activation="tanh"),
    dict(penalty="r1", gamma=1.0, feature_matching=True),
    dict(penalty="r1", gamma=1.0, feature_matching=True, g_activation="tanh", d_activation="tanh"),
    dict(penalty="none", gamma=0.0, feature_matching=True, minibatch_discrimination=3),
    dict(penalty="none", gamma=0.0, minibatch_discrimination=3, g_activation="tanh", d_activation="tanh"),
    dict(penalty="r1", gamma=1.0, historical_averaging=0.5),
]


def frozen_gan(monkeypatch, **overrides):
    """A float64 toy GAN whose batches are fixed and whose optimizers record gradients instead of stepping.

    Returns ``(gan, batch, recorded)``: ``batch`` holds the real batch, the noise
    and (once a D step has run with WGAN-GP) the interpolates the step used;
    ``recorded["d"]`` / ``recorded["g"]`` the gradients handed to the optimizers.
    """
    base = dict(data="ring8", dtype="float64", batch_size=B, g_hidden=(8, 8), d_hidden=(8, 8), z_dim=3, ema=0.0,
                lr_schedule="constant", seed=3)
    base.update(overrides)
    gan = ToyGAN(ToyConfig(**base))
    rng = np.random.default_rng(99)
    batch = {"real": gan.real_batch(B), "z": rng.standard_normal((B, 3))}
    recorded: dict[str, np.ndarray] = {}
    monkeypatch.setattr(gan, "real_batch", lambda n: batch["real"].copy())
    monkeypatch.setattr(gan, "noise", lambda n: batch["z"].copy())
    monkeypatch.setattr(gan.opt_d, "step", lambda params, grads: recorded.__setitem__("d", grads["theta"].copy()))
    monkeypatch.setattr(gan.opt_g, "step", lambda params, grads: recorded.__setitem__("g", grads["theta"].copy()))
    real_interpolate = trainer_module.interpolate

    def recording_interpolate(real, fake, rng):
        batch["xhat"] = real_interpolate(real, fake, rng)
        return batch["xhat"].copy()

    monkeypatch.setattr(trainer_module, "interpolate", recording_interpolate)
    if gan.config.spectral_norm:  # a few power iterations first, so that u^T W v is close to sigma_max
        for _ in range(3):
            gan.D.forward(batch["real"])
    if gan.hist_d is not None:  # a running mean away from the current weights, so the penalty has a gradient
        gan.hist_d.mean["theta"] += 0.1 * rng.standard_normal(gan.D.theta.shape)
        gan.hist_g.mean["theta"] += 0.1 * rng.standard_normal(gan.G.theta.shape)
    return gan, batch, recorded


def assert_tree_equal(a, b, path: str = "") -> None:
    """Exact equality of nested dicts / lists of arrays and plain values (arrays bit for bit)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        assert a_arr.shape == b_arr.shape, f"{path}: shape {a_arr.shape} != {b_arr.shape}"
        assert np.array_equal(a_arr, b_arr), f"{path}: arrays differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: dict vs {type(b).__name__}"
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_tree_equal(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_tree_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
