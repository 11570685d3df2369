"""R1 + R2 together in the NumPy engine (R3GAN's penalty): the formula, its gradients in float64, the toy
trainer and the ``gancourse toy --penalty r1+r2`` command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gancourse.cli import main
from gancourse.nn import PENALTIES, PENALTY_POINTS, apply_penalty, penalty_from_grad, r1_penalty, r1_r2_penalty
from gancourse.toy import ToyConfig, ToyGAN
from gan_testing import make_net

EPS = 1e-5


def numerical_grad(f, theta: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Centred differences of the scalar ``f()`` in each entry of ``theta`` (changed in place, restored)."""
    grad = np.zeros_like(theta)
    for i in range(theta.size):
        old = theta.flat[i]
        theta.flat[i] = old + eps
        up = f()
        theta.flat[i] = old - eps
        down = f()
        theta.flat[i] = old
        grad.flat[i] = (up - down) / (2 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-12))


def test_r1_r2_is_r1_on_the_reals_plus_r2_on_the_fakes():
    rng = np.random.default_rng(0)
    g_real, g_fake = rng.standard_normal((6, 3)), 3 * rng.standard_normal((6, 3))
    value, dg = r1_r2_penalty(np.concatenate([g_real, g_fake]), 0.7)
    p1, d1 = r1_penalty(g_real, 0.7)
    p2, d2 = r1_penalty(g_fake, 0.7)
    assert value == pytest.approx(p1 + p2, rel=1e-14)
    assert np.allclose(dg, np.concatenate([d1, d2]), rtol=1e-14, atol=0)
    # each half is averaged on its own: not R1 over all 12 rows, which is half of it when the halves match
    assert value != pytest.approx(r1_penalty(np.concatenate([g_real, g_fake]), 0.7)[0])
    same = np.concatenate([g_real, g_real])
    assert r1_r2_penalty(same, 0.7)[0] == pytest.approx(2 * r1_penalty(same, 0.7)[0])


def test_r1_r2_is_registered_and_dispatched():
    assert "r1+r2" in PENALTIES and PENALTY_POINTS["r1+r2"] == "real+fake"
    g = np.random.default_rng(1).standard_normal((8, 2))
    value, dg = penalty_from_grad("r1+r2", g, 2.5)
    assert value == r1_r2_penalty(g, 2.5)[0] and np.array_equal(dg, r1_r2_penalty(g, 2.5)[1])


@pytest.mark.parametrize("rows", [1, 7])
def test_r1_r2_refuses_an_odd_number_of_rows(rows):
    with pytest.raises(ValueError, match="two halves of equal size"):
        r1_r2_penalty(np.ones((rows, 2)), 1.0)


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu", "sigmoid"])
def test_r1_r2_gradient_check_float64(activation):
    """dP/dtheta by hand-written double backprop == centred differences, and == R1 + R2 applied apart."""
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((5, 2)), rng.standard_normal((5, 2)) + 1.0
    x = np.concatenate([real, fake])
    net = make_net([2, 6, 5, 1], activation=activation)
    gamma = 1.5

    def objective() -> float:
        net.forward(x)
        return r1_r2_penalty(net.input_grad(), gamma)[0]

    net.zero_grad()
    value = apply_penalty(net, x, "r1+r2", gamma)
    analytic = net.dtheta.copy()
    assert value == pytest.approx(objective(), rel=1e-12)
    assert rel_error(analytic, numerical_grad(objective, net.theta)) < 1e-6

    net.zero_grad()
    apart = apply_penalty(net, real, "r1", gamma)
    d_real = net.dtheta.copy()
    net.zero_grad()
    apart += apply_penalty(net, fake, "r2", gamma)
    assert value == pytest.approx(apart, rel=1e-12)
    assert rel_error(analytic, d_real + net.dtheta) < 1e-12


SMALL = dict(batch_size=16, z_dim=4, g_hidden=(16, 16), d_hidden=(16, 16), n_eval=200)


def test_toy_trainer_with_r1_r2_is_deterministic_and_records_both_terms():
    runs = []
    for _ in range(2):
        gan = ToyGAN(ToyConfig(data="ring8", steps=15, penalty="r1+r2", gamma=0.5, **SMALL))
        gan.train(progress=False, log_every=1)
        runs.append(gan)
    a, b = runs
    assert np.array_equal(a.D.theta, b.D.theta) and np.array_equal(a.G.theta, b.G.theta)
    assert all(np.isfinite(a.history["penalty"])) and min(a.history["penalty"]) > 0
    # the combined penalty is at least R1 alone on the same run's first step (same data, same weights)
    only_r1 = ToyGAN(ToyConfig(data="ring8", steps=1, penalty="r1", gamma=0.5, **SMALL))
    only_r1.train(progress=False, log_every=1)
    first = ToyGAN(ToyConfig(data="ring8", steps=1, penalty="r1+r2", gamma=0.5, **SMALL))
    first.train(progress=False, log_every=1)
    assert first.history["penalty"][0] > only_r1.history["penalty"][0]


def test_toy_command_accepts_r1_r2(capsys):
    argv = ["toy", "--data", "ring8", "--steps", "10", "--n-eval", "200", "--penalty", "r1+r2", "--gamma", "0.3",
            "--batch-size", "16", "--g-hidden", "16,16", "--d-hidden", "16,16", "--z-dim", "4", "--no-progress",
            "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 10
    expected = ToyGAN(ToyConfig(data="ring8", steps=10, n_eval=200, penalty="r1+r2", gamma=0.3,
                                batch_size=16, g_hidden=(16, 16), d_hidden=(16, 16), z_dim=4)).run(progress=False)
    assert result["modes"] == expected["modes"]
