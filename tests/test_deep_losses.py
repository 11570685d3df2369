"""Torch GAN losses, the WGAN-GP gradient penalty (finite differences and the NumPy engine), cycle/identity losses."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.func import functional_call  # noqa: E402

from gancourse.deep.losses import (  # noqa: E402
    CYCLE_LAMBDA,
    GP_LAMBDA,
    IDENTITY_FRACTION,
    cycle_loss,
    d_loss_bce,
    d_loss_hinge,
    d_loss_lsgan,
    d_loss_rpgan,
    d_loss_wgan,
    g_loss_hinge,
    g_loss_lsgan,
    g_loss_nonsaturating,
    g_loss_rpgan,
    g_loss_wgan,
    gradient_penalty,
    identity_loss,
    input_grad_norms,
    interpolate,
    wasserstein_estimate,
    zero_centered_penalty,
)
from gancourse.nn import MLP, apply_penalty  # noqa: E402
from gancourse.nn.penalties import interpolate as np_interpolate  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")
DT = torch.float64


def test_constants_are_the_papers():
    assert GP_LAMBDA == 10.0 and CYCLE_LAMBDA == 10.0 and IDENTITY_FRACTION == 0.5


def test_bce_hand_values():
    zero = torch.zeros(4)
    assert d_loss_bce(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert g_loss_nonsaturating(zero).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    manual = -(torch.log(sig(real))).mean() - torch.log(1 - sig(fake)).mean()
    assert d_loss_bce(real, fake).item() == pytest.approx(manual.item(), rel=1e-6)
    assert g_loss_nonsaturating(fake).item() == pytest.approx(-(torch.log(sig(fake))).mean().item(), rel=1e-6)


def test_bce_is_stable_for_large_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(d_loss_bce(big, -big))
    assert d_loss_bce(torch.tensor([1e4]), torch.tensor([-1e4])).item() == 0.0
    assert g_loss_nonsaturating(torch.tensor([-1e4])).item() == pytest.approx(1e4)
    x = torch.tensor([-1e4], requires_grad=True)
    g_loss_nonsaturating(x).backward()
    assert x.grad.item() == pytest.approx(-1.0)  # the non-saturating loss keeps its gradient


def test_lsgan_hand_values():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    # 1/2 * mean((0, -1)^2) + 1/2 * mean((0, 2)^2) = 1/4 + 1
    assert d_loss_lsgan(real, fake).item() == pytest.approx(1.25)
    assert g_loss_lsgan(fake).item() == pytest.approx(0.5)  # 1/2 * mean((-1)^2, 1^2), as d_loss_lsgan
    patch = torch.ones(2, 1, 3, 3)
    assert d_loss_lsgan(patch, 0 * patch).item() == 0.0  # a map of logits: the mean over every patch


@pytest.mark.parametrize("d_name, g_name", [("d_loss_bce", "g_loss_nonsaturating"), ("d_loss_lsgan", "g_loss_lsgan"),
                                            ("d_loss_wgan", "g_loss_wgan")])
def test_losses_have_the_numpy_engines_convention(d_name, g_name):
    # one vocabulary across the tracks: a loss of the same name is the same number (LSGAN's 1/2 included)
    from gancourse import nn as engine
    from gancourse.deep import losses

    rng = np.random.default_rng(0)
    real, fake = 3 * rng.normal(size=(8, 1)), 3 * rng.normal(size=(8, 1))
    d_torch = getattr(losses, d_name)(torch.from_numpy(real), torch.from_numpy(fake)).item()
    assert d_torch == pytest.approx(getattr(engine, d_name)(real, fake)[0], rel=1e-12)
    g_torch = getattr(losses, g_name)(torch.from_numpy(fake)).item()
    assert g_torch == pytest.approx(getattr(engine, g_name)(fake)[0], rel=1e-12)


def test_wgan_losses():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.5, -0.5])
    assert d_loss_wgan(real, fake).item() == pytest.approx(-2.0)
    assert wasserstein_estimate(real, fake).item() == pytest.approx(2.0)
    assert g_loss_wgan(fake).item() == pytest.approx(0.0)


def test_interpolate_endpoints_and_validation():
    real, fake = torch.ones(3, 1, 2, 2), torch.zeros(3, 1, 2, 2)
    xh = interpolate(real, fake, eps=torch.tensor([0.0, 0.25, 1.0]))
    assert torch.equal(xh[:, 0, 0, 0], torch.tensor([0.0, 0.25, 1.0]))
    drawn = interpolate(real, fake, generator=torch.Generator().manual_seed(0))
    assert ((drawn >= 0) & (drawn <= 1)).all() and (drawn.flatten(1).std(1) == 0).all()  # one eps per sample
    with pytest.raises(ValueError, match="same shape"):
        interpolate(real, fake[:2])
    with pytest.raises(ValueError, match="one coefficient per sample"):
        interpolate(real, fake, eps=torch.rand(2))


def test_grad_norm_of_a_linear_critic():
    # f(x) = <w, x> + b has gradient w everywhere: every per-sample norm is |w| over all non-batch dims
    w = torch.randn(1, 2, 3, 3, dtype=DT)

    def critic(x):
        return (x * w).flatten(1).sum(1) + 0.3

    x = torch.randn(5, 2, 3, 3, dtype=DT)
    norms = input_grad_norms(critic, x)
    assert torch.allclose(norms, w.norm().expand(5))
    gp = gradient_penalty(critic, x, torch.randn_like(x), lam=10.0)
    assert gp.item() == pytest.approx(10 * (w.norm().item() - 1) ** 2)


def small_critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, 2, 1), nn.LeakyReLU(0.2), nn.GroupNorm(1, 2), nn.Flatten(),
                         nn.Linear(2 * 2 * 2, 1), nn.Tanh(), nn.Flatten(0)).to(DT)


def test_gradient_penalty_gradcheck_in_parameters():
    critic = small_critic()
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(4, 1, 4, 4, dtype=DT, generator=gen)
    fake = torch.randn(4, 1, 4, 4, dtype=DT, generator=gen)
    eps = torch.rand(4, dtype=DT, generator=gen)
    names = [n for n, _ in critic.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in critic.parameters())

    def penalty(*ps):
        f = lambda x: functional_call(critic, dict(zip(names, ps)), (x,))  # noqa: E731
        return gradient_penalty(f, real, fake, lam=10.0, eps=eps)

    assert torch.autograd.gradcheck(penalty, params, eps=1e-6, atol=1e-7, rtol=1e-5)
    assert penalty(*params).item() > 0


def test_penalty_does_not_reach_real_or_fake():
    critic = small_critic()
    real = torch.randn(3, 1, 4, 4, dtype=DT)
    fake = torch.randn(3, 1, 4, 4, dtype=DT, requires_grad=True)
    gp, norms = gradient_penalty(critic, real, fake, return_norms=True)
    gp.backward()
    assert fake.grad is None  # the penalty trains the critic only
    assert norms.shape == (3,) and not norms.requires_grad
    assert all(p.grad is not None for p in critic.parameters())


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "sigmoid"])
def test_gradient_penalty_matches_numpy_engine(activation):
    """The hand-derived double backprop of gancourse.nn and torch autograd agree on an equivalent MLP."""
    sizes = [6, 8, 7, 1]
    net = MLP(sizes, activation=activation, dtype=np.float64, seed=4)
    rng = np.random.default_rng(5)
    for key, p in net.params.items():  # non-trivial biases
        if key.endswith(".b"):
            p += rng.normal(0.0, 0.3, size=p.shape)
    layers: list[nn.Module] = []
    for j, layer in enumerate(net.layers):
        kind = type(layer).__name__
        if kind == "Linear":
            lin = nn.Linear(layer.n_in, layer.n_out).to(DT)
            lin.weight.data = torch.tensor(net.params[f"{j}.W"].T.copy())  # (in, out) -> (out, in)
            lin.bias.data = torch.tensor(net.params[f"{j}.b"].copy())
            layers.append(lin)
        else:
            layers.append({"LeakyReLU": nn.LeakyReLU(0.2), "Tanh": nn.Tanh(), "Sigmoid": nn.Sigmoid()}[kind])
    critic = nn.Sequential(*layers, nn.Flatten(0))

    real, fake = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))
    eps_rng = np.random.default_rng(7)
    xhat = np_interpolate(real, fake, eps_rng)  # the engine's own interpolation
    eps = np.random.default_rng(7).random((9, 1))
    assert np.allclose(xhat, eps * real + (1 - eps) * fake)

    net.zero_grad()
    value = apply_penalty(net, xhat, "wgan-gp", 10.0)
    gp = gradient_penalty(critic, torch.tensor(real), torch.tensor(fake), lam=10.0, eps=torch.tensor(eps))
    gp.backward()
    assert abs(gp.item() - value) <= 1e-10 * max(1.0, abs(value))
    def grad(p):  # a parameter the input gradient does not depend on (the last bias) gets no gradient
        return np.zeros(tuple(p.shape)) if p.grad is None else p.grad.numpy()

    n_checked = 0
    for j, layer in enumerate(critic):
        if isinstance(layer, nn.Linear):
            ours_w, ours_b = net.grads[f"{j}.W"].T, net.grads[f"{j}.b"].reshape(-1)
            assert np.abs(grad(layer.weight) - ours_w).max() < 1e-10
            assert np.abs(grad(layer.bias) - ours_b).max() < 1e-10
            n_checked += 1
    assert n_checked == 3 and np.abs(net.dtheta).max() > 1e-3  # the gradients compared are not all zero


def test_cycle_and_identity_losses():
    x = torch.zeros(2, 3, 4, 4)
    assert cycle_loss(x, x + 0.5).item() == pytest.approx(5.0)  # 10 * mean |0.5|
    assert identity_loss(x, x - 0.5).item() == pytest.approx(2.5)  # 0.5 * 10 * mean |0.5|
    assert cycle_loss(x, x + 0.5, lam=1.0).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        cycle_loss(x, x[:1])
    with pytest.raises(ValueError, match="shape"):
        identity_loss(x, x[:, :1])


# ------------------------------------------------------------------ hinge, RpGAN, R1 / R2


def test_hinge_and_rpgan_match_the_numpy_engine():
    from gancourse.nn import losses as np_losses

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(7, 1)) * 2, rng.normal(size=(7, 1)) * 2
    tr, tf = torch.tensor(real, dtype=DT), torch.tensor(fake, dtype=DT)
    assert float(d_loss_hinge(tr, tf)) == pytest.approx(np_losses.d_loss_hinge(real, fake)[0], rel=1e-12)
    assert float(g_loss_hinge(tf)) == pytest.approx(np_losses.g_loss_hinge(fake)[0], rel=1e-12)
    assert float(d_loss_rpgan(tr, tf)) == pytest.approx(np_losses.d_loss_rpgan(real, fake)[0], rel=1e-12)
    assert float(g_loss_rpgan(tf, tr)) == pytest.approx(np_losses.g_loss_rpgan(fake, real)[0], rel=1e-12)
    # the generator's gradient through D(G(z)) matches the NumPy engine's dlogits
    tf.requires_grad_(True)
    g_loss_rpgan(tf, tr).backward()
    np.testing.assert_allclose(tf.grad.numpy(), np_losses.g_loss_rpgan(fake, real)[1], rtol=1e-12)


def test_rpgan_refuses_unpaired_logits():
    with pytest.raises(ValueError, match="same shape"):
        d_loss_rpgan(torch.zeros(4, 1), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="same shape"):
        g_loss_rpgan(torch.zeros(4, 1), torch.zeros(4))


def test_zero_centered_penalty_of_a_linear_critic_is_gamma_half_norm_squared():
    w = torch.tensor([[0.5, -2.0, 1.0]], dtype=DT)
    critic = nn.Linear(3, 1, bias=True).to(DT)
    with torch.no_grad():
        critic.weight.copy_(w)
    x = torch.randn(5, 3, dtype=DT)
    p = zero_centered_penalty(critic, x, gamma=0.4)
    assert p.item() == pytest.approx(0.2 * float(w.square().sum()), rel=1e-12)
    p.backward()  # d/dw (gamma/2 ||w||^2) = gamma w
    np.testing.assert_allclose(critic.weight.grad.numpy(), 0.4 * w.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="gamma"):
        zero_centered_penalty(critic, x, gamma=0.0)


def test_zero_centered_penalty_matches_numpy_r1_on_an_mlp():
    from gancourse.nn import r1_penalty

    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).to(DT)
    x = torch.randn(6, 2, dtype=DT)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(xg).sum(), xg)
    expected, _ = r1_penalty(g.numpy(), 2.5)
    assert zero_centered_penalty(critic, x, 2.5).item() == pytest.approx(expected, rel=1e-12)
