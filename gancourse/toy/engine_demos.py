"""Experiments that put the NumPy engine (``gancourse.nn``, ``gancourse.toy``) next to the theory.

They train networks, so they live above the maths (``gancourse.divergences`` may not import the trainer);
the lectures import them from ``gancourse.divergences``, which forwards these names here on first use.

- ``vanishing_gradients``: on WGAN's parallel lines (disjoint supports) a discriminator reaches 100%
  accuracy, and as ``D(G(z)) -> 0`` the generator's gradient under the saturating loss
  ``log(1 - D)`` vanishes while the non-saturating ``-log D`` keeps it (Arjovsky & Bottou 2017, fig. 2);
- ``train_discriminator`` / ``discriminator_error``: an MLP trained with cross-entropy on samples
  of fixed 1D ``p`` and ``q`` approaches ``D* = p / (p + q)`` (Goodfellow et al. 2014, Prop. 1);
- ``critic_gap`` / ``wgan_tracking``: the WGAN critic's ``E_p[f] - E_q[f]`` next to the true W1 as
  the generator learns (Arjovsky et al. 2017), with the critic's largest slope and the share of W1
  over which it slopes the wrong way.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gancourse.divergences.discriminator import optimal_discriminator
from gancourse.divergences.wasserstein import wasserstein_1d
from gancourse.errors import check_array, check_positive, check_positive_int
from gancourse.nn import MLP, Adam, d_loss_bce, g_loss_nonsaturating, g_loss_saturating, sigmoid
from gancourse.toy.config import ToyConfig
from gancourse.toy.distributions import ToyDistribution
from gancourse.toy.trainer import ToyGAN

__all__ = ["vanishing_gradients", "train_discriminator", "discriminator_error", "critic_gap", "wgan_tracking"]


def _check_int(name: str, v: Any, low: int = 1) -> int:
    return check_positive_int(name, v, minimum=low)


def vanishing_gradients(
    theta: float = 1.0,
    checkpoints: Sequence[int] = (0, 10, 30, 100, 300, 1000),
    *,
    batch_size: int = 128,
    hidden: tuple[int, ...] = (32, 32),
    lr: float = 1e-3,
    n_eval: int = 1000,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train a discriminator on ``P_0 = (0, Z)`` vs ``P_theta = (theta, Z)``; measure G's gradient.

    At each step count in ``checkpoints`` (with a fresh evaluation batch of ``n_eval`` points):
    ``accuracy`` (real logit > 0 and fake logit < 0), ``d_fake`` (mean ``D(G(z))``) and the
    generator's gradient with respect to ``theta`` (the generator ``G(z) = (theta, z)`` has one
    parameter), ``grad_saturating`` for ``E[log(1 - D(G(z)))]`` and ``grad_nonsaturating`` for
    ``-E[log D(G(z))]``, back-propagated through the MLP: ``dL/dtheta = sum_i dL/dx_i[0]``.
    """
    theta = float(theta)
    if theta == 0.0 or not np.isfinite(theta):
        raise ValueError(f"theta must be a non-zero finite number (disjoint supports), got {theta!r}")
    steps = sorted({_check_int("checkpoints", c, 0) for c in checkpoints})
    if not steps:
        raise ValueError("checkpoints must list at least one step count")
    wanted = set(steps)
    rng = np.random.default_rng(seed)
    net = MLP([2, *hidden, 1], dtype=np.float64, seed=seed)
    opt = Adam(lr=check_positive("lr", lr))

    def batch(n: int) -> tuple[np.ndarray, np.ndarray]:
        z = rng.uniform(0, 1, (n, 1))
        return np.hstack([np.zeros((n, 1)), z]), np.hstack([np.full((n, 1), theta), z])  # (n, 2) each

    out = []
    for step in range(steps[-1] + 1):
        if step in wanted:
            real, fake = batch(n_eval)
            f_real = net.forward(real)[:, 0]
            f_fake = net.forward(fake)  # (n, 1); its forward cache serves the two backward passes
            row = {"step": step, "accuracy": float(0.5 * ((f_real > 0).mean() + (f_fake[:, 0] < 0).mean())),
                   "d_fake": float(sigmoid(f_fake).mean())}
            for name, loss in (("grad_saturating", g_loss_saturating), ("grad_nonsaturating", g_loss_nonsaturating)):
                _, d_logit = loss(f_fake)  # (n, 1)
                dx = net.backward(d_logit, param_grads=False)  # (n, 2)
                row[name] = float(dx[:, 0].sum())  # d/dtheta of the batch-mean loss
            out.append(row)
        if step == steps[-1]:
            break
        real, fake = batch(batch_size)
        logits = net.forward(np.concatenate([real, fake]))  # (2B, 1)
        _, d_real, d_fake = d_loss_bce(logits[:batch_size], logits[batch_size:])
        net.zero_grad()
        net.backward(np.concatenate([d_real, d_fake]))
        opt.step(net.params, net.grads)
    return out


def train_discriminator(
    p: ToyDistribution,
    q: ToyDistribution,
    steps: int = 1000,
    *,
    batch_size: int = 512,
    hidden: tuple[int, ...] = (32, 32),
    lr: float = 1e-2,
    seed: int = 0,
) -> MLP:
    """An ``MLP([1, *hidden, 1])`` trained by Adam on ``d_loss_bce`` with real samples of ``p`` and fake of ``q``.

    The learning rate decays linearly to 0 over ``steps`` so that minibatch noise averages out.
    The returned network outputs logits; ``sigmoid(logit)`` estimates ``D*``.
    """
    if p.dim != 1 or q.dim != 1:
        raise ValueError(f"p and q must be 1D toy distributions, got dimensions {p.dim} and {q.dim}")
    steps, batch_size = _check_int("steps", steps), _check_int("batch_size", batch_size)
    lr = check_positive("lr", lr)
    rng = np.random.default_rng(seed)
    net = MLP([1, *hidden, 1], seed=seed)
    opt = Adam(lr=lr)
    for step in range(steps):
        opt.lr = lr * (1 - step / steps) + 1e-7
        x = np.concatenate([p.sample(batch_size, rng), q.sample(batch_size, rng)])  # (2B, 1)
        logits = net.forward(x)
        _, d_real, d_fake = d_loss_bce(logits[:batch_size], logits[batch_size:])
        net.zero_grad()
        net.backward(np.concatenate([d_real, d_fake]))
        opt.step(net.params, net.grads)
    return net


def discriminator_error(net: MLP, p: ToyDistribution, q: ToyDistribution, xs: Any) -> float:
    """``sum_x (p + q) |sigmoid(f(x)) - D*(x)| / sum_x (p + q)`` on the grid ``xs`` (n,).

    The absolute error of the network against ``D* = p / (p + q)``, weighted by where the two
    distributions put their mass (away from both, D* is 0/0 and unconstrained by training).
    """
    x = check_array("xs", xs, dtype=np.float64, ndim=1, finite=True)
    if x.size == 0:
        raise ValueError("xs is empty: give at least one grid point")
    dp, dq = p.density(x[:, None]), q.density(x[:, None])  # (n,) each
    d_fit = sigmoid(net.forward(x[:, None])[:, 0].astype(np.float64))  # (n,)
    weight = dp + dq
    return float(np.sum(weight * np.abs(d_fit - optimal_discriminator(dp, dq))) / np.sum(weight))


def critic_gap(gan: ToyGAN, n: int = 5000, seed: int = 0) -> float:
    """The critic's estimate ``E_p[f(x)] - E_q[f(x)]`` of W1, in data units, on fresh samples.

    The trainer's critic sees ``x / scale``; if it is 1-Lipschitz there, ``f(x / scale) * scale`` is
    1-Lipschitz in data units, hence the factor ``scale``. Both expectations use ``n`` samples.
    """
    n = _check_int("n", n)
    rng = np.random.default_rng(seed)
    real = gan.dataset.sample(n, rng)  # (n, dim)
    fake = gan.sample(n, seed=int(rng.integers(2**31)), raw=True)
    f = gan.D.forward((np.concatenate([real, fake]) / gan.scale).astype(gan.dtype))[:, 0].astype(np.float64)
    return float(gan.scale * (f[:n].mean() - f[n:].mean()))


def wgan_tracking(
    config: ToyConfig | ToyGAN, every: int = 100, *, n_eval: int = 5000, seed: int = 0, grid: int = 2000
) -> dict[str, np.ndarray]:
    """Train a 1D WGAN and record, every ``every`` steps (and at the start), the critic's estimate and the true W1.

    ``config`` is a ``ToyConfig`` with ``loss="wgan"`` on a 1D dataset, or a ``ToyGAN`` built from one,
    which is then trained in place up to its ``config.steps`` (to look at the trained networks afterwards).
    Each measurement draws ``n_eval`` data samples (``p``) and ``n_eval`` generated ones (``q``), and
    records on these same samples, in data units:

    - ``critic``: the critic's gap ``E_p f - E_q f`` (as :func:`critic_gap`);
    - ``w1``: the true W1 between the two samples (``wasserstein_1d``);
    - ``lipschitz``: the largest slope ``|f'|`` on ``grid`` points spread over the samples' range;
    - ``misoriented``: the share of W1 over which the critic slopes the wrong way.

    In 1D, integrating by parts, ``E_p f - E_q f = int f'(x) (F_q(x) - F_p(x)) dx`` and
    ``W1 = int |F_q(x) - F_p(x)| dx`` (``F``: the CDFs). So the gap is at most ``lipschitz * w1``
    (the Kantorovich-Rubinstein bound, up to the grid), with equality when ``f'`` is
    ``lipschitz * sign(F_q - F_p)`` everywhere. ``misoriented`` is the fraction of
    ``int |F_q - F_p| dx`` where ``f' (F_q - F_p) < 0``; a critic with ``|f'| = 1`` has gap
    ``W1 (1 - 2 misoriented)``. Returns arrays ``step``, ``critic``, ``w1``, ``lipschitz``, ``misoriented``.
    """
    gan = config if isinstance(config, ToyGAN) else ToyGAN(config)
    if gan.config.loss != "wgan":
        raise ValueError(f"wgan_tracking needs loss='wgan', got {gan.config.loss!r}")
    if gan.dim != 1:
        raise ValueError(f"wgan_tracking needs a 1D dataset, got {gan.config.data!r} in {gan.dim}D")
    every = _check_int("every", every)
    n_eval = _check_int("n_eval", n_eval)
    grid = _check_int("grid", grid, low=2)
    rec: dict[str, list] = {"step": [], "critic": [], "w1": [], "lipschitz": [], "misoriented": []}

    def record(g: ToyGAN) -> None:
        rng = np.random.default_rng([seed, g.step])
        real = g.dataset.sample(n_eval, rng)[:, 0]  # (n_eval,)
        fake = g.sample(n_eval, seed=int(rng.integers(2**31)), raw=True)[:, 0]  # (n_eval,)
        both = np.concatenate([real, fake])
        f = g.D.forward((both[:, None] / g.scale).astype(g.dtype))[:, 0].astype(np.float64)  # (2 n_eval,)
        # cells of a grid over the samples' range; at their midpoints the critic's slope and F_q - F_p
        edges = np.linspace(both.min(), both.max(), grid + 1)
        mid, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)  # (grid,) each
        g.D.forward((mid[:, None] / g.scale).astype(g.dtype))
        slope = g.D.input_grad()[:, 0].astype(np.float64)  # d/dx [scale f(x / scale)] = f'(x / scale)
        cdf_gap = (np.searchsorted(np.sort(fake), mid) - np.searchsorted(np.sort(real), mid)) / n_eval
        mass = np.abs(cdf_gap) * width  # where the transport happens: its sum is W1 up to the grid
        rec["step"].append(g.step)
        rec["critic"].append(float(g.scale * (f[:n_eval].mean() - f[n_eval:].mean())))
        rec["w1"].append(wasserstein_1d(fake, real))
        rec["lipschitz"].append(float(np.abs(slope).max()))
        rec["misoriented"].append(float(mass[slope * cdf_gap < 0].sum() / mass.sum()) if mass.sum() > 0 else 0.0)

    record(gan)
    gan.train(callbacks=[record], callback_every=every, progress=False)
    return {k: np.asarray(v) for k, v in rec.items()}
