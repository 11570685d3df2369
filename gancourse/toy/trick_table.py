"""The table of tricks (lecture 5): the plain GAN with one change per row, trained over seeds and summarised.

Each row of :data:`TRICKS` names the :class:`~gancourse.toy.config.ToyConfig` fields it changes with
respect to :func:`~gancourse.toy.config.plain_gan`; the last row, :data:`RECIPE_ROW`, is
:func:`~gancourse.toy.config.recommended`. :func:`trick_config` builds the config of one row,
:func:`train_and_evaluate` trains it (recording a divergence instead of raising it),
:func:`train_and_evaluate_all` trains many side by side in worker processes (:func:`gancourse.toy.sweep.sweep`),
:func:`summarize_runs` reduces the seeds of a row to means and standard deviations, and
:func:`summary_table`, :func:`comparison_rows` and :func:`describe_summary` put summaries into words.

>>> cfg = trick_config("hinge loss", "ring8", seed=1, sizes={"steps": 20})
>>> (cfg.loss, cfg.penalty, cfg.steps, cfg.seed)
('hinge', 'none', 20, 1)
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from gancourse.errors import TrainingDiverged, check_choice
from gancourse.toy.config import ToyConfig, plain_gan, recommended
from gancourse.toy.report import format_mean_std, mean_std
from gancourse.toy.sweep import SweepError, sweep
from gancourse.toy.trainer import ToyGAN

__all__ = [
    "TRICKS", "RECIPE_ROW", "ROWS", "trick_config", "trick_configs", "train_and_evaluate", "train_and_evaluate_all",
    "mean_std", "summarize_runs", "format_mean_std", "summary_table", "comparison_rows", "describe_summary",
]

_ROW_FIELDS: dict[str, dict[str, Any]] = {
    "plain NS GAN": {},
    "saturating minimax loss": {"loss": "gan"},
    "WGAN (clip 0.01, 5 critic steps)": {"loss": "wgan", "weight_clip": 0.01, "n_critic": 5},
    "hinge loss": {"loss": "hinge"},
    "least squares (LSGAN)": {"loss": "lsgan"},
    "relativistic pairing (RpGAN)": {"loss": "rpgan"},
    "R1 penalty (gamma 0.1)": {"penalty": "r1", "gamma": 0.1},
    "R2 penalty (gamma 0.1)": {"penalty": "r2", "gamma": 0.1},
    "WGAN-GP penalty (lambda 1)": {"penalty": "wgan-gp", "gamma": 1.0},
    "RpGAN + R1 (gamma 0.1)": {"loss": "rpgan", "penalty": "r1", "gamma": 0.1},
    "5 D steps per G step": {"n_critic": 5},
    "one-sided label smoothing 0.9": {"label_smoothing": 0.9},
    "feature matching": {"feature_matching": True},
    "minibatch discrimination (8)": {"minibatch_discrimination": 8},
    "historical averaging 1e-3": {"historical_averaging": 1e-3},
    "instance noise 0.1": {"instance_noise": 0.1},
    "unrolled D (5 steps)": {"unrolled_steps": 5},
    "spectral norm in D": {"spectral_norm": True},
}

#: row name -> the ToyConfig fields that row changes with respect to ``plain_gan`` (read-only)
TRICKS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {row: MappingProxyType(fields) for row, fields in _ROW_FIELDS.items()}
)
#: the last row of the table: the course's recommended recipe
RECIPE_ROW = "recommended recipe"
#: every row of the table, in order: the trick rows, then the recipe
ROWS: tuple[str, ...] = (*TRICKS, RECIPE_ROW)

_METRICS = ("modes", "hq", "reverse_kl")
K = TypeVar("K")


def trick_config(
    row: str,
    data: str = "grid25",
    seed: int = 0,
    *,
    sizes: Mapping[str, Any] | None = None,
    full_recipe: bool = False,
) -> ToyConfig:
    """The config of one table row on ``data`` with ``seed``.

    A trick row is ``plain_gan(data, seed=seed, **sizes, **TRICKS[row])``. The recipe row is
    ``recommended(data, seed=seed, **sizes)``, or with ``full_recipe`` the recipe as it is (its own
    networks and length). ``sizes`` holds what every row shares (``steps``, ``batch_size``, ``g_hidden``,
    ``d_hidden``, ``n_eval``, ...); it may not set ``data``, ``seed`` or a field that the row changes.
    """
    check_choice("row", row, ROWS)
    sizes = dict(sizes or {})
    changes = {} if row == RECIPE_ROW else dict(TRICKS[row])
    clash = sorted(set(sizes) & {"data", "seed", *changes})
    if clash:
        raise ValueError(f"sizes may not set {clash}: the row {row!r} and the arguments data and seed set them")
    if row == RECIPE_ROW:
        return recommended(data, seed=seed, **({} if full_recipe else sizes))
    return plain_gan(data, seed=seed, **sizes, **changes)


def trick_configs(
    data_sets: Iterable[str],
    seeds: Iterable[int],
    *,
    rows: Sequence[str] = ROWS,
    sizes: Mapping[str, Any] | None = None,
    full_recipe: bool = False,
) -> dict[tuple[str, str, int], ToyConfig]:
    """``(data, row, seed) -> trick_config(row, data, seed, ...)`` for every combination, data sets outermost."""
    seeds = list(seeds)
    return {(data, row, seed): trick_config(row, data, seed, sizes=sizes, full_recipe=full_recipe)
            for data in data_sets for row in rows for seed in seeds}


def train_and_evaluate(config: ToyConfig) -> dict[str, Any]:
    """Train a :class:`ToyGAN` on ``config`` to its last step and measure it on ``config.n_eval`` samples.

    Returns the metrics of :meth:`ToyGAN.evaluate` with ``diverged=False``, or, when training raised
    :class:`~gancourse.errors.TrainingDiverged`, ``{"diverged": True, "step": k}`` with the step at which
    it diverged; both with the wall-clock ``seconds`` of the run.
    """
    if not isinstance(config, ToyConfig):
        raise TypeError(f"config must be a ToyConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    gan = ToyGAN(config)
    try:
        gan.train(progress=False)
        result: dict[str, Any] = {**gan.evaluate(), "diverged": False}
    except TrainingDiverged as err:
        result = {"diverged": True, "step": err.step}
    result["seconds"] = time.perf_counter() - t0
    return result


def train_and_evaluate_all(
    configs: Mapping[K, ToyConfig], *, jobs: int | None = None, progress: bool | None = None
) -> dict[K, dict[str, Any]]:
    """:func:`train_and_evaluate` for every config of ``configs``, trained side by side in worker processes.

    The runs go through :func:`gancourse.toy.sweep.sweep` (``jobs`` worker processes, default: this process's
    CPUs; one BLAS thread each; ``progress`` as there). Returns ``{key: result}`` in the order of ``configs``,
    each result in :func:`train_and_evaluate`'s format and with the same metrics, bit for bit: the metrics with
    ``diverged=False``, or ``{"diverged": True, "step": k}``; both with the ``seconds`` the run took in its
    worker. A run that fails in another way than by diverging raises :class:`~gancourse.toy.sweep.SweepError`
    once every run has finished.
    """
    if not isinstance(configs, Mapping):
        raise TypeError(f"configs must be a mapping of keys to ToyConfig (e.g. trick_configs(...)), "
                        f"got {type(configs).__name__}")
    keys = list(configs)
    results = sweep([configs[k] for k in keys], jobs=jobs, progress=progress, on_error="record")
    failed = [i for i, r in enumerate(results) if "error" in r and r["error_type"] != TrainingDiverged.__name__]
    if failed:
        raise SweepError(results, failed)
    out: dict[K, dict[str, Any]] = {}
    for key, r in zip(keys, results):
        if "error" in r:
            out[key] = {"diverged": True, "step": r["steps"], "seconds": r["seconds"]}
        else:
            metrics = {k: v for k, v in r.items() if k not in ("data", "seed", "steps", "seconds")}
            out[key] = {**metrics, "diverged": False, "seconds": r["seconds"]}
    return out


def summarize_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One row of the table from its runs (results of :func:`train_and_evaluate`, one per seed).

    Returns ``n_done`` and ``n_diverged`` (runs that finished and that diverged), the total ``seconds``,
    and for each of ``modes``, ``hq`` and ``reverse_kl`` the mean over the finished runs with its standard
    deviation under ``<name>_std`` (``None`` for both when every run diverged; see :func:`mean_std`).
    """
    for i, r in enumerate(runs):
        if "diverged" not in r or "seconds" not in r:
            raise ValueError(f"run {i} has no 'diverged' or 'seconds' entry; summarize the results of "
                             f"train_and_evaluate, got keys {sorted(r)}")
    done = [r for r in runs if not r["diverged"]]
    out: dict[str, Any] = {"n_done": len(done), "n_diverged": len(runs) - len(done),
                           "seconds": sum(r["seconds"] for r in runs)}
    for key in _METRICS:
        out[key], out[key + "_std"] = mean_std(r[key] for r in done)
    return out


def summary_table(summaries: Mapping[str, Mapping[str, Any]], *, title: str = "", show_std: bool = True) -> str:
    """A fixed-width text table of row summaries (:func:`summarize_runs`), one line per row in their order.

    Columns: modes, HQ in percent and reverse KL (mean ± std over the finished seeds), and the seconds the
    row took; a row with diverged seeds says how many.
    """
    header = f"{'variant':<34} {'modes':>13} {'HQ %':>13} {'reverse KL':>15} {'time s':>8}"
    lines = ([title] if title else []) + [header, "-" * len(header)]
    for row, s in summaries.items():
        hq = (None if s["hq"] is None else 100 * s["hq"], None if s["hq_std"] is None else 100 * s["hq_std"])
        note = f"  ({s['n_diverged']} diverged)" if s["n_diverged"] else ""
        lines.append(f"{row:<34} {format_mean_std(s['modes'], s['modes_std'], '.1f', show_std=show_std):>13} "
                     f"{format_mean_std(*hq, '.1f', show_std=show_std):>13} "
                     f"{format_mean_std(s['reverse_kl'], s['reverse_kl_std'], '.3f', show_std=show_std):>15} "
                     f"{s['seconds']:>8.1f}{note}")
    return "\n".join(lines)


def comparison_rows(summaries: Mapping[str, Mapping[str, Any]], label: str) -> list[dict[str, Any]]:
    """Row summaries as rows of :func:`gancourse.toy.report.comparison_table`: ``"<row> (<label>)"``.

    Means are rounded to three decimals; a row whose every seed diverged shows ``None`` (printed as -).
    """
    return [{"method": f"{row} ({label})",
             **{k: None if s[k] is None else round(s[k], 3) for k in _METRICS}} for row, s in summaries.items()]


def describe_summary(summary: Mapping[str, Any], n_modes: int, n_seeds: int) -> str:
    """One row's summary in words, e.g. ``"24.7 of 25 modes, 91.2% HQ, reverse KL 0.031"``."""
    s = summary
    if s["modes"] is None:
        return "diverged on every seed"
    if math.isfinite(s["reverse_kl"]):
        kl = f"{s['reverse_kl']:.3f}"
    else:
        kl = "inf (no HQ sample)" if n_seeds == 1 else "inf (a seed without HQ samples)"
    return f"{s['modes']:.1f} of {n_modes} modes, {100 * s['hq']:.1f}% HQ, reverse KL {kl}"
