"""A toy run over time: sample snapshots from fixed latent codes, and which modes each evaluation covers.

:func:`snapshot_callback` is a :meth:`ToyGAN.train` callback that keeps ``(step, samples)`` pairs;
since :meth:`ToyGAN.sample` draws its latent codes from its own seeded stream, every snapshot shows the
*same* codes, and taking them does not change the run. :func:`mode_coverage` reads the evaluations that
``ToyConfig.eval_every`` records in ``history["eval"]`` and says which mixture components were covered
when: the picture of mode collapse (few components, stable) and mode hopping (the covered set changes).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gancourse.errors import check_positive_int
from gancourse.toy.trainer import ToyGAN

__all__ = ["snapshot_callback", "mode_coverage"]


def snapshot_callback(store: list, n: int = 1000) -> Callable[[ToyGAN], None]:
    """A training callback that appends ``(gan.step, gan.sample(n))`` to ``store`` each time it is called.

    ``samples`` has shape (n, dim), in data coordinates, from the same latent codes at every call.
    """
    n = check_positive_int("n", n)

    def callback(gan: ToyGAN) -> None:
        store.append((gan.step, gan.sample(n)))

    return callback


def mode_coverage(evals: Sequence[Mapping[str, Any]], final_counts: Sequence[int] | None = None) -> dict[str, Any]:
    """Which components of a mixture a run covered at each of its evaluations.

    ``evals`` is ``ToyGAN.history["eval"]`` of a run on a Gaussian mixture (dicts with ``step`` and the
    per-component HQ ``counts`` of :func:`~gancourse.toy.metrics.mode_metrics`); ``final_counts`` the
    counts of a final evaluation (default: the last one in ``evals``). Returns

    - ``steps``: (n_evals,) int array; ``counts``: (n_evals, K) float array of HQ samples per component;
    - ``covered``: (n_evals, K) bool array, ``counts > 0``;
    - ``ever``: the set of components covered at some evaluation; ``final``: those covered at the end;
    - ``changes``: at how many of the ``n_evals - 1`` consecutive pairs of evaluations the covered set changed.
    """
    if not evals:
        raise ValueError("evals is empty: train with ToyConfig.eval_every > 0 to record evaluations")
    missing = [i for i, e in enumerate(evals) if "counts" not in e or "step" not in e]
    if missing:
        raise ValueError(f"evaluations {missing} have no 'step' or 'counts': mode coverage needs a mixture data set "
                         f"(ring8, grid25, mixture1d)")
    sizes = [len(e["counts"]) for e in evals]
    if len(set(sizes)) != 1:
        raise ValueError(f"every evaluation needs the same number of components, got {sizes}")
    counts = np.array([e["counts"] for e in evals], dtype=float)  # (n_evals, K)
    covered = counts > 0  # (n_evals, K)
    last = covered[-1] if final_counts is None else np.asarray(final_counts) > 0
    if last.shape != covered.shape[1:]:
        raise ValueError(f"final_counts must have {covered.shape[1]} entries, got {last.shape}")
    return {
        "steps": np.array([e["step"] for e in evals], dtype=int),
        "counts": counts,
        "covered": covered,
        "ever": set(np.flatnonzero(covered.any(axis=0)).tolist()),
        "final": set(np.flatnonzero(last).tolist()),
        "changes": int(np.sum(np.any(covered[1:] != covered[:-1], axis=1))),
    }
