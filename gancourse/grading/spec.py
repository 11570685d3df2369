"""How an instructor notebook declares a graded question (inside its hidden-tests region).

>>> @question("double", points=1)
... def _(rng):
...     return [dict(x=rng.normal(size=3))]

The decorated function draws the hidden cases from a ``numpy.random.Generator``; the grader calls it with a secret
per-run seed (and once with seed 0 for the public case). See ``notebooks/homework/README.md``.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gancourse.errors import check_choice

__all__ = ["Expr", "QuestionSpec", "question", "FRAMEWORKS", "collecting"]

FRAMEWORKS = ("numpy", "torch")

Scorer = Callable[[dict[str, Any], Any], tuple[float, str]]


@dataclass(frozen=True)
class Expr:
    """A function passed as an input: ``source`` is evaluated in the sandbox with ``np`` and ``arrays`` in scope."""

    source: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __init__(self, source: str, **arrays: Any):
        if not isinstance(source, str) or not source.strip():
            raise ValueError("Expr needs the source of an expression, e.g. 'lambda x: np.sum(x ** 2)'")
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "arrays", {k: np.asarray(v) for k, v in arrays.items()})


@dataclass(frozen=True)
class QuestionSpec:
    """One graded function: its points, how its hidden inputs are drawn, and how answers are compared."""

    name: str
    points: float
    cases: Callable[[np.random.Generator], list[dict[str, Any]]]
    rtol: float = 1e-6
    atol: float = 1e-9
    framework: str = "numpy"
    grad_wrt: tuple[str, ...] = ()
    score: Scorer | None = None
    public: bool = True
    cpu_seconds: float = 10.0
    memory_mb: int = 2048

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"question name must be a Python identifier (the graded function), got {self.name!r}")
        if not (math.isfinite(self.points) and self.points > 0):
            raise ValueError(f"points of {self.name!r} must be a positive number, got {self.points!r}")
        check_choice("framework", self.framework, FRAMEWORKS)
        if self.grad_wrt and self.framework != "torch":
            raise ValueError(f"grad_wrt of {self.name!r} needs framework='torch'")
        if self.rtol < 0 or self.atol < 0:
            raise ValueError(f"tolerances of {self.name!r} must be >= 0, got rtol={self.rtol}, atol={self.atol}")
        if self.cpu_seconds <= 0 or self.memory_mb < 256:
            raise ValueError(f"limits of {self.name!r}: cpu_seconds > 0 and memory_mb >= 256 are needed")


_collected: list[QuestionSpec] = []
_collecting_lock = threading.RLock()  # batch grading loads questions from several threads


def question(
    name: str,
    *,
    points: float,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    framework: str = "numpy",
    grad_wrt: tuple[str, ...] = (),
    score: Scorer | None = None,
    public: bool = True,
    cpu_seconds: float = 10.0,
    memory_mb: int = 2048,
) -> Callable[[Callable], Callable]:
    """Declare the graded function ``name``; decorates the function that draws its hidden cases."""

    def register(cases: Callable) -> Callable:
        _collected.append(QuestionSpec(name, float(points), cases, float(rtol), float(atol), framework,
                                       tuple(grad_wrt), score, bool(public), float(cpu_seconds), int(memory_mb)))
        return cases

    return register


class collecting:
    """Context manager: the questions declared inside it (``with collecting() as specs: exec(...)``)."""

    def __enter__(self) -> list[QuestionSpec]:
        _collecting_lock.acquire()
        self._before = len(_collected)
        self.specs: list[QuestionSpec] = []
        return self.specs

    def __exit__(self, *exc) -> None:
        try:
            self.specs.extend(_collected[self._before:])
            del _collected[self._before:]
        finally:
            _collecting_lock.release()
