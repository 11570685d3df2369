"""Config fields described once: help text and choices live in the dataclass, and command-line flags come from it.

A config is a frozen dataclass whose fields are declared with :func:`option`::

    @dataclass(frozen=True)
    class RunConfig:
        loss: str = option("ns", "adversarial loss", choices=("gan", "ns"))
        g_hidden: tuple[int, ...] = option((128, 128), "generator hidden widths")

:func:`add_flags` turns every such field into a flag (``g_hidden`` -> ``--g-hidden``) with its help, its
choices and the default shown; :func:`given` reads back the fields whose flags were given. Flags default to
``None``, so that a preset's values show through anything the user did not type.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "option", "help_of", "flag_of", "choices_of", "check_choices", "add_flags", "given", "as_flag", "show_value",
    "contradictions",
]

_META = "gancourse"  # the key of our entry in a field's metadata


def option(
    default: Any,
    help: str,
    *,
    choices: Iterable[str] | None = None,
    flag: str | None = None,
    aliases: tuple[str, ...] = (),
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field with its description: ``help``, the valid ``choices``, and how it appears as a flag.

    ``flag`` replaces the default spelling (``--`` + the name with ``-`` for ``_``); ``aliases`` are other
    spellings of the same flag; ``cli=False`` keeps a field off the command line.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "flag": flag,
            "aliases": tuple(aliases), "metavar": metavar, "cli": cli}
    if isinstance(default, (list, dict, set)):
        raise TypeError("option defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata={_META: meta})


def _meta(f: dataclasses.Field) -> dict:
    return f.metadata.get(_META, {"help": f.name, "choices": None, "flag": None, "aliases": (), "metavar": None,
                                  "cli": True})


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise ValueError(f"{cls.__name__} has no field {name!r}; its fields are "
                     f"{', '.join(f.name for f in dataclasses.fields(cls))}")


def help_of(cls: type, name: str) -> str:
    """The help text of field ``name`` of the dataclass ``cls``."""
    return _meta(_field(cls, name))["help"]


def flag_of(cls: type, name: str) -> str:
    """The command-line spelling of field ``name``: ``lr_g`` -> ``--lr-g`` unless the field names another."""
    return _meta(_field(cls, name))["flag"] or "--" + name.replace("_", "-")


def choices_of(cls: type, name: str) -> tuple[str, ...] | None:
    """The valid values of field ``name``, or None where any value of its type is allowed."""
    return _meta(_field(cls, name))["choices"]


def check_choices(config: Any) -> None:
    """Every field of ``config`` that has choices holds one of them, or a ValueError names the field and them."""
    from gancourse.errors import check_choice

    for f in dataclasses.fields(config):
        choices = _meta(f)["choices"]
        if choices is not None:
            check_choice(f.name, getattr(config, f.name), choices)


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,128, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths like 128,128, got {text!r}")
    return widths


def _scalar(hint: Any) -> Any:
    """``float | None`` -> ``float``; other hints unchanged."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def show_value(value: Any) -> str:
    """A field's value as a flag takes it: ``(16, 16)`` -> ``16,16``, ``None`` -> ``off``."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "off" if value is None else str(value)


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    defaults: Any = None,
    exclude: Iterable[str] = (),
) -> list[str]:
    """Add one flag per field of the dataclass ``cls`` to ``parser``; returns the fields added.

    ``defaults`` (an instance of ``cls``, or a mapping of field name -> value) gives the defaults shown in
    the help; the dataclass's own defaults otherwise. The flags themselves default to ``None``.
    """
    hints = typing.get_type_hints(cls)
    skip = set(exclude)
    added = []
    for f in dataclasses.fields(cls):
        meta = _meta(f)
        if f.name in skip or not meta["cli"] or not f.init:
            continue
        if isinstance(defaults, Mapping):
            default = defaults.get(f.name, f.default)
        else:
            default = getattr(defaults, f.name) if defaults is not None else f.default
        help_ = f"{meta['help']} (default: {show_value(default)})"
        names = [flag_of(cls, f.name), *meta["aliases"]]
        hint = _scalar(hints[f.name])
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": help_}
        if hint is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kw)
        elif hint == tuple[int, ...]:
            parser.add_argument(*names, type=_int_tuple, metavar=meta["metavar"] or "W,W,...", **kw)
        else:
            choices = list(meta["choices"]) if meta["choices"] is not None else None
            parser.add_argument(*names, type=hint, choices=choices, metavar=meta["metavar"], **kw)
        added.append(f.name)
    return added


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` whose flags were given on the command line (field name -> value)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if f.init and getattr(args, f.name, None) is not None}


def as_flag(cls: type, name: str, value: Any) -> str:
    """A field's value as it is typed on the command line: ``--g-hidden 16,16``, ``--no-ema``..."""
    flag = flag_of(cls, name)
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    return f"{flag} {show_value(value)}"


def contradictions(cls: type, typed: Mapping[str, Any], saved: Any, *, may_change: Iterable[str] = ()) -> list[str]:
    """The typed fields of ``cls`` whose values differ from the saved config ``saved``, each as
    ``"--lr-g 5.0 (the checkpoint has --lr-g 0.001)"``; fields in ``may_change`` are left out."""
    allowed = set(may_change)
    return [f"{as_flag(cls, k, v)} (the checkpoint has {as_flag(cls, k, getattr(saved, k))})"
            for k, v in typed.items() if k not in allowed and v != getattr(saved, k)]
