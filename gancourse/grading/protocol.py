"""The conventions the grader and its sandbox share: one home for each.

How a case is stored in ``.npz`` (``encode_case``/``decode_case``), how a graded function is called and its answer
flattened into named arrays (``call``), the cotangent of a torch question's gradient check, and the codes and
markers by which the sandbox reports back. Standard library only at import time: the sandbox loads this file
before any protection is in place (NumPy and torch are imported inside the functions that need them).
"""
from __future__ import annotations

REFERENCE_EXIT = 97  # the worker's exit code when the graded code used the course's own implementation
SETUP_EXIT = 98  # the sandbox could not be set up (never the submission's fault)
OUTPUT_HEAD = 4096  # bytes of the submission's stdout/stderr kept for the report
LIMITED = "gancourse sandbox: isolation limited: "  # how the worker tells the grader that a protection is missing

_SCALAR_TAGS = {"f": float, "i": int, "b": bool}
UNGRADABLE = "ungradable answer: "  # prefix of the grader's own objections to an answer (not the student's error)


class UngradableAnswer(TypeError):
    """The function returned, but its answer is not something the grader can compare."""


def encode_case(case: dict) -> dict:
    """Keyword arguments -> arrays for ``np.savez``; keys tag the kind so ``decode_case`` restores it exactly.

    ``a__x`` an array, ``f__x`` / ``i__x`` / ``b__x`` a Python float / int / bool, ``s__x`` a string,
    ``e__x`` the source of an ``Expr`` and ``E__x__name`` its arrays. Keys starting with ``_`` are not sent.
    """
    import numpy as np

    out = {}
    for key, value in case.items():
        if key.startswith("_"):
            continue
        if not key.isidentifier():
            raise ValueError(f"case keys must be Python identifiers, got {key!r}")
        if isinstance(value, bool):
            out[f"b__{key}"] = np.array(value)
        elif isinstance(value, int):
            out[f"i__{key}"] = np.array(value, dtype=np.int64)
        elif isinstance(value, float):
            out[f"f__{key}"] = np.array(value, dtype=np.float64)
        elif isinstance(value, str):
            out[f"s__{key}"] = np.array(value)
        elif hasattr(value, "source") and hasattr(value, "arrays"):  # an Expr
            out[f"e__{key}"] = np.array(value.source)
            for name, arr in value.arrays.items():
                out[f"E__{key}__{name}"] = np.asarray(arr)
        else:
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"case value {key!r} must be numeric, got dtype {arr.dtype}")
            out[f"a__{key}"] = arr
    return out


def decode_case(arrays) -> dict:
    """The inverse of ``encode_case``; an ``Expr`` becomes the function its source evaluates to."""
    import numpy as np

    case, exprs = {}, {}
    for key in arrays.keys():
        tag, name = key.split("__", 1)
        value = arrays[key]
        if tag == "a":
            case[name] = np.array(value)
        elif tag in _SCALAR_TAGS:
            case[name] = _SCALAR_TAGS[tag](value[()])
        elif tag == "s":
            case[name] = str(value[()])
        elif tag == "e":
            exprs.setdefault(name, {})["__source__"] = str(value[()])
        elif tag == "E":
            expr, arr_name = name.split("__", 1)
            exprs.setdefault(expr, {})[arr_name] = np.array(value)
    for name, parts in exprs.items():
        source = parts.pop("__source__")
        scope = {"np": np, "__builtins__": __builtins__, **parts}
        case[name] = eval(source, scope)  # noqa: S307 -- the instructor's source, evaluated on both sides
    return case


def _to_numpy(value):
    """A tensor, array, number or bool as a plain ``numpy.ndarray`` (never a subclass, never an object array)."""
    import numpy as np

    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    arr = np.array(value, copy=True, subok=False)
    if arr.dtype.kind not in "biuf":
        raise UngradableAnswer(f"not a numeric array: got {type(value).__name__} with dtype {arr.dtype}")
    return arr


def flatten_output(value) -> tuple[str, dict]:
    """An answer as (structure, named arrays): an array, a tuple/list of them, or a dict of them."""
    if isinstance(value, (tuple, list)):
        return f"tuple:{len(value)}", {f"[{i}]": _to_numpy(v) for i, v in enumerate(value)}
    if isinstance(value, dict):
        keys = list(value)
        if not all(isinstance(k, str) for k in keys):
            raise UngradableAnswer("a dict answer needs string keys")
        return "dict:" + ",".join(sorted(keys)), {f"[{k!r}]": _to_numpy(value[k]) for k in sorted(keys)}
    return "array", {"": _to_numpy(value)}


def unflatten_output(structure: str, arrays: dict):
    """The inverse of ``flatten_output`` (for a custom scorer, which sees the answer as the student returned it)."""
    kind, _, rest = structure.partition(":")
    if kind == "tuple":
        return tuple(arrays[f"[{i}]"] for i in range(int(rest)))
    if kind == "dict":
        return {k: arrays[f"[{k!r}]"] for k in (rest.split(",") if rest else [])}
    return arrays[""]


def cotangent(shape: tuple, index: int):
    """The fixed random weights ``c`` of ``sum(c * output)`` whose gradients a torch question compares."""
    import numpy as np

    return np.random.default_rng(1000 + index).standard_normal(shape)


def call(fn, case: dict, framework: str = "numpy", grad_wrt: tuple = ()) -> tuple[str, dict]:
    """Call ``fn(**case)`` and flatten its answer; a torch question also returns d sum(c * out) / d input."""
    if framework == "numpy":
        return flatten_output(fn(**case))
    import numpy as np
    import torch

    def as_tensor(name, v):
        if isinstance(v, np.ndarray):
            t = torch.from_numpy(v.astype(np.int64) if v.dtype.kind in "iu" else v.astype(np.float64))
            return t.requires_grad_(True) if name in grad_wrt else t
        return v

    args = {k: as_tensor(k, v) for k, v in case.items()}
    missing = [k for k in grad_wrt if not isinstance(args.get(k), torch.Tensor)]
    if missing:
        raise ValueError(f"grad_wrt names inputs that are not float arrays: {missing}")
    value = fn(**args)
    parts = list(value) if isinstance(value, (tuple, list)) else list(value.values()) if isinstance(value, dict) else [value]
    structure, flat = flatten_output(value)
    if grad_wrt:
        if not all(isinstance(p, torch.Tensor) and p.requires_grad for p in parts):
            raise UngradableAnswer(
                "the answer must be a tensor that depends on the inputs through autograd (it is differentiated "
                f"with respect to {', '.join(grad_wrt)}); a gradient inside the formula needs "
                "torch.autograd.grad(..., create_graph=True), and .item() or .detach() cut the graph")
        total = sum((p * torch.from_numpy(cotangent(tuple(p.shape), i)).to(p.dtype)).sum() for i, p in enumerate(parts))
        grads = torch.autograd.grad(total, [args[k] for k in grad_wrt], allow_unused=True)
        for k, g in zip(grad_wrt, grads):
            flat[f"d/d{k}"] = np.zeros(tuple(args[k].shape)) if g is None else _to_numpy(g)
    return structure, flat
