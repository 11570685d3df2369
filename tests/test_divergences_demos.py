"""Mode covering vs mode seeking fits, vanishing gradients, the engine's D vs D*, WGAN critic tracking."""
from __future__ import annotations

import numpy as np
import pytest

from gancourse.divergences import mmd2
from gancourse.divergences.demos import fit_gaussian, mixture_log_density, mixture_moments, mmd2_gaussian_mixtures
from gancourse.nn import MLP
from gancourse.toy import ToyConfig, ToyGAN, get_dataset
from gancourse.toy.engine_demos import discriminator_error, train_discriminator, vanishing_gradients, wgan_tracking

W1D, M1D, C1D = [0.5, 0.5], [[-2.0], [2.0]], [[[0.25]], [[0.25]]]
XS = np.linspace(-8, 8, 801)


def test_mixture_density_integrates_to_one_and_moments():
    w, m, c = [0.3, 0.7], [[-1.0, 0.0], [2.0, 1.0]], [np.eye(2) * 0.5, [[1.0, 0.3], [0.3, 0.6]]]
    xs = np.linspace(-8, 9, 171)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    dens = np.exp(mixture_log_density(np.column_stack([X.ravel(), Y.ravel()]), w, m, c))
    assert dens.sum() * (xs[1] - xs[0]) ** 2 == pytest.approx(1.0, abs=1e-6)
    mu, cov = mixture_moments(w, m, c)
    np.testing.assert_allclose(mu, [1.1, 0.7])
    assert cov[0, 0] == pytest.approx(0.3 * 0.5 + 0.7 * 1.0 + 0.3 * 1 + 0.7 * 4 - 1.1**2)


def test_mmd2_closed_form_matches_sample_estimate():
    rng = np.random.default_rng(0)
    mix1 = ([1.0], [[0.0, 0.0]], [np.eye(2)])
    mix2 = ([0.5, 0.5], [[-1.0, 0.0], [1.5, 0.5]], [np.eye(2) * 0.3, np.eye(2) * 0.6])
    x = rng.standard_normal((2000, 2))
    k = rng.random(2000) < 0.5
    y = np.where(k[:, None], rng.standard_normal((2000, 2)) * np.sqrt(0.3) + [-1.0, 0.0],
                 rng.standard_normal((2000, 2)) * np.sqrt(0.6) + [1.5, 0.5])
    assert mmd2_gaussian_mixtures(mix1, mix2, 1.0) == pytest.approx(mmd2(x, y, 1.0), abs=0.01)
    assert mmd2_gaussian_mixtures(mix2, mix2, 1.0) == pytest.approx(0.0, abs=1e-12)


def test_forward_kl_fit_is_moment_matching_and_reverse_kl_seeks_a_mode():
    fwd = fit_gaussian(W1D, M1D, C1D, "kl", [XS])
    rev = fit_gaussian(W1D, M1D, C1D, "reverse_kl", [XS])
    assert fwd["mean"][0] == pytest.approx(0.0, abs=1e-3)
    assert fwd["cov"][0, 0] == pytest.approx(4.25, rel=5e-3)  # 0.25 + 2^2: covers both modes
    assert abs(rev["mean"][0]) == pytest.approx(2.0, abs=1e-2)  # sits on one mode
    assert rev["cov"][0, 0] == pytest.approx(0.25, rel=2e-2)
    assert rev["value"] == pytest.approx(np.log(2), abs=0.01)  # KL(one mode || both) ~ log 2


def test_2d_fits_order_the_spread():
    w, m, c = [0.6, 0.4], [[-2.0, 0.0], [2.0, 1.0]], [np.diag([0.5, 0.2]), np.array([[0.3, 0.1], [0.1, 0.4]])]
    axes = [np.linspace(-8, 8, 49), np.linspace(-6, 7, 40)]
    fwd = fit_gaussian(w, m, c, "kl", axes)
    rev = fit_gaussian(w, m, c, "reverse_kl", axes)
    jsd = fit_gaussian(w, m, c, "jsd", axes)
    mu, cov = mixture_moments(w, m, c)
    np.testing.assert_allclose(fwd["mean"], mu, atol=0.03)
    np.testing.assert_allclose(fwd["cov"], cov, atol=0.05)
    assert np.linalg.norm(rev["mean"] - np.array(m[0])) < 0.05  # the heavier mode
    assert np.trace(rev["cov"]) < np.trace(jsd["cov"]) <= np.trace(fwd["cov"]) + 1e-6


def test_fit_gaussian_bad_input():
    with pytest.raises(ValueError, match="valid options"):
        fit_gaussian(W1D, M1D, C1D, "hellinger", [XS])
    with pytest.raises(ValueError, match="cover the mixture"):
        fit_gaussian(W1D, M1D, C1D, "kl", [np.linspace(0, 8, 101)])
    with pytest.raises(ValueError, match="weights"):
        fit_gaussian([0.5, 0.6], M1D, C1D, "kl", [XS])


def test_vanishing_gradients_on_disjoint_supports():
    rows = vanishing_gradients(1.0, checkpoints=(0, 1000), seed=0)
    start, end = rows
    assert end["accuracy"] == 1.0  # disjoint supports: perfectly separable
    assert end["d_fake"] < 0.01
    assert abs(end["grad_saturating"]) < 0.02 * abs(start["grad_saturating"])  # log(1 - D) saturates
    assert abs(end["grad_nonsaturating"]) > 1.0  # -log D keeps pushing
    assert abs(end["grad_nonsaturating"]) > 100 * abs(end["grad_saturating"])
    with pytest.raises(ValueError, match="non-zero"):
        vanishing_gradients(0.0)


def test_engine_discriminator_approaches_the_optimal_one():
    p, q = get_dataset("mixture1d"), get_dataset("gaussian", mean=0.0, std=1.5)
    xs = np.linspace(-6, 6, 601)
    net = train_discriminator(p, q, steps=600, batch_size=256, seed=0)
    err = discriminator_error(net, p, q, xs)
    err0 = discriminator_error(MLP([1, 32, 32, 1], seed=0), p, q, xs)
    assert err < 0.04  # seeds 0-4 give 0.019-0.029; untrained about 0.43
    assert err < 0.1 * err0


WGAN_1D = dict(data="mixture1d", loss="wgan", n_critic=5, g_hidden=(32, 32), d_hidden=(32, 32), z_dim=4,
               batch_size=128, ema=0.0, lr_schedule="constant", seed=0)  # notebook 03's WGANs, shorter


def test_wgan_clipped_critic_is_a_scaled_down_estimate_of_w1():
    cfg = ToyConfig(**WGAN_1D, penalty="none", gamma=0.0, weight_clip=0.1, optimizer="rmsprop", lr_g=1e-3,
                    lr_d=1e-3, steps=400)
    rec = wgan_tracking(cfg, every=50, n_eval=2000)
    assert set(rec) == {"step", "critic", "w1", "lipschitz", "misoriented"}
    assert rec["step"].tolist() == list(range(0, 401, 50))
    assert rec["w1"][-1] < 0.5 * rec["w1"][0]  # the generator learns
    assert np.all(rec["critic"] <= rec["lipschitz"] * rec["w1"] + 0.005)  # Kantorovich-Rubinstein: gap <= K W1
    assert np.all(rec["lipschitz"][1:] < 0.5)  # clipping keeps the slope small (seeds 0-4: at most 0.23)
    assert np.all(np.abs(rec["critic"][1:]) < 0.1 * rec["w1"][1:])  # so the gap is a small fraction of W1
    assert rec["critic"][1:3].mean() > rec["critic"][-2:].mean() > 0  # and it falls as the generator learns
    with pytest.raises(ValueError, match="wgan"):
        wgan_tracking(cfg.replace(loss="ns"))
    with pytest.raises(ValueError, match="1D"):
        wgan_tracking(cfg.replace(data="ring8"))


def test_wgan_tracking_trains_a_toygan_in_place_and_measures_the_critics_orientation():
    cfg = ToyConfig(**WGAN_1D, penalty="wgan-gp", gamma=1.0, optimizer="adam", beta1=0.5, beta2=0.9, lr_g=1e-3,
                    lr_d=1e-3, steps=300)
    gan = ToyGAN(cfg)
    rec = wgan_tracking(gan, every=50, n_eval=2000)
    assert gan.step == 300 and rec["step"].tolist() == list(range(0, 301, 50))
    assert np.all(rec["critic"] <= rec["lipschitz"] * rec["w1"] + 0.005)  # gap <= K W1
    over = rec["critic"] > rec["w1"]
    assert over.any() and np.all(rec["lipschitz"][over] > 1)  # early the gap overshoots W1: a slope above 1 does it
    assert np.all((rec["misoriented"] >= 0) & (rec["misoriented"] <= 1))
    # a trained ToyGAN is measured once, on the same samples as before (same seed, same step)
    once = wgan_tracking(gan, n_eval=2000)
    assert once["step"].tolist() == [300]  # (training ran on one BLAS thread: float32 sums may differ in order)
    assert once["w1"][0] == pytest.approx(rec["w1"][-1], rel=1e-6)
    assert once["critic"][0] == pytest.approx(rec["critic"][-1], rel=1e-6)
    # -f: the opposite gap, the same slopes, and the orientation of every part of the transport reversed
    last = gan.D.layers[-1]
    last.params["W"][...] *= -1
    last.params["b"][...] *= -1
    flipped = wgan_tracking(gan, n_eval=2000)
    np.testing.assert_allclose(flipped["critic"], -once["critic"], rtol=1e-6)
    np.testing.assert_allclose(flipped["lipschitz"], once["lipschitz"], rtol=1e-6)
    np.testing.assert_allclose(flipped["misoriented"], 1 - once["misoriented"], atol=1e-9)
    assert flipped["w1"][0] == once["w1"][0]
    with pytest.raises(ValueError, match="wgan"):
        wgan_tracking(ToyGAN(cfg.replace(loss="ns")))
