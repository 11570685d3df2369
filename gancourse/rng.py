"""Seeds and random streams (the bottom layer, beside ``errors`` and ``io``).

Every seeded function of the NumPy half takes ``RngLike``: an int seed (a fresh, reproducible stream) or a
``numpy.random.Generator`` (continue that stream). :func:`make_rng` turns either into a Generator.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RngLike", "make_rng"]

RngLike = int | np.integer | np.random.Generator


def make_rng(rng_or_seed: RngLike) -> np.random.Generator:
    """Return ``np.random.default_rng(seed)`` for an int seed, or the Generator itself."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if isinstance(rng_or_seed, (int, np.integer)) and not isinstance(rng_or_seed, bool):
        return np.random.default_rng(int(rng_or_seed))
    raise TypeError(
        "rng_or_seed must be an int seed or a numpy.random.Generator, "
        f"got {type(rng_or_seed).__name__}"
    )
