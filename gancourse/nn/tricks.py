"""Stabilisation tricks from the lectures that are not layers or losses.

- feature matching (Salimans et al. 2016): ``L_G = ||E f(x) - E f(G(z))||^2`` on
  the discriminator's last hidden features ``f``;
- historical averaging (Salimans et al. 2016): ``lambda ||theta - mean_{i<t} theta_i||^2``
  added to a player's cost;
- instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise on
  both real and generated inputs of the discriminator, annealed to zero.
(One-sided label smoothing lives in :func:`gancourse.nn.losses.d_loss_bce`,
minibatch discrimination in :mod:`gancourse.nn.layers`.)
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gancourse.errors import check_array, check_positive, check_positive_int
from gancourse.nn._checks import positive

__all__ = ["feature_matching_loss", "HistoricalAverage", "instance_noise_std"]


def _features(name: str, f: np.ndarray) -> np.ndarray:
    """``f`` as a non-empty batch of features (N, H); O(1) for an array."""
    if not isinstance(f, np.ndarray):
        f = check_array(name, f, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must be a batch of features of shape (N, H), got shape {f.shape}")
    if f.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {f.shape}): feature matching compares means over at least one sample")
    return f


def feature_matching_loss(f_real: np.ndarray, f_fake: np.ndarray) -> tuple[float, np.ndarray]:
    """``L = ||mean_i f_real_i - mean_j f_fake_j||^2`` and ``dL/df_fake`` (real features are constants).

    ``dL/df_fake_j = -2 (mean f_real - mean f_fake) / N_fake`` for every row j.
    ``f_real`` (N_real, H) and ``f_fake`` (N_fake, H), both with at least one row.
    """
    f_real, f_fake = _features("f_real", f_real), _features("f_fake", f_fake)
    diff = f_real.mean(axis=0) - f_fake.mean(axis=0)  # (H,)
    grad = np.broadcast_to(-2.0 * diff / f_fake.shape[0], f_fake.shape).astype(f_fake.dtype)
    return float(diff @ diff), grad


class HistoricalAverage:
    """Running mean of past parameters and the penalty ``lambda ||theta - theta_bar||^2``.

    ``theta_bar_t = (1/t) sum_{i=1..t} theta_i`` over the parameters seen so far;
    the gradient ``2 lambda (theta - theta_bar)`` is added into ``grads``.
    """

    def __init__(self, params: Mapping[str, np.ndarray], weight: float):
        self.weight = check_positive("historical averaging weight", weight)
        self.mean = {k: np.array(v, copy=True) for k, v in params.items()}
        self.count = 1

    def penalty(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray] | None = None) -> float:
        """The penalty value; with ``grads`` given, its gradient is added into them."""
        total = 0.0
        for k, p in params.items():
            d = p - self.mean[k]
            total += float(np.vdot(d, d))
            if grads is not None:
                grads[k] += (2 * self.weight) * d
        return self.weight * total

    def update(self, params: Mapping[str, np.ndarray]) -> None:
        """Fold the current parameters into the running mean."""
        self.count += 1
        for k, p in params.items():
            self.mean[k] += (p - self.mean[k]) / self.count

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": {k: v.copy() for k, v in self.mean.items()}}

    def load_state_dict(self, sd: Mapping) -> None:
        self.count = int(sd["count"])
        self.mean = {k: np.array(v) for k, v in sd["mean"].items()}


def instance_noise_std(sigma0: float, step: int, total_steps: int) -> float:
    """Linearly annealed noise level ``sigma0 * max(0, 1 - step / total_steps)``.

    ``sigma0`` >= 0 (a standard deviation), ``step`` and ``total_steps`` integers >= 0
    (``total_steps = 0`` is read as 1).
    """
    positive("sigma0", sigma0, allow_zero=True)
    check_positive_int("step", step, minimum=0)
    check_positive_int("total_steps", total_steps, minimum=0)
    return float(sigma0) * max(0.0, 1.0 - step / max(total_steps, 1))
