"""Weight initialisers: He (Kaiming), Xavier (Glorot) and DCGAN's N(0, 0.02)."""
from __future__ import annotations

import numpy as np

from gancourse.errors import check_choice

__all__ = ["INITS", "init_weight"]

INITS = ("he", "xavier", "normal", "uniform")


def init_weight(name: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """A (fan_in, fan_out) weight matrix in float64.

    - ``he``: N(0, 2 / fan_in) (He et al. 2015), for ReLU-like layers;
    - ``xavier``: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010);
    - ``normal``: N(0, 0.02^2), the DCGAN initialisation (Radford et al. 2016);
    - ``uniform``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for ``nn.Linear``
      (a quarter of He's variance; the toy recipe trains best with it).
    """
    check_choice("init", name, INITS)
    if name == "he":
        return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    if name == "xavier":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=(fan_in, fan_out))
    if name == "uniform":
        a = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-a, a, size=(fan_in, fan_out))
    return rng.standard_normal((fan_in, fan_out)) * 0.02
