"""The inception-score formula from a classifier's class probabilities (Salimans et al. 2016).

    IS = exp( E_x KL( p(y | x) || p(y) ) ),   p(y) = E_x p(y | x),

which is high when each sample is classified confidently (low conditional entropy) and the
classes are used evenly (high marginal entropy); ``1 <= IS <= K`` for ``K`` classes. The course
computes it with its own classifiers' probabilities, never with an Inception network.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import rel_entr

from gancourse.errors import check_array

__all__ = ["inception_score", "inception_score_splits"]


def _as_probs(probs: Any) -> np.ndarray:
    pr = check_array("probs", probs, dtype=np.float64, ndim=2, finite=True)
    if pr.shape[0] == 0 or pr.shape[1] < 1:
        raise ValueError(f"probs must have shape (N, K) with N >= 1 samples and K >= 1 classes, got shape {pr.shape}")
    if np.any(pr < 0):
        raise ValueError(f"probs must be non-negative class probabilities, got minimum {pr.min():.6g}")
    sums = pr.sum(axis=1)  # (N,)
    bad = np.abs(sums - 1.0) > 1e-6
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"each row of probs must sum to 1 (class probabilities, e.g. a softmax); row {i} sums to {sums[i]:.8g}")
    return pr


def _score(pr: np.ndarray) -> float:
    marginal = pr.mean(axis=0, keepdims=True)  # (1, K) p(y)
    kl = rel_entr(pr, marginal).sum(axis=1)  # (N, K) -> (N,) KL(p(y|x) || p(y))
    return float(np.exp(kl.mean()))


def inception_score_splits(probs: Any, n_splits: int = 10) -> np.ndarray:
    """The score on each of ``n_splits`` consecutive, equal-as-possible chunks of ``probs`` (N, K) -> (n_splits,)."""
    pr = _as_probs(probs)
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or not 1 <= n_splits <= len(pr):
        raise ValueError(f"n_splits must be an integer between 1 and the number of samples {len(pr)}, got {n_splits!r}")
    return np.array([_score(chunk) for chunk in np.array_split(pr, int(n_splits))])


def inception_score(probs: Any, n_splits: int = 1) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` for class probabilities ``probs`` (N, K); mean over ``n_splits`` chunks.

    ``n_splits=1`` scores all samples at once; Salimans et al. report the mean (and spread, see
    ``inception_score_splits``) over 10 chunks.
    """
    return float(inception_score_splits(probs, n_splits).mean())
