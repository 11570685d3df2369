"""Compare a student's answer with the reference: structure, shape, dtype kind, finiteness, then values.

Only the parent process compares, on plain arrays it loaded itself, so an answer cannot rig the comparison (no
``__eq__`` of the student's runs here). Feedback names what is wrong; the numbers (shapes, the largest error) are
shown only for the public case, never for a hidden one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CaseResult", "compare_answers", "describe_structure"]

_KIND = {"f": "floating", "i": "integer", "u": "integer", "b": "boolean"}


@dataclass(frozen=True)
class CaseResult:
    """One case: passed or not, the kind of problem (``shape``, ``dtype``, ``NaN``...) and public-only detail."""

    passed: bool
    problem: str = ""
    detail: str = ""


def describe_structure(structure: str) -> str:
    kind, _, rest = structure.partition(":")
    if kind == "tuple":
        return f"a tuple of {rest} arrays"
    if kind == "dict":
        return f"a dict with keys {rest.split(',') if rest else []}"
    return "one array"


def _label(key: str) -> str:
    if key.startswith("d/d"):
        return f"the gradient with respect to {key[3:]}"
    return "the answer" if key == "" else f"answer{key}"


def _compare_array(key: str, exp: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> CaseResult:
    what = _label(key)
    if got.shape != exp.shape:
        return CaseResult(False, "wrong shape", f"{what}: expected shape {exp.shape}, got {got.shape}")
    kind_e, kind_g = _KIND.get(exp.dtype.kind, exp.dtype.kind), _KIND.get(got.dtype.kind, got.dtype.kind)
    if kind_e != kind_g:
        return CaseResult(False, "wrong dtype", f"{what}: expected a {kind_e} array, got dtype {got.dtype}")
    if kind_e != "floating":
        same = np.array_equal(exp, got)
        bad = int(np.sum(exp != got))
        return CaseResult(same, "" if same else "wrong values", "" if same else f"{what}: {bad} entries differ")
    e, g = exp.astype(np.float64), got.astype(np.float64)
    if np.isnan(g).any() and not np.isnan(e).any():
        return CaseResult(False, "NaN", f"{what} contains {int(np.isnan(g).sum())} NaN value(s)")
    inf_g, inf_e = np.isinf(g), np.isinf(e)
    if (inf_g & ~inf_e).any():
        return CaseResult(False, "inf", f"{what} contains {int((inf_g & ~inf_e).sum())} infinite value(s)")
    ok = np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if ok.all():
        return CaseResult(True)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(ok, 0.0, np.abs(g - e))
        err = np.where(np.isnan(err), np.inf, err)
        idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        scale = abs(float(e[idx]))
    where = f" at index {tuple(int(i) for i in idx)}" if idx else ""
    relative = f" (relative {float(err[idx]) / scale:.3g})" if scale > 0 and np.isfinite(scale) else ""
    return CaseResult(False, "wrong gradient" if key.startswith("d/d") else "wrong values",
                      f"{what}: {int((~ok).sum())} of {ok.size} values are off; the largest error is "
                      f"{float(err[idx]):.3g}{relative}{where}, tolerance rtol={rtol:g}, atol={atol:g}")


def compare_answers(expected: tuple[str, dict], got: tuple[str, dict], rtol: float, atol: float) -> CaseResult:
    """Compare two flattened answers ``(structure, {key: array})``; the first problem found is reported."""
    (s_exp, a_exp), (s_got, a_got) = expected, got
    if s_exp != s_got or set(a_exp) != set(a_got):
        return CaseResult(False, "wrong structure",
                          f"expected {describe_structure(s_exp)}, got {describe_structure(s_got)}")
    for key in a_exp:
        res = _compare_array(key, a_exp[key], a_got[key], rtol, atol)
        if not res.passed:
            return res
    return CaseResult(True)
