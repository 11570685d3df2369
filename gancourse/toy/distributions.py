"""Seeded 1D and 2D toy distributions for GAN experiments.

Every distribution is a small frozen dataclass with the same interface:

- ``sample(n, rng_or_seed) -> (n, dim)`` float64 array, deterministic for a given seed;
- ``density(x)`` / ``log_density(x)`` for ``x`` of shape ``(n, dim)`` -> ``(n,)`` where a
  closed form exists (otherwise ``NotImplementedError``);
- ``dim``, ``name`` and ``natural_scale()``: the extent of the data, the one rule behind the
  trainer's data scale (it trains on ``x / natural_scale() * 2``, about ``[-2, 2]``).

Gaussian mixtures (``mixture1d``, ``ring8``, ``grid25``) also expose ``centers`` (K, dim)
and ``std``. ``ring8`` and ``grid25`` follow PacGAN (Lin et al. 2018) and VEEGAN
(Srivastava et al. 2017): 8 modes on the unit circle with std 0.01, and a 5x5 grid of
modes at {-4, -2, 0, 2, 4}^2 with std 0.05, all equally weighted.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import logsumexp

from gancourse.errors import check_array, check_choice, check_positive
from gancourse.rng import RngLike, make_rng

__all__ = [
    "ToyDistribution",
    "GaussianMixture",
    "Gaussian1D",
    "Mixture1D",
    "Ring8",
    "Grid25",
    "SwissRoll",
    "TwoMoons",
    "Spiral",
    "Checkerboard",
    "DATASETS",
    "get_dataset",
]


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n (number of samples) must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n (number of samples) must be a positive integer, got {n}")
    return int(n)


def _as_points(x: Any, dim: int, name: str = "x") -> np.ndarray:
    """Return ``x`` as a finite float64 (N, dim) array; (N,) is accepted when dim == 1."""
    arr = check_array(name, x, dtype=np.float64)
    if dim == 1 and arr.ndim == 1:
        arr = arr[:, None]  # (N,) -> (N, 1)
    return check_array(name, arr, shape=(None, dim), finite=True)


class ToyDistribution(ABC):
    """Common interface of the toy distributions (see the module docstring)."""

    name: ClassVar[str]
    dim: ClassVar[int]

    @abstractmethod
    def sample(self, n: int, rng_or_seed: RngLike) -> np.ndarray:
        """Draw ``n`` points, shape (n, dim), float64."""

    def natural_scale(self) -> float:
        """The extent of the data: the largest |coordinate| of a mode centre for a Gaussian mixture, else the
        99th percentile of |coordinates| of 4,096 samples drawn with seed 0 (so it is deterministic).

        The modes, not their tails, set a mixture's extent: ``grid25`` has extent 4, ``ring8`` 1. The toy
        trainer divides the data by half of it (``ToyGAN.scale``), so that it trains on about ``[-2, 2]``.
        """
        centers = getattr(self, "centers", None)
        if centers is not None:
            extent = float(np.abs(np.asarray(centers)).max())
        else:
            extent = float(np.quantile(np.abs(self.sample(4096, np.random.default_rng(0))), 0.99))
        return max(extent, 1e-12)

    def log_density(self, x: Any) -> np.ndarray:
        """Log-density at ``x`` (N, dim) -> (N,)."""
        raise NotImplementedError(
            f"the {self.name} distribution has no closed-form density; compare samples with "
            "gancourse.toy.metrics.energy_distance or sliced_wasserstein1 instead"
        )

    def density(self, x: Any) -> np.ndarray:
        """Density at ``x`` (N, dim) -> (N,)."""
        return np.exp(self.log_density(x))


class GaussianMixture(ToyDistribution):
    """Isotropic Gaussian mixture ``p(x) = sum_k w_k N(x; c_k, s_k^2 I)``.

    Subclasses provide ``centers`` (K, dim), ``component_stds`` (K,) and ``component_weights`` (K,).
    """

    @property
    @abstractmethod
    def centers(self) -> np.ndarray:
        """Mode centres, shape (K, dim)."""

    @property
    @abstractmethod
    def component_stds(self) -> np.ndarray:
        """Per-component standard deviations, shape (K,)."""

    @property
    @abstractmethod
    def component_weights(self) -> np.ndarray:
        """Mixing weights, shape (K,), summing to 1."""

    def sample(self, n: int, rng_or_seed: RngLike) -> np.ndarray:
        n, rng = _check_n(n), make_rng(rng_or_seed)
        c, s, w = self.centers, self.component_stds, self.component_weights
        k = rng.choice(len(w), size=n, p=w)  # (n,) component labels
        return c[k] + s[k, None] * rng.standard_normal((n, self.dim))  # (n, dim)

    def log_density(self, x: Any) -> np.ndarray:
        x = _as_points(x, self.dim)
        c, s, w = self.centers, self.component_stds, self.component_weights
        sq = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)  # (N, 1, d) - (1, K, d) -> (N, K)
        log_norm = -0.5 * self.dim * np.log(2 * np.pi * s**2)  # (K,)
        with np.errstate(divide="ignore"):  # a zero weight gives log w = -inf, which is fine
            log_w = np.log(w)
        return logsumexp(log_w + log_norm - 0.5 * sq / s**2, axis=1)  # (N,)


@dataclass(frozen=True)
class Gaussian1D(ToyDistribution):
    """1D Gaussian ``N(mean, std^2)``."""

    name: ClassVar[str] = "gaussian"
    dim: ClassVar[int] = 1
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.mean, (int, float, np.integer, np.floating)) or not np.isfinite(self.mean):
            raise ValueError(f"mean must be a finite number, got {self.mean!r}")
        check_positive("std", self.std)

    def sample(self, n: int, rng_or_seed: RngLike) -> np.ndarray:
        n, rng = _check_n(n), make_rng(rng_or_seed)
        return self.mean + self.std * rng.standard_normal((n, 1))  # (n, 1)

    def log_density(self, x: Any) -> np.ndarray:
        x = _as_points(x, 1)[:, 0]  # (N,)
        return -0.5 * ((x - self.mean) / self.std) ** 2 - np.log(self.std * np.sqrt(2 * np.pi))


@dataclass(frozen=True)
class Mixture1D(GaussianMixture):
    """1D Gaussian mixture; default ``0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2)``.

    ``stds`` may be one number (shared); ``weights=None`` means equal weights; weights are
    normalised to sum to 1. ``std`` is a float when all stds are equal, else a (K,) array.
    """

    name: ClassVar[str] = "mixture1d"
    dim: ClassVar[int] = 1
    means: tuple[float, ...] = (-2.0, 2.0)
    stds: float | tuple[float, ...] = 0.5
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        means = tuple(float(m) for m in np.ravel(self.means))
        if not means or not np.all(np.isfinite(means)):
            raise ValueError(f"means must be a non-empty sequence of finite numbers, got {self.means!r}")
        k = len(means)
        stds = np.broadcast_to(np.asarray(self.stds, dtype=float), (k,)) if np.ndim(self.stds) == 0 \
            else np.asarray(self.stds, dtype=float)
        if stds.shape != (k,):
            raise ValueError(f"stds must be one number or have shape ({k},) like means, got shape {stds.shape}")
        for s in stds:
            check_positive("stds", float(s))
        w = np.full(k, 1.0 / k) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (k,):
            raise ValueError(f"weights must have shape ({k},) like means, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be finite, non-negative and not all zero, got {self.weights!r}")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "stds", tuple(float(s) for s in stds))
        object.__setattr__(self, "weights", tuple(float(v) for v in w / w.sum()))

    @property
    def centers(self) -> np.ndarray:
        return np.array(self.means)[:, None]  # (K, 1)

    @property
    def component_stds(self) -> np.ndarray:
        return np.array(self.stds)

    @property
    def component_weights(self) -> np.ndarray:
        return np.array(self.weights)

    @property
    def std(self) -> float | np.ndarray:
        s = self.component_stds
        return float(s[0]) if np.all(s == s[0]) else s


@dataclass(frozen=True)
class Ring8(GaussianMixture):
    """8 equal-weight Gaussians at ``radius (cos 2pi k/8, sin 2pi k/8)``, std 0.01 (PacGAN/VEEGAN)."""

    name: ClassVar[str] = "ring8"
    dim: ClassVar[int] = 2
    std: float = 0.01
    radius: float = 1.0

    def __post_init__(self) -> None:
        check_positive("std", self.std)
        check_positive("radius", self.radius)

    @property
    def centers(self) -> np.ndarray:
        a = 2 * np.pi * np.arange(8) / 8
        return self.radius * np.stack([np.cos(a), np.sin(a)], axis=1)  # (8, 2)

    @property
    def component_stds(self) -> np.ndarray:
        return np.full(8, float(self.std))

    @property
    def component_weights(self) -> np.ndarray:
        return np.full(8, 1.0 / 8)


@dataclass(frozen=True)
class Grid25(GaussianMixture):
    """25 equal-weight Gaussians at ``{-2, -1, 0, 1, 2}^2 * spacing`` (default spacing 2), std 0.05.

    Centres are ordered row-major: ``centers[5 * i + j] = spacing * (i - 2, j - 2)``.
    """

    name: ClassVar[str] = "grid25"
    dim: ClassVar[int] = 2
    std: float = 0.05
    spacing: float = 2.0

    def __post_init__(self) -> None:
        check_positive("std", self.std)
        check_positive("spacing", self.spacing)

    @property
    def centers(self) -> np.ndarray:
        g = self.spacing * np.arange(-2, 3, dtype=float)
        gx, gy = np.meshgrid(g, g, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1)  # (25, 2)

    @property
    def component_stds(self) -> np.ndarray:
        return np.full(25, float(self.std))

    @property
    def component_weights(self) -> np.ndarray:
        return np.full(25, 1.0 / 25)


@dataclass(frozen=True)
class SwissRoll(ToyDistribution):
    """2D Swiss roll: ``t ~ U(1.5pi, 4.5pi)``, ``x = t (cos t, sin t) / 7.5 + noise * N(0, I)``.

    The curve of scikit-learn's ``make_swiss_roll`` (first and third coordinates), scaled by
    1/7.5 as in the WGAN-GP toy experiments (Gulrajani et al. 2017); radius at most 4.5pi/7.5 = 1.88.
    """

    name: ClassVar[str] = "swiss_roll"
    dim: ClassVar[int] = 2
    noise: float = 0.03

    def __post_init__(self) -> None:
        check_positive("noise", self.noise, allow_zero=True)

    def sample(self, n: int, rng_or_seed: RngLike) -> np.ndarray:
        n, rng = _check_n(n), make_rng(rng_or_seed)
        t = 1.5 * np.pi * (1 + 2 * rng.random(n))  # (n,)
        x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 7.5  # (n, 2)
        return x + self.noise * rng.standard_normal((n, 2))


@dataclass(frozen=True)
class TwoMoons(ToyDistribution):
    """Two interleaved half circles (scikit-learn's ``make_moons``), centred at the origin.

    ``theta ~ U(0, pi)``; upper moon ``(cos theta, sin theta)``, lower moon
    ``(1 - cos theta, 0.5 - sin theta)``, each with probability 1/2; then shifted by
    ``-(0.5, 0.25)`` and perturbed by ``noise * N(0, I)``. Range about [-1.5, 1.5] x [-0.75, 0.75].
    """

    name: ClassVar[str] = "two_moons"
    dim: ClassVar[int] = 2
    noise: float = 0.05

    def __post_init__(self) -> None:
        check_positive("noise", self.noise, allow_zero=True)

    def sample(self, n: int, rng_or_seed: RngLike) -> np.ndarray:
        n, rng = _check_n(n), make_rng(rng_or_seed)
        theta = np.pi * rng.random(n)  # (n,)
        lower = rng.random(n) < 0.5  # (n,)
        x = np.where(lower, 1 - np.cos(theta), np.cos(theta))
        y = np.where(lower, 0.5 - np.sin(theta), np.sin(theta))
        pts = np.stack([x - 0.5, y - 0.25], axis=1)  # (n, 2)
        return pts + self.noise * rng.standard_normal((n, 2))


@dataclass(frozen=True)
class Spiral(ToyDistribution):
    """Two-armed Archimedean spiral with ``turns`` turns out to ``radius``.

    ``t = 2 pi turns sqrt(u)``, ``u ~ U(0, 1)`` (so points spread evenly along the arm),
    ``r = radius t / (2 pi turns)``, ``x = s r (cos t, sin t) + noise * N(0, I)`` with arm
    sign ``s = +-1`` equally likely. Default range about [-2, 2]^2.
    """

    name: ClassVar[str] = "spiral"
    dim: ClassVar[int] = 2
    turns: float = 1.5
    radius: float = 2.0
    noise: float = 0.05

    def __post_init__(self) -> None:
        check_positive("turns", self.turns)
        check_positive("radius", self.radius)
        check_positive("noise", self.noise, allow_zero=True)

    def sample(self, n: int, rng_or_seed: RngLike) -> np.ndarray:
        n, rng = _check_n(n), make_rng(rng_or_seed)
        t_max = 2 * np.pi * self.turns
        t = t_max * np.sqrt(rng.random(n))  # (n,)
        arm = np.where(rng.random(n) < 0.5, 1.0, -1.0)  # (n,)
        r = arm * self.radius * t / t_max
        pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)  # (n, 2)
        return pts + self.noise * rng.standard_normal((n, 2))


@dataclass(frozen=True)
class Checkerboard(ToyDistribution):
    """Uniform on the black squares of an ``n_squares x n_squares`` board of square side ``side``.

    The board covers ``[-L, L)^2`` with ``L = n_squares side / 2`` (default [-2, 2)^2, 4x4 squares
    of side 1); square ``(i, j)`` (column i, row j from the lower-left corner) is black when
    ``i + j`` is even. Density ``1 / (B side^2)`` on the B black squares, 0 elsewhere.
    """

    name: ClassVar[str] = "checkerboard"
    dim: ClassVar[int] = 2
    n_squares: int = 4
    side: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.n_squares, bool) or not isinstance(self.n_squares, (int, np.integer)) \
                or self.n_squares < 1:
            raise ValueError(f"n_squares must be a positive integer, got {self.n_squares!r}")
        check_positive("side", self.side)

    def _black(self) -> np.ndarray:
        ij = np.indices((self.n_squares, self.n_squares)).reshape(2, -1).T  # (n^2, 2)
        return ij[ij.sum(1) % 2 == 0]  # (B, 2)

    def sample(self, n: int, rng_or_seed: RngLike) -> np.ndarray:
        n, rng = _check_n(n), make_rng(rng_or_seed)
        black = self._black()
        sq = black[rng.integers(len(black), size=n)]  # (n, 2) square indices
        half = self.n_squares * self.side / 2
        return -half + (sq + rng.random((n, 2))) * self.side  # (n, 2)

    def density(self, x: Any) -> np.ndarray:
        x = _as_points(x, 2)
        half = self.n_squares * self.side / 2
        ij = np.floor((x + half) / self.side)  # (N, 2) square indices
        black = np.all((ij >= 0) & (ij < self.n_squares), axis=1) & (ij.sum(1) % 2 == 0)  # (N,)
        return np.where(black, 1.0 / (len(self._black()) * self.side**2), 0.0)

    def log_density(self, x: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.density(x))  # -inf off the black squares


DATASETS: dict[str, type[ToyDistribution]] = {
    cls.name: cls
    for cls in (Gaussian1D, Mixture1D, Ring8, Grid25, SwissRoll, TwoMoons, Spiral, Checkerboard)
}


def get_dataset(name: str, **kwargs: Any) -> ToyDistribution:
    """Build the toy distribution registered as ``name`` (see ``DATASETS``) with ``kwargs``.

    >>> get_dataset("ring8").centers.shape
    (8, 2)
    """
    cls = DATASETS[check_choice("dataset", name, DATASETS)]
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"{name} got unexpected option(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(map(repr, allowed)) or 'no options'}"
        )
    return cls(**kwargs)
