"""Optimizers with one interface: ``opt.step(params, grads)`` updates arrays in place.

``params`` and ``grads`` are dicts of arrays with matching keys; state (moments,
velocities) is kept per key. ``state_dict``/``load_state_dict`` make runs resumable.
Also here: WGAN weight clipping and an exponential moving average of weights.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gancourse.errors import check_choice, check_positive, check_positive_int

__all__ = ["Optimizer", "SGD", "Adam", "RMSProp", "OPTIMIZERS", "make_optimizer", "clip_weights", "EMA"]


class Optimizer:
    """Base class: subclasses implement ``_update(key, p, g)``."""

    def __init__(self, lr: float):
        self.lr = check_positive("lr", lr)
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._work: dict[str, np.ndarray] = {}  # scratch arrays, not part of the state

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        if params.keys() != grads.keys():
            raise ValueError(f"params and grads must have the same keys, got {sorted(params)} and {sorted(grads)}")
        self.t += 1
        for k, p in params.items():
            g = grads[k]
            if g.shape != p.shape:
                raise ValueError(f"grads[{k!r}] has shape {g.shape}, params[{k!r}] has shape {p.shape}")
            self._update(k, p, g)

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def _buf(self, key: str, name: str, like: np.ndarray) -> np.ndarray:
        slot = self.state.setdefault(key, {})
        if name not in slot:
            slot[name] = np.zeros_like(like)
        return slot[name]

    def _scratch(self, key: str, like: np.ndarray) -> np.ndarray:
        """A work array per parameter (not part of the state): updates then allocate nothing."""
        buf = self._work.get(key)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self._work[key] = np.empty_like(like)
        return buf

    def state_dict(self) -> dict:
        return {"t": self.t, "lr": self.lr, "state": {k: {n: a.copy() for n, a in s.items()} for k, s in self.state.items()}}

    def load_state_dict(self, sd: Mapping) -> None:
        """Restore ``t`` (an integer >= 0), ``lr`` and the per-parameter state.

        ``lr`` must be a finite number >= 0 (0 is where a linear decay to ``lr_final = 0`` ends).
        """
        t = check_positive_int("state_dict['t']", sd["t"], minimum=0)
        self.lr, self.t = check_positive("state_dict['lr']", sd["lr"], allow_zero=True), t
        self.state = {k: {n: np.array(a) for n, a in s.items()} for k, s in sd["state"].items()}


class SGD(Optimizer):
    """Gradient descent with (heavy-ball) momentum: ``v <- beta v - lr g``, ``p <- p + v``.

    ``momentum`` may be negative (negative momentum, Gidel et al. 2019); 0 is plain GD.
    """

    def __init__(self, lr: float = 1e-2, momentum: float = 0.0):
        super().__init__(lr)
        if not -1.0 < momentum < 1.0:
            raise ValueError(f"momentum must be in (-1, 1), got {momentum}")
        self.momentum = float(momentum)

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.momentum == 0.0:
            p -= self.lr * g
            return
        v = self._buf(key, "v", p)
        v *= self.momentum
        v -= self.lr * g
        p += v


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
    ``p <- p - lr * mhat / (sqrt(vhat) + eps)`` with bias-corrected ``mhat, vhat``.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), check_positive("eps", eps)

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        m, v = self._buf(key, "m", p), self._buf(key, "v", p)
        tmp = self._scratch(key, p)
        b1, b2 = self.beta1, self.beta2
        m *= b1
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        # p -= lr * mhat / (sqrt(vhat) + eps), with the bias corrections folded into scalars
        c2 = np.sqrt(1 - b2**self.t)
        np.sqrt(v, out=tmp)
        tmp += self.eps * c2
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * c2 / (1 - b1**self.t)
        p -= tmp


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton 2012): ``s <- a s + (1-a) g^2``, ``p <- p - lr g / (sqrt(s) + eps)``."""

    def __init__(self, lr: float = 1e-3, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(lr)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        self.alpha, self.eps = float(alpha), check_positive("eps", eps)

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        s = self._buf(key, "s", p)
        s *= self.alpha
        s += (1 - self.alpha) * (g * g)
        p -= self.lr * g / (np.sqrt(s) + self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "adam": Adam, "rmsprop": RMSProp}


def make_optimizer(name: str, lr: float, **kwargs) -> Optimizer:
    """Build an optimizer by name: ``sgd``, ``momentum`` (SGD with momentum), ``adam`` or ``rmsprop``."""
    check_choice("optimizer", name, OPTIMIZERS)
    return OPTIMIZERS[name](lr, **kwargs)


def clip_weights(params: Mapping[str, np.ndarray], c: float) -> None:
    """Clip every parameter into [-c, c] in place (the original WGAN's Lipschitz constraint)."""
    check_positive("clip value", c)
    for p in params.values():
        np.clip(p, -c, c, out=p)


class EMA:
    """Exponential moving average of parameters: ``avg <- beta avg + (1 - beta) p``.

    With ``warmup=True`` the decay starts small, ``beta_t = min(beta, (1 + t) / (10 + t))``,
    so the average forgets the random initial weights quickly (averaging a
    generator from step 0 with a large beta drags it back towards its start).
    """

    def __init__(self, params: Mapping[str, np.ndarray], beta: float = 0.999, warmup: bool = True):
        if not 0.0 < beta < 1.0:
            raise ValueError(f"EMA beta must be in (0, 1), got {beta}")
        self.beta, self.warmup, self.t = float(beta), bool(warmup), 0
        self.avg = {k: np.array(v, copy=True) for k, v in params.items()}
        self._work = {k: np.empty_like(v) for k, v in self.avg.items()}

    def update(self, params: Mapping[str, np.ndarray]) -> None:
        self.t += 1
        beta = min(self.beta, (1 + self.t) / (10 + self.t)) if self.warmup else self.beta
        for k, p in params.items():
            a, tmp = self.avg[k], self._work[k]
            a *= beta
            np.multiply(p, 1 - beta, out=tmp)
            a += tmp

    def state_dict(self) -> dict:
        return {"t": self.t, "avg": {k: v.copy() for k, v in self.avg.items()}}

    def load_state_dict(self, sd: Mapping) -> None:
        self.t = int(sd["t"])
        self.avg = {k: np.array(v) for k, v in sd["avg"].items()}
        self._work = {k: np.empty_like(v) for k, v in self.avg.items()}
