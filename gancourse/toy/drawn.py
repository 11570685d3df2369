"""Points a student draws, as a toy distribution: a Gaussian mixture with one small component per point.

``DrawnPoints(points, std)`` is ``p(x) = 1/K sum_k N(x; c_k, std^2 I)`` with the drawn points ``c_k`` as centres, so
it samples, has a density, and is measured like ring8 and grid25 (``gancourse.toy.metrics.mode_metrics``: a
*mode* is a drawn point that some high-quality sample reaches). It is not registered in ``DATASETS``: a run on
drawn points builds it from the points (:func:`gancourse.viz.gan_lab.make_lab_gan`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gancourse.errors import check_array, check_positive
from gancourse.toy.distributions import GaussianMixture

__all__ = ["DrawnPoints", "MAX_POINTS"]

#: the most points a drawing may hold (each is a mixture component)
MAX_POINTS = 500


@dataclass(frozen=True)
class DrawnPoints(GaussianMixture):
    """Equal-weight isotropic Gaussians of std ``std`` centred on the drawn ``points`` ((K, 2) as pairs)."""

    name: ClassVar[str] = "drawn"
    dim: ClassVar[int] = 2
    points: tuple[tuple[float, float], ...] = ((-1.0, -0.6), (0.0, 1.0), (1.0, -0.6))
    std: float = 0.05

    def __post_init__(self) -> None:
        pts = check_array("points", np.asarray(self.points, dtype=float).reshape(-1, 2), shape=(None, 2),
                          finite=True)  # (K, 2)
        if not 1 <= len(pts) <= MAX_POINTS:
            raise ValueError(f"a drawing needs between 1 and {MAX_POINTS} points, got {len(pts)}: click the canvas "
                             f"to add some")
        check_positive("std", self.std)
        object.__setattr__(self, "points", tuple((float(x), float(y)) for x, y in pts))
        object.__setattr__(self, "std", float(self.std))

    @property
    def centers(self) -> np.ndarray:
        return np.array(self.points)  # (K, 2)

    @property
    def component_stds(self) -> np.ndarray:
        return np.full(len(self.points), self.std)

    @property
    def component_weights(self) -> np.ndarray:
        return np.full(len(self.points), 1.0 / len(self.points))

    @classmethod
    def from_array(cls, points: Any, std: float = 0.05) -> DrawnPoints:
        """From an array-like of shape (K, 2)."""
        pts = check_array("points", points, dtype=float, shape=(None, 2), finite=True)
        return cls(tuple(map(tuple, pts)), std)
