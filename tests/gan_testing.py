"""Shared test helper: a toy GAN frozen for gradient checks of whole trainer steps."""
from __future__ import annotations

import numpy as np

import gancourse.toy.trainer as trainer_module
from gancourse.toy import ToyConfig, ToyGAN

B = 8  # batch size of the frozen GANs


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
