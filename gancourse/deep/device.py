"""Choosing a device and seeding every random number generator.

``select_device`` picks CUDA, then Apple's MPS, then the CPU, and says what it chose;
``seed_everything`` seeds Python, NumPy and torch (all CUDA devices included) and can switch
torch to deterministic algorithms.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from gancourse.errors import check_choice

__all__ = ["DEVICE_ORDER", "device_available", "select_device", "seed_everything"]

DEVICE_ORDER: tuple[str, ...] = ("cuda", "mps", "cpu")  # the order in which "auto" tries devices


def device_available(kind: str) -> bool:
    """Whether torch can use a device of this kind here ("cuda", "mps" or "cpu")."""
    check_choice("device kind", kind, DEVICE_ORDER)
    if kind == "cuda":
        return bool(torch.cuda.is_available())
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return True


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def select_device(prefer: str | None = None, verbose: bool = True) -> torch.device:
    """Return the best available device: CUDA, then MPS, then the CPU.

    Parameters
    ----------
    prefer : None, "auto", "cuda", "cuda:K", "mps" or "cpu"
        ``None``/"auto" tries the devices in the order of ``DEVICE_ORDER``. A named device that is not
        available here is not an error: a message says so and the automatic choice is used instead.
    verbose : bool
        Print which device was chosen (and why, after a fall-back).

    Raises
    ------
    ValueError
        ``prefer`` is not one of the names above.
    """
    if prefer is not None and not isinstance(prefer, str):
        raise TypeError(f"prefer must be a device name (str) or None, got {type(prefer).__name__}")
    name = "auto" if prefer is None else prefer.strip().lower()
    kind, _, index = name.partition(":")
    if index and (kind != "cuda" or not index.isdigit()):
        raise ValueError(f"unknown device {prefer!r}; valid options are: 'auto', 'cuda', 'cuda:K', 'mps', 'cpu'")
    if kind not in ("auto",) + DEVICE_ORDER:
        raise ValueError(f"unknown device {prefer!r}; valid options are: 'auto', 'cuda', 'cuda:K', 'mps', 'cpu'")

    note = ""
    if kind != "auto" and device_available(kind):
        if index and int(index) >= torch.cuda.device_count():
            note = f"requested {prefer!r} but only {torch.cuda.device_count()} CUDA device(s) exist; "
        else:
            device = torch.device(name)
            if verbose:
                print(f"gancourse: using {_describe(device)}")
            return device
    elif kind != "auto":
        note = f"requested {prefer!r} but torch reports it unavailable here; "
    chosen = next(k for k in DEVICE_ORDER if device_available(k))
    device = torch.device(chosen)
    if verbose:
        print(f"gancourse: {note}{'falling back to' if note else 'using'} {_describe(device)}")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    With ``deterministic=True`` torch uses deterministic algorithms where it has them (and warns,
    rather than fails, where it has none), cuDNN runs deterministic kernels without autotuning, and
    ``CUBLAS_WORKSPACE_CONFIG`` is set as cuBLAS requires for reproducible matrix products.
    With ``deterministic=False`` those switches are turned back off (torch's defaults).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)
    torch.backends.cudnn.deterministic = bool(deterministic)
    if deterministic:
        torch.backends.cudnn.benchmark = False
