"""The NumPy GAN trainer for 1D/2D toy distributions.

One iteration (Goodfellow et al. 2014, Algorithm 1): ``n_critic`` discriminator
steps, then one generator step. Each discriminator step runs one forward pass
on ``[real; fake (; interpolates)]``, one backward pass for the loss and, with
a gradient penalty, one double-backprop pass for the penalty on its rows.

Runs are bit-identical for a given config: all randomness comes from one
``numpy.random.Generator`` whose state is part of the checkpoint, so a resumed
run continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from gancourse.errors import CheckpointError, TrainingDiverged, check_array, check_positive_int
from gancourse.nn import (
    EMA,
    MLP,
    PENALTY_POINTS,
    HistoricalAverage,
    clip_weights,
    d_loss_bce,
    feature_matching_loss,
    get_loss,
    instance_noise_std,
    interpolate,
    make_optimizer,
    penalty_from_grad,
    sigmoid,
)
from gancourse.tiers import smoke_mode
from gancourse.toy.checkpoint import load_checkpoint, save_checkpoint
from gancourse.toy.config import ToyConfig, check_memory
from gancourse.toy.distributions import get_dataset
from gancourse.toy.metrics import toy_metrics

__all__ = ["ToyGAN", "Callback", "smoke_mode"]

Callback = Callable[["ToyGAN"], None]

#: the entries of a checkpoint (:meth:`ToyGAN.state_dict`), restored in this order
_STATE_KEYS = ("config", "step", "G", "D", "opt_g", "opt_d", "ema", "hist_g", "hist_d", "rng", "history",
               "last_finite", "last_penalty")


def _tree(value, what: str) -> dict:
    """``value`` if it is a dict, else a TypeError saying what was expected."""
    if not isinstance(value, dict):
        raise TypeError(f"expected {what}, got {type(value).__name__} {value!r:.60}")
    return value


def _check_like(name: str, arrays, param: np.ndarray, key: str) -> None:
    """Every array in the dict ``arrays`` must be a float array shaped like the parameter vector ``param``."""
    if key != "theta":
        raise ValueError(f"{name}: unknown parameter {key!r}; the networks have one parameter vector 'theta'")
    for k, a in _tree(arrays, "a dict of arrays").items():
        if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.floating) or a.shape != param.shape:
            got = f"shape {a.shape}, dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            raise ValueError(f"{name}[{k!r}] has {got}, expected shape {param.shape} of floats")


class ToyGAN:
    """A generator and a discriminator MLP trained on a toy distribution.

    >>> gan = ToyGAN(ToyConfig(data="ring8", steps=200))
    >>> history = gan.train(progress=False)
    >>> gan.sample(5).shape
    (5, 2)
    """

    def __init__(self, config: ToyConfig | None = None, **overrides):
        cfg = config if config is not None else ToyConfig()
        if overrides:
            cfg = cfg.replace(**overrides)
        self.config = cfg
        self.dataset = get_dataset(cfg.data)
        check_memory(cfg)  # refuse absurd sizes up front, not with a MemoryError from deep inside NumPy
        self.dim = int(self.dataset.dim)
        self.dtype = np.dtype(cfg.dtype)
        # training coordinates: the data's extent (see ToyDistribution.natural_scale) maps to about 2
        self.scale = cfg.data_scale or self.dataset.natural_scale() / 2.0
        self.rng = np.random.default_rng(cfg.seed)
        init_rng = np.random.default_rng([cfg.seed, 1])
        self.G = MLP([cfg.z_dim, *cfg.g_hidden, self.dim], cfg.g_activation, None, self.dtype, init=cfg.init, seed=init_rng)
        self.D = MLP(
            [self.dim, *cfg.d_hidden, 1], cfg.d_activation, None, self.dtype, init=cfg.init, seed=init_rng,
            spectral_norm=cfg.spectral_norm,
            minibatch_discrimination=(cfg.minibatch_discrimination, 4) if cfg.minibatch_discrimination else None,
        )
        self.loss = get_loss(cfg.loss)
        extra = {"momentum": cfg.momentum} if cfg.optimizer in ("sgd", "momentum") else {}
        if cfg.optimizer == "adam":
            extra = {"beta1": cfg.beta1, "beta2": cfg.beta2}
        self.opt_g = make_optimizer(cfg.optimizer, cfg.lr_g, **extra)
        self.opt_d = make_optimizer(cfg.optimizer, cfg.lr_d, **extra)
        self.ema = EMA(self._flat(self.G), beta=cfg.ema, warmup=True) if cfg.ema > 0 else None
        self.hist_g = HistoricalAverage(self._flat(self.G), cfg.historical_averaging) if cfg.historical_averaging else None
        self.hist_d = HistoricalAverage(self._flat(self.D), cfg.historical_averaging) if cfg.historical_averaging else None
        self.step = 0
        self.history: dict[str, list] = {"step": [], "d_loss": [], "g_loss": [], "penalty": [], "eval": []}
        self._last_finite: dict[str, float] = {}
        self._fake: np.ndarray | None = None
        self._penalty = 0.0  # the last penalty value computed (lazy regularization skips iterations)
        self._eval_G: MLP | None = None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _flat(net: MLP) -> dict[str, np.ndarray]:
        return {"theta": net.theta}

    def real_batch(self, n: int) -> np.ndarray:
        """``n`` data samples in training coordinates (divided by ``scale``)."""
        return (self.dataset.sample(n, self.rng) / self.scale).astype(self.dtype)

    def noise(self, n: int) -> np.ndarray:
        return self.rng.standard_normal((n, self.config.z_dim)).astype(self.dtype)

    def _lr_factor(self) -> float:
        cfg = self.config
        if cfg.lr_schedule == "constant":
            return 1.0
        frac = min(self.step / max(cfg.steps, 1), 1.0)
        return 1.0 - (1.0 - cfg.lr_final) * frac

    def _sigma(self) -> float:
        return instance_noise_std(self.config.instance_noise, self.step, self.config.steps)

    # -------------------------------------------------------------------- steps
    def d_step(self) -> tuple[float, float]:
        """One discriminator update; returns ``(loss, penalty)``."""
        cfg, D, B = self.config, self.D, self.config.batch_size
        real = self.real_batch(B)
        fake = self.G.forward(self.noise(B))
        self._fake = fake  # the generator step reuses this batch while G's forward cache is still valid
        sigma = self._sigma()
        if sigma > 0:
            real = real + (sigma * self.rng.standard_normal(real.shape)).astype(self.dtype)
            fake = fake + (sigma * self.rng.standard_normal(fake.shape)).astype(self.dtype)
        # lazy regularization (Karras et al. 2020): the penalty every k-th iteration, weighted by k
        regularize = cfg.penalty != "none" and self.step % cfg.penalty_every == 0
        parts, groups = [real, fake], [B, B]
        if regularize and PENALTY_POINTS[cfg.penalty] == "interpolates":
            parts.append(interpolate(real, fake, self.rng))
            groups.append(B)
        out = D.forward(np.concatenate(parts), groups=groups)  # (2B or 3B, 1)
        r, f = out[:B], out[B : 2 * B]
        if cfg.loss in ("gan", "ns"):
            loss, dr, df = d_loss_bce(r, f, cfg.label_smoothing)
        else:
            loss, dr, df = self.loss.d(r, f)
        dout = np.concatenate([dr, df] if len(out) == 2 * B else [dr, df, np.zeros_like(dr)])  # no loss on interpolates
        D.zero_grad()
        if not regularize:
            D.backward(dout)
        else:
            at = {"real": slice(0, B), "fake": slice(B, 2 * B), "real+fake": slice(0, 2 * B),
                  "interpolates": slice(2 * B, 3 * B)}
            g = D.input_grad(rows=at[PENALTY_POINTS[cfg.penalty]])  # (B, dim)
            value, dg = penalty_from_grad(cfg.penalty, g, cfg.gamma * cfg.penalty_every)
            self._penalty = value / cfg.penalty_every  # reported on the scale of gamma
            D.backward(dout, d_input_grad=dg)
        penalty = self._penalty
        if self.hist_d is not None:
            penalty += self.hist_d.penalty(self._flat(D), {"theta": D.dtheta})
            self.hist_d.update(self._flat(D))
        self.opt_d.step(self._flat(D), {"theta": D.dtheta})
        if cfg.weight_clip > 0:
            clip_weights(self._flat(D), cfg.weight_clip)
        return loss, penalty

    def g_step(self) -> float:
        """One generator update against the current (or unrolled) discriminator; returns its loss."""
        cfg, G, D, B = self.config, self.G, self.D, self.config.batch_size
        saved = None
        if cfg.unrolled_steps:
            # first-order unrolling (Metz et al. 2017): look k discriminator steps ahead, then restore
            saved = (D.state_dict(), self.opt_d.state_dict(), self.hist_d.state_dict() if self.hist_d else None)
            for _ in range(cfg.unrolled_steps):
                self.d_step()
        # reuse the last discriminator step's fake batch (as the DCGAN reference code does): G has not
        # changed since, so its forward cache is valid and one generator forward pass is saved
        fake = self._fake if self._fake is not None else G.forward(self.noise(B))
        self._fake = None
        x = fake
        sigma = self._sigma()
        if sigma > 0:
            x = fake + (sigma * self.rng.standard_normal(fake.shape)).astype(self.dtype)
        if cfg.feature_matching:
            k = D.feature_index()
            f_real = D.forward(self.real_batch(B), upto=k)
            f_fake = D.forward(x, upto=k)
            loss, df = feature_matching_loss(f_real, f_fake)
        else:
            real_logits = D.forward(self.real_batch(B)) if self.loss.needs_real_in_g else None
            loss, df = self.loss.g(D.forward(x), real_logits)
        dx = D.backward(df, param_grads=False)  # (B, dim)
        G.zero_grad()
        G.backward(dx)
        if self.hist_g is not None:
            loss += self.hist_g.penalty(self._flat(G), {"theta": G.dtheta})
            self.hist_g.update(self._flat(G))
        self.opt_g.step(self._flat(G), {"theta": G.dtheta})
        if self.ema is not None:
            self.ema.update(self._flat(G))
        if saved is not None:
            D.load_state_dict(saved[0])
            self.opt_d.load_state_dict(saved[1])
            if saved[2] is not None:
                self.hist_d.load_state_dict(saved[2])
        self._eval_G = None
        return loss

    def train_step(self) -> dict[str, float]:
        """``n_critic`` discriminator steps and one generator step; raises TrainingDiverged on NaN/inf."""
        factor = self._lr_factor()
        self.opt_d.lr = self.config.lr_d * factor
        self.opt_g.lr = self.config.lr_g * factor
        for _ in range(self.config.n_critic):
            d_loss, penalty = self.d_step()
        g_loss = self.g_step()
        self.step += 1
        losses = {"d_loss": d_loss, "g_loss": g_loss, "penalty": penalty}
        # a sum is NaN or inf as soon as one parameter is, and costs one pass instead of two
        if not all(math.isfinite(v) for v in losses.values()) or not (
            math.isfinite(self.G.theta.sum()) and math.isfinite(self.D.theta.sum())
        ):
            raise TrainingDiverged(self.step, self._last_finite)
        self._last_finite = losses
        return losses

    # -------------------------------------------------------------------- train
    def train(
        self,
        steps: int | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        callback_every: int = 100,
        progress: bool | None = None,
        log_every: int = 10,
    ) -> dict[str, list]:
        """Train up to ``steps`` total iterations (default: ``config.steps``); returns the history.

        ``callbacks`` are called every ``callback_every`` steps with the trainer
        (live plots). ``progress=None`` shows a tqdm bar except in smoke mode.
        Losses are recorded every ``log_every`` steps; metrics every
        ``config.eval_every`` steps (0: only at the end).
        """
        from tqdm.auto import tqdm

        target = self.config.steps if steps is None else check_positive_int("steps", steps, minimum=0)
        if target < self.step:
            raise ValueError(f"steps={target} is behind the current step {self.step}")
        for name, value in (("callback_every", callback_every), ("log_every", log_every)):
            check_positive_int(name, value)
        show = (not smoke_mode()) if progress is None else bool(progress)
        bar = tqdm(total=target, initial=self.step, desc=f"GAN {self.config.data}", disable=not show, leave=False,
                   mininterval=1.0)  # one refresh a second keeps logs short when output is not a terminal
        h, ev = self.history, self.config.eval_every
        # the toy networks' matrices are small: BLAS threads cost more in synchronisation than they save
        with threadpool_limits(limits=self.config.threads, user_api="blas"), bar:
            while self.step < target:
                losses = self.train_step()
                if self.step % log_every == 0:
                    h["step"].append(self.step)
                    for k, v in losses.items():
                        h[k].append(v)
                if ev and self.step % ev == 0:
                    h["eval"].append({"step": self.step, **self.evaluate()})
                if callbacks and self.step % callback_every == 0:
                    for cb in callbacks:
                        cb(self)
                bar.update(1)
                if show and self.step % 100 == 0:
                    bar.set_postfix(d=f"{losses['d_loss']:.3f}", g=f"{losses['g_loss']:.3f}", refresh=False)
        return h

    # --------------------------------------------------------------- inference
    @property
    def generator(self) -> MLP:
        """The generator used for sampling: the EMA average when EMA is on, else the raw one."""
        if self.ema is None:
            return self.G
        if self._eval_G is None:
            g = self.G.copy()
            g.theta[...] = self.ema.avg["theta"]
            self._eval_G = g
        return self._eval_G

    def sample(self, n: int, seed: int | None = None, *, raw: bool = False) -> np.ndarray:
        """``n`` generated samples in data coordinates, from the EMA generator unless ``raw``.

        Uses its own random stream (``seed``, default derived from the config's),
        so sampling never changes the course of training.
        """
        n = check_positive_int("n", n)
        rng = np.random.default_rng([self.config.seed, 2] if seed is None else seed)
        z = rng.standard_normal((n, self.config.z_dim)).astype(self.dtype)
        net = self.G if raw else self.generator
        return net.forward(z).astype(np.float64) * self.scale

    def discriminator(self, x: np.ndarray) -> np.ndarray:
        """``D(x)`` as a probability-like score: the sigmoid of the logit for the GAN losses, the raw output otherwise."""
        x = check_array("x", x, shape=(None, self.dim), finite=True)
        logits = self.D.forward((x / self.scale).astype(self.dtype))[:, 0].astype(np.float64)
        return sigmoid(logits) if self.config.loss in ("gan", "ns") else logits

    def evaluate(self, n: int | None = None) -> dict:
        """Toy metrics (modes / HQ / reverse KL, W1 or energy distance) on ``n_eval`` fresh samples."""
        return toy_metrics(self.dataset, self.sample(self.config.n_eval if n is None else n))

    # -------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "step": self.step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "hist_g": self.hist_g.state_dict() if self.hist_g else None,
            "hist_d": self.hist_d.state_dict() if self.hist_d else None,
            "rng": self.rng.bit_generator.state,
            "history": self.history,
            "last_finite": self._last_finite,
            "last_penalty": self._penalty,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write a checkpoint atomically (temporary file, then rename)."""
        return save_checkpoint(path, self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ToyGAN":
        """Rebuild a trainer from a checkpoint; ``train()`` then continues exactly where it stopped.

        Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (a ``ValueError``)
        for a file that is not a gancourse checkpoint or is damaged, naming the part that is wrong.
        """
        sd = load_checkpoint(path)
        missing = [k for k in _STATE_KEYS if k not in sd]
        if missing:
            raise CheckpointError(f"{path} is damaged: it has no {missing[0]!r} entry")
        try:
            if not isinstance(sd["config"], dict):
                raise TypeError(f"expected a dict of config fields, got {type(sd['config']).__name__}")
            config = ToyConfig.from_dict(sd["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} is damaged: config: {exc}") from None
        gan = cls(config)
        for name in _STATE_KEYS[1:]:
            try:
                gan._restore(name, sd[name])
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                detail = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
                raise CheckpointError(f"{path} is damaged: {name}: {detail}") from None
        return gan

    def _restore(self, name: str, value) -> None:
        """Load one entry of a checkpoint (see :meth:`state_dict`), checking its structure and shapes."""
        theta = {"G": self.G.theta, "D": self.D.theta}
        if name == "step":
            integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            if not integer or not 0 <= value <= self.config.steps:
                raise ValueError(f"expected an integer in [0, {self.config.steps}], got {value!r}")
            self.step = int(value)
        elif name in ("G", "D"):
            getattr(self, name).load_state_dict(_tree(value, "a dict of arrays"))
        elif name in ("opt_g", "opt_d"):
            value = _tree(value, "an optimizer state")
            state = _tree(value["state"], "a dict of per-parameter buffers")
            for key, buffers in state.items():
                _check_like(f"state[{key!r}]", buffers, theta[name[-1].upper()], key)
            getattr(self, name).load_state_dict(value)
        elif name in ("ema", "hist_g", "hist_d"):
            obj = getattr(self, name)
            if obj is None or value is None:
                if obj is not value:
                    field = "ema" if name == "ema" else "historical_averaging"
                    have = "no state" if value is None else "a state"
                    raise ValueError(f"the checkpoint has {have} for it, but its config has "
                                     f"{field}={getattr(self.config, field)}")
                return
            value = _tree(value, "a dict")
            arrays = value["avg" if name == "ema" else "mean"]
            _check_like("avg" if name == "ema" else "mean", arrays, theta["D" if name == "hist_d" else "G"], "theta")
            obj.load_state_dict(value)
        elif name == "rng":
            self.rng.bit_generator.state = _tree(value, "a bit-generator state")
        elif name == "history":
            value = _tree(value, "a dict of lists")
            for key in ("step", "d_loss", "g_loss", "penalty", "eval"):
                if not isinstance(value[key], list):
                    raise TypeError(f"{key!r} must be a list, got {type(value[key]).__name__}")
            self.history = value
        elif name == "last_finite":
            self._last_finite = {str(k): float(v) for k, v in _tree(value, "a dict of losses").items()}
        elif name == "last_penalty":
            self._penalty = float(value)

    def extend(self, steps: int, *, retime: bool = False) -> None:
        """Make ``steps`` the new planned total of a run whose schedule does not depend on it.

        A run with a linear learning-rate decay or annealed instance noise is planned for ``config.steps``
        (see ``ToyConfig.scheduled_over_steps``); changing its length makes a different run, so this raises
        a ``ValueError`` unless ``retime=True``, which re-times the schedule to the new total.
        """
        steps = check_positive_int("steps", steps)
        if steps < self.step:
            raise ValueError(f"cannot extend to {steps} steps: the run is already at step {self.step}")
        timed = self.config.scheduled_over_steps()
        if steps != self.config.steps and timed and not retime:
            raise ValueError(
                f"cannot change the length of this run from {self.config.steps} to {steps} steps: it is planned "
                f"for {self.config.steps} steps ({'; '.join(timed)}). Train a new run with steps={steps}, use "
                f"lr_schedule='constant' and instance_noise=0 for runs meant to be extended, or pass retime=True."
            )
        self.config = self.config.replace(steps=int(steps))

    def run(
        self, progress: bool | None = None, *, callbacks: Sequence[Callback] = (), callback_every: int = 100
    ) -> dict:
        """Train to ``config.steps`` and return the final metrics with ``steps`` and ``seconds``.

        ``callbacks`` and ``callback_every`` are passed to :meth:`train`.
        """
        t0 = time.perf_counter()
        self.train(progress=progress, callbacks=callbacks, callback_every=callback_every)
        metrics = self.evaluate()
        return {**metrics, "steps": self.step, "seconds": round(time.perf_counter() - t0, 2)}
