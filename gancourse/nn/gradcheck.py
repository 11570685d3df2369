"""Centred-difference gradient checks (run them in float64)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_grad", "rel_error"]


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``df/dx`` by centred differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``, perturbing ``x`` in place.

    ``f`` takes no arguments and reads ``x`` (for instance a parameter view of a network).
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(max|a| + max|b|, 1e-300)``: a scale-aware relative error of two arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0) + np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)
