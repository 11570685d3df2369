"""The live 2D GAN lab's logic: a toy GAN trained frame by frame, and what each frame shows.

A frame is ``steps_per_frame`` training steps of the NumPy engine (:class:`gancourse.toy.ToyGAN`) and then a
picture of the game at that moment (:class:`LabFrame`):

- the discriminator on a grid over the data window: ``D(x) = sigmoid(logit)`` for the cross-entropy losses
  (``gan``, ``ns``), the critic's raw output ``f(x)`` for the others;
- a fixed sample of the data, and the generator's samples ``G(z_i)`` for fixed codes ``z_i`` (so that the points
  move smoothly from frame to frame);
- the generator's manifold: ``G`` on the square grid ``z = a u + b v``, ``a, b in [-3, 3]``, of a plane through 0
  of the latent space (``u, v`` orthonormal; for a 2D latent space the whole of it);
- the generator's gradient on its samples, ``-dL_G/dx`` at ``x = G(z_i)``: where its loss pushes each sample
  against the current D (a generator step moves the samples only through G's weights);
- the curves of the frames' mean losses (D, G, penalty) and of the metrics (``gancourse.toy.metrics.toy_metrics``:
  modes, HQ and reverse KL on the mixtures, energy distance and sliced W1 on the others).

The lab trains with a constant learning rate and no weight averaging (EMA): it shows the game itself. Changes of
the penalty, its weight, the learning rates, the D steps per G step and the steps per frame apply to the running
game (:data:`LIVE`); the others start a new run from step 0 (:data:`RESTART`), as does any change after a run
diverged.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from gancourse.errors import TrainingDiverged, check_positive, check_positive_int
from gancourse.nn import LOSSES, PENALTIES, feature_matching_loss, sigmoid
from gancourse.options import check_choices, option
from gancourse.toy.config import ToyConfig
from gancourse.toy.distributions import GaussianMixture, ToyDistribution, get_dataset
from gancourse.toy.drawn import DrawnPoints
from gancourse.toy.metrics import toy_metrics
from gancourse.toy.trainer import ToyGAN
from gancourse.toy.trick_table import TRICKS
from gancourse.viz.toy import data_extent, heatmap_grid

__all__ = [
    "LAB_DATA", "LAB_TRICKS", "LIVE", "RESTART", "CONTROLS", "DRAW_WINDOW", "LabSettings", "LabFrame",
    "LabSession", "CurveBuffer", "applicable_controls", "disabled_options", "lab_config", "make_lab_gan",
    "lab_window", "latent_plane", "generator_gradient", "discriminator_map", "BCE_LOSSES",
]

LAB_DATA = ("ring8", "grid25", "two_moons", "spiral", "drawn")
#: the lab's tricks: name -> the row of the table of tricks (lecture 5) whose config changes it makes
LAB_TRICKS: Mapping[str, str | None] = MappingProxyType({
    "none": None,
    "label smoothing": "one-sided label smoothing 0.9",
    "feature matching": "feature matching",
    "historical averaging": "historical averaging 1e-3",
    "instance noise": "instance noise 0.1",
    "unrolled D": "unrolled D (5 steps)",
    "spectral norm": "spectral norm in D",
})
#: the losses that read D's output as a probability (its logit through a sigmoid); label smoothing needs one
BCE_LOSSES = ("gan", "ns")
#: settings that change the running game at the next step
LIVE = ("penalty", "gamma", "lr_g", "lr_d", "n_critic", "steps_per_frame")
#: settings that start a new run
RESTART = ("data", "loss", "trick", "seed", "points")
#: the settings a front end offers as controls, in the order it shows them
CONTROLS = ("data", "points", "seed", "loss", "penalty", "gamma", "trick", "lr_g", "lr_d", "n_critic",
            "steps_per_frame")
#: drawn points live in [-DRAW_WINDOW, DRAW_WINDOW]^2 and are trained as they are (data_scale 1)
DRAW_WINDOW = 2.0
#: the planned length that anneals instance noise (the lab has no end; the learning rate is constant)
HORIZON = 20_000
#: config fields the lab sets itself, which ``sizes`` may not override
_OWN = ("data", "seed", "loss", "penalty", "gamma", "lr_g", "lr_d", "n_critic", "lr_schedule", "ema", "steps",
        "data_scale", *sorted({k for row in LAB_TRICKS.values() if row for k in TRICKS[row]}))


@dataclass(frozen=True)
class LabSettings:
    """One choice of the lab's controls (sizes of the networks are fixed per lab: :class:`LabSession`)."""

    data: str = option("ring8", "the data: a toy distribution, or points drawn on the canvas", choices=LAB_DATA)
    loss: str = option("ns", "the adversarial loss", choices=tuple(LOSSES))
    penalty: str = option("r1", "gradient penalty on D", choices=PENALTIES)
    gamma: float = option(0.1, "penalty weight (gamma of R1 / R2, lambda of WGAN-GP); > 0")
    lr_g: float = option(2e-3, "the generator's learning rate (Adam); > 0")
    lr_d: float = option(3e-3, "the discriminator's learning rate (Adam); > 0")
    n_critic: int = option(1, "discriminator steps per generator step")
    trick: str = option("none", "one trick of lecture 5", choices=tuple(LAB_TRICKS))
    seed: int = option(0, "the run's seed: initial weights, batches and the fixed codes")
    steps_per_frame: int = option(10, "training steps between two frames")
    points: tuple[tuple[float, float], ...] = option(DrawnPoints().points, "the drawn points, in [-2, 2]^2")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("gamma", "lr_g", "lr_d"):
            check_positive(name, getattr(self, name))
        check_positive_int("n_critic", self.n_critic)
        check_positive_int("steps_per_frame", self.steps_per_frame)
        check_positive_int("seed", self.seed, minimum=0)
        if self.trick == "label smoothing" and self.loss not in BCE_LOSSES:
            raise ValueError(f"the trick 'label smoothing' applies to the cross-entropy losses "
                             f"{' and '.join(BCE_LOSSES)}, not {self.loss!r}: choose another trick or loss")
        pts = DrawnPoints(tuple(self.points)).points  # validated: 1 to MAX_POINTS finite pairs
        outside = [p for p in pts if max(abs(p[0]), abs(p[1])) > DRAW_WINDOW]
        if outside:
            raise ValueError(f"drawn points must lie in [-{DRAW_WINDOW:g}, {DRAW_WINDOW:g}]^2, got {outside[0]}")
        object.__setattr__(self, "points", pts)
        for name in ("gamma", "lr_g", "lr_d"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LabSettings:
        """Settings from a mapping of field names (unknown names are refused with the valid ones)."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown lab settings {unknown}; valid ones are: {', '.join(names)}")
        values = dict(values)
        if "points" in values:
            values["points"] = tuple(tuple(p) for p in values["points"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists)."""
        return {f.name: [list(p) for p in self.points] if f.name == "points" else getattr(self, f.name)
                for f in fields(self)}


def applicable_controls(s: LabSettings) -> frozenset[str]:
    """The controls that the choice ``s`` reads: the penalty weight only with a penalty, the points only when
    the data is drawn."""
    on = set(CONTROLS) - {"gamma", "points"}
    if s.penalty != "none":
        on.add("gamma")
    if s.data == "drawn":
        on.add("points")
    return frozenset(on)


def disabled_options(s: LabSettings) -> dict[str, list[str]]:
    """Options of a select that cannot be combined with the rest of ``s`` (shown, not selectable)."""
    out: dict[str, list[str]] = {}
    if s.loss not in BCE_LOSSES:
        out["trick"] = ["label smoothing"]
    if s.trick == "label smoothing":
        out["loss"] = [name for name in LOSSES if name not in BCE_LOSSES]
    return out


def lab_config(s: LabSettings, **sizes: Any) -> ToyConfig:
    """The :class:`ToyConfig` of ``s``: its loss, penalty, learning rates and trick (the fields of its row in
    ``TRICKS``), a constant learning rate, no EMA, and ``sizes`` (network and batch sizes; default the recipe's).

    Drawn points train in their own coordinates (``data_scale = 1``); the config names ``grid25`` as their data,
    for its dimension only (:func:`make_lab_gan` puts the drawing in its place).
    """
    taken = sorted(set(sizes) & set(_OWN))
    if taken:
        raise ValueError(f"the lab sets {taken} itself (from its controls); pass only sizes such as batch_size, "
                         f"z_dim, g_hidden, d_hidden")
    trick = dict(TRICKS[LAB_TRICKS[s.trick]]) if LAB_TRICKS[s.trick] else {}
    drawn = s.data == "drawn"
    return ToyConfig(data="grid25" if drawn else s.data, seed=s.seed, loss=s.loss, penalty=s.penalty,
                     gamma=s.gamma, lr_g=s.lr_g, lr_d=s.lr_d, n_critic=s.n_critic, lr_schedule="constant", ema=0.0,
                     steps=HORIZON, data_scale=1.0 if drawn else 0.0, **trick, **sizes)


def lab_dataset(s: LabSettings) -> ToyDistribution:
    """The distribution the lab trains on: the named toy, or the drawing."""
    return DrawnPoints(s.points) if s.data == "drawn" else get_dataset(s.data)


def make_lab_gan(s: LabSettings, **sizes: Any) -> ToyGAN:
    """A fresh :class:`ToyGAN` for ``s`` (:func:`lab_config`), training on :func:`lab_dataset`."""
    gan = ToyGAN(lab_config(s, **sizes))
    if s.data == "drawn":
        gan.dataset = lab_dataset(s)  # same dimension as the config's placeholder; scale 1 (data_scale)
    return gan


def lab_window(s: LabSettings, dataset: ToyDistribution) -> float:
    """Half-width of the square the lab draws: the canvas of a drawing, else the data's extent (``data_extent``)."""
    return DRAW_WINDOW if s.data == "drawn" else float(data_extent(dataset))


def latent_plane(z_dim: int, n: int, lim: float = 3.0, seed: int = 0) -> np.ndarray:
    """Codes on the square grid ``z = a u + b v``, ``a, b in linspace(-lim, lim, n)``: shape (n, n, z_dim) with
    ``z[i, j] = a_j u + b_i v``. ``u, v`` are orthonormal (a random plane through 0 seeded by ``seed``, or the two
    axes when ``z_dim = 2``)."""
    z_dim, n = check_positive_int("z_dim", z_dim, minimum=2), check_positive_int("n", n, minimum=2)
    if z_dim == 2:
        basis = np.eye(2)
    else:
        basis, _ = np.linalg.qr(np.random.default_rng([seed, 5]).standard_normal((z_dim, 2)))  # (z_dim, 2)
        basis = basis.T  # (2, z_dim): rows u, v
    t = np.linspace(-lim, lim, n)
    return t[None, :, None] * basis[0] + t[:, None, None] * basis[1]  # (1, n, 1) * (z,) + (n, 1, 1) * (z,)


@contextmanager
def _eval_mode(net) -> Iterator[None]:
    """``net`` in eval mode (spectral norm's power iteration frozen), and back in training mode after."""
    net.eval()
    try:
        yield
    finally:
        net.train()


def discriminator_map(gan: ToyGAN, points: np.ndarray) -> np.ndarray:
    """D at ``points`` (N, 2) in data coordinates: ``sigmoid(logit)`` for the cross-entropy losses, the critic's
    raw output otherwise; (N,) float64. D is evaluated in eval mode, so drawing never changes training."""
    x = (np.asarray(points) / gan.scale).astype(gan.dtype)
    with _eval_mode(gan.D):
        out = gan.D.forward(x)[:, 0].astype(np.float64)
    return sigmoid(out) if gan.config.loss in BCE_LOSSES else out


def generator_gradient(gan: ToyGAN, fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """``-dL_G/dx`` at the generated points ``fake`` (N, 2), in data coordinates: (N, 2).

    ``L_G`` is the run's generator loss against the current D (feature matching when that trick is on), with
    ``real`` (N, 2) as the real batch where the loss reads one (RpGAN, feature matching). Instance noise and
    unrolling are left out: the arrows show the pull of the current D on each sample.
    """
    cfg, D = gan.config, gan.D
    x = (np.asarray(fake) / gan.scale).astype(gan.dtype)
    r = (np.asarray(real) / gan.scale).astype(gan.dtype)
    with _eval_mode(D):
        if cfg.feature_matching:
            k = D.feature_index()
            f_real = D.forward(r, upto=k)
            _, df = feature_matching_loss(f_real, D.forward(x, upto=k))
        else:
            real_logits = D.forward(r) if gan.loss.needs_real_in_g else None
            _, df = gan.loss.g(D.forward(x), real_logits)
        dx = D.backward(df, param_grads=False)  # (N, 2) in training coordinates
    return -dx.astype(np.float64) / gan.scale  # d/dx_data = (d/dx_train) / scale


class CurveBuffer:
    """Points ``(x, y_1, ..., y_k)`` of curves that grow without end, kept in fewer than ``2 * capacity`` rows:
    each row is the mean of ``stride`` consecutive points, and when the rows fill up, neighbouring rows are merged
    in pairs and the stride doubles (so the whole run stays in view at an even resolution)."""

    def __init__(self, names: tuple[str, ...], capacity: int = 256) -> None:
        self.names = tuple(names)
        self.capacity = check_positive_int("capacity", capacity)
        self.stride = 1
        self._rows: list[np.ndarray] = []
        self._sum = np.zeros(1 + len(self.names))
        self._count = 0

    def append(self, x: float, *ys: float) -> None:
        if len(ys) != len(self.names):
            raise ValueError(f"expected {len(self.names)} values ({', '.join(self.names)}), got {len(ys)}")
        self._sum += (x, *ys)
        self._count += 1
        if self._count < self.stride:
            return
        self._rows.append(self._sum / self._count)
        self._sum, self._count = np.zeros_like(self._sum), 0
        if len(self._rows) >= 2 * self.capacity:
            a = np.asarray(self._rows)  # (2c, 1 + k)
            self._rows = list(0.5 * (a[0::2] + a[1::2]))
            self.stride *= 2

    def __len__(self) -> int:
        return len(self._rows) + (self._count > 0)

    def arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(x (n,), {name: y (n,)})``, the points still being averaged included as the last row."""
        rows = self._rows + ([self._sum / self._count] if self._count else [])
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 1 + len(self.names))
        return a[:, 0], {name: a[:, 1 + k] for k, name in enumerate(self.names)}


#: the metric curves: name -> label; mixtures plot fractions in [0, 1] (reverse KL as a fraction of log K)
MIXTURE_METRICS = {"modes": "modes / K", "hq": "HQ", "reverse_kl": "reverse KL / log K"}
SAMPLE_METRICS = {"energy": "energy distance", "sliced_w1": "sliced W1"}


@dataclass(frozen=True)
class LabFrame:
    """Everything one frame of the lab draws (points in data coordinates)."""

    settings: LabSettings
    step: int
    frame: int
    window: float
    heat: np.ndarray  # (n, n): D on heatmap_grid(window, n), row i = y_i, column j = x_j
    heat_range: tuple[float, float]
    heat_label: str
    real: np.ndarray  # (N, 2)
    fake: np.ndarray  # (M, 2)
    arrows: np.ndarray  # (A, 2): -dL_G/dx at fake[:A], divided by the largest norm (0 where all vanish)
    arrow_norm: float  # that largest norm
    manifold: np.ndarray  # (m, m, 2): G on latent_plane
    centers: np.ndarray  # (K, 2) mode centres of a mixture, else (0, 2)
    curve_step: np.ndarray  # (c,)
    curves: dict[str, np.ndarray]  # d_loss, g_loss, penalty: each (c,)
    metric_step: np.ndarray  # (e,)
    metrics: dict[str, np.ndarray]  # name -> (e,), see MIXTURE_METRICS / SAMPLE_METRICS
    metric_labels: dict[str, str]
    last_metrics: dict[str, Any]
    diverged: str = ""
    controls: frozenset[str] = field(default_factory=frozenset)
    disabled: dict[str, list[str]] = field(default_factory=dict)


class LabSession:
    """A lab run: the settings, the GAN, its fixed codes and samples, and the curves so far.

    ``sizes`` fix the networks and batches for the whole lab (default: the recipe's, ``ToyConfig``'s defaults).
    """

    def __init__(self, settings: LabSettings | None = None, *, heat: int = 40, n_fake: int = 512,
                 n_arrows: int = 160, manifold: int = 17, metric_every: int = 10, **sizes: Any) -> None:
        self.settings = settings or LabSettings()
        self.heat_n = check_positive_int("heat", heat, minimum=2)
        self.n_fake = check_positive_int("n_fake", n_fake)
        self.n_arrows = min(check_positive_int("n_arrows", n_arrows, minimum=0), self.n_fake)
        self.manifold_n = check_positive_int("manifold", manifold, minimum=2)
        self.metric_every = check_positive_int("metric_every", metric_every)
        self.sizes = dict(sizes)
        lab_config(self.settings, **self.sizes)  # refuse bad sizes now, with the lab's message
        self._blas = ThreadpoolController()
        self.restart()

    # ----------------------------------------------------------------------------------- runs and settings
    def restart(self) -> None:
        """A new run of the current settings from step 0."""
        s = self.settings
        self.gan = make_lab_gan(s, **self.sizes)
        self.dataset = self.gan.dataset
        self.window = lab_window(s, self.dataset)
        _, _, self._heat_points = heatmap_grid(self.window, self.heat_n)  # (n*n, 2)
        z_dim = self.gan.config.z_dim
        rng = np.random.default_rng([s.seed, 3])
        self._z = rng.standard_normal((self.n_fake, z_dim)).astype(self.gan.dtype)  # fixed codes
        self.real = self.dataset.sample(self.n_fake, np.random.default_rng([s.seed, 4]))  # (N, 2)
        self._plane = latent_plane(z_dim, self.manifold_n, seed=s.seed).reshape(-1, z_dim).astype(self.gan.dtype)
        self.frames = 0
        self.diverged = ""
        self.losses = CurveBuffer(("d_loss", "g_loss", "penalty"))
        mixture = isinstance(self.dataset, GaussianMixture)
        self.metric_labels = dict(MIXTURE_METRICS if mixture else SAMPLE_METRICS)
        self.metric_curves = CurveBuffer(tuple(self.metric_labels))
        self.last_metrics: dict[str, Any] = {}
        self.measure()

    def update(self, changes: Mapping[str, Any]) -> str:
        """Apply ``changes`` of the settings: ``"live"`` (the running game changes at its next step), ``"restart"``
        (a new run), or ``"none"``. Invalid settings raise a ValueError or TypeError naming what is wrong, and
        change nothing."""
        new = LabSettings.from_mapping({**self.settings.to_dict(), **changes})
        changed = {f.name for f in fields(new) if getattr(new, f.name) != getattr(self.settings, f.name)}
        if not changed:
            return "none"
        if changed & set(RESTART) or self.diverged:
            lab_config(new, **self.sizes)  # validates before anything changes
            self.settings = new
            self.restart()
            return "restart"
        cfg = lab_config(new, **self.sizes)
        # every LIVE field is read from the config at each step (ToyGAN.train_step / d_step)
        self.gan.config = self.gan.config.replace(penalty=cfg.penalty, gamma=cfg.gamma, lr_g=cfg.lr_g,
                                                  lr_d=cfg.lr_d, n_critic=cfg.n_critic)
        self.settings = new
        return "live"

    # ------------------------------------------------------------------------------------------- training
    @property
    def step(self) -> int:
        return self.gan.step

    def advance(self, steps: int | None = None) -> int:
        """Train one frame: ``steps`` (default ``steps_per_frame``) iterations on the run's BLAS threads; records
        the frame's mean losses, and the metrics every ``metric_every`` frames. Returns the steps taken.

        A run that diverges keeps its message in ``diverged`` (and the TrainingDiverged propagates); it trains no
        further until a change or :meth:`restart` starts a new one."""
        if self.diverged:
            raise TrainingDiverged(self.gan.step, self.gan._last_finite)
        n = self.settings.steps_per_frame if steps is None else check_positive_int("steps", steps)
        total = np.zeros(3)
        try:
            with self._blas.limit(limits=self.gan.config.threads, user_api="blas"):
                for _ in range(n):
                    losses = self.gan.train_step()
                    total += (losses["d_loss"], losses["g_loss"], losses["penalty"])
        except TrainingDiverged as exc:
            self.diverged = f"{exc}; change a setting or press reset to start a new run"
            raise
        self.frames += 1
        self.losses.append(self.gan.step, *(total / n))
        if self.frames % self.metric_every == 0:
            self.measure()
        return n

    def measure(self) -> dict[str, Any]:
        """The metrics of the current generator (``toy_metrics`` on 2,500 samples of a mixture, 1,000 otherwise),
        recorded on the metric curves."""
        mixture = isinstance(self.dataset, GaussianMixture)
        with self._blas.limit(limits=self.gan.config.threads, user_api="blas"):
            m = toy_metrics(self.dataset, self.gan.sample(2500 if mixture else 1000))
        if mixture:
            k = len(self.dataset.centers)
            rkl = m["reverse_kl"] / math.log(k) if k > 1 and math.isfinite(m["reverse_kl"]) else math.nan
            self.metric_curves.append(self.gan.step, m["modes"] / k, m["hq"], rkl)
        else:
            self.metric_curves.append(self.gan.step, m["energy"], m["sliced_w1"])
        self.last_metrics = {k: v for k, v in m.items() if k != "counts"}
        if mixture:
            self.last_metrics["K"] = len(self.dataset.centers)
        return self.last_metrics

    # -------------------------------------------------------------------------------------------- drawing
    def frame(self) -> LabFrame:
        """The picture of the game now (:class:`LabFrame`)."""
        gan, s = self.gan, self.settings
        with np.errstate(all="ignore"), self._blas.limit(limits=gan.config.threads, user_api="blas"):
            heat = discriminator_map(gan, self._heat_points).reshape(self.heat_n, self.heat_n)
            fake = gan.G.forward(self._z).astype(np.float64) * gan.scale  # (M, 2)
            manifold = gan.G.forward(self._plane).astype(np.float64) * gan.scale
            grad = generator_gradient(gan, fake, self.real[: len(fake)])[: self.n_arrows]  # (A, 2)
        norm = float(np.max(np.linalg.norm(grad, axis=1), initial=0.0))
        arrows = grad / norm if norm > 0 and math.isfinite(norm) else np.zeros_like(grad)
        if gan.config.loss in BCE_LOSSES:
            heat_range, heat_label = (0.0, 1.0), "D(x)"
        else:
            finite = heat[np.isfinite(heat)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            heat_range, heat_label = (lo, hi if hi > lo else lo + 1.0), "critic f(x)"
        curve_step, curves = self.losses.arrays()
        metric_step, metrics = self.metric_curves.arrays()
        centers = np.asarray(self.dataset.centers) if isinstance(self.dataset, GaussianMixture) else np.zeros((0, 2))
        return LabFrame(
            settings=s, step=gan.step, frame=self.frames, window=self.window, heat=heat, heat_range=heat_range,
            heat_label=heat_label, real=self.real, fake=fake, arrows=arrows, arrow_norm=norm,
            manifold=manifold.reshape(self.manifold_n, self.manifold_n, 2), centers=centers,
            curve_step=curve_step, curves=curves, metric_step=metric_step, metrics=metrics,
            metric_labels=dict(self.metric_labels), last_metrics=dict(self.last_metrics), diverged=self.diverged,
            controls=applicable_controls(s), disabled=disabled_options(s),
        )
