"""Extract, don't execute: the graded function of a submission and only what it needs, as source text.

A submission (a notebook or a ``.py`` file) is parsed cell by cell (a ``.py`` file as a whole, or chunk by chunk
when it does not parse); its top-level code never runs. For a graded function ``name`` the grader keeps

- the last top-level ``def name`` (as running the notebook top to bottom would leave it),
- the top-level functions and classes it calls, transitively,
- the top-level names it uses that are bound to literal constants (``EPS = 1e-8``),
- the imports that bind names it uses.

Anything else (monkeypatching at top level, training loops, plots, other questions) is left out. A graded
function that imports ``gancourse`` or names it is reported as reference use and earns nothing.
"""
from __future__ import annotations

import ast
import json
import re
import symtable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Submission", "Extraction", "read_submission", "SubmissionError", "MAX_SUBMISSION_BYTES"]

MAX_SUBMISSION_BYTES = 20 << 20
_MAGIC = re.compile(r"^\s*[%!]")
_TOP_CHUNK = re.compile(r"^(?:def |class |async def |import |from |@|[A-Za-z_]\w*\s*=)")


class SubmissionError(ValueError):
    """The submission could not be read at all (missing, unreadable, not UTF-8, not a notebook)."""


@dataclass
class Extraction:
    """The source to run for one graded function, or why there is none."""

    source: str | None
    reference_use: str | None = None
    note: str | None = None


@dataclass
class Submission:
    """The parsed top level of a submission: statements in order, and the chunks that did not parse."""

    path: Path
    statements: list[ast.stmt]
    skipped: list[str] = field(default_factory=list)

    def extract(self, name: str) -> Extraction:
        """The imports and definitions that ``name`` needs (see the module docstring)."""
        defs: dict[str, ast.stmt] = {}
        imports: dict[str, ast.stmt] = {}
        for stmt in self.statements:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defs[stmt.name] = stmt
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                if _is_literal(stmt.value):
                    defs[stmt.targets[0].id] = stmt
                else:
                    defs.pop(stmt.targets[0].id, None)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for alias in stmt.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if bound != "*":
                        imports[bound] = stmt
        target = defs.get(name)
        if not isinstance(target, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return Extraction(None, note=f"no function named {name!r} was found at the top level of the submission")
        keep: list[ast.stmt] = []
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            node = defs.get(current) or imports.get(current)
            if node is None:
                continue
            if node not in keep:
                keep.append(node)
            todo.extend(_names_used(node))
        why = _reference_use(keep)
        if why:
            return Extraction(None, reference_use=why)
        order = {id(s): i for i, s in enumerate(self.statements)}
        # imports first (a default argument or decorator may use them when the def runs), then in notebook order
        keep.sort(key=lambda s: (not isinstance(s, (ast.Import, ast.ImportFrom)), order[id(s)]))
        future = "from __future__ import annotations\n"
        return Extraction(future + "\n\n".join(ast.unparse(s) for s in keep if not _is_future(s)) + "\n")


def _is_future(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _global_names(table: symtable.SymbolTable) -> set[str]:
    """Names a scope (and the scopes inside it) looks up in the module: not parameters, locals or loop variables."""
    names = {sym.get_name() for sym in table.get_symbols() if sym.is_global() and sym.is_referenced()}
    for child in table.get_children():
        names |= _global_names(child)
    return names


def _names_used(node: ast.stmt) -> set[str]:
    """The module-level names a top-level statement needs (decorators, defaults, and the body's global names)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return set()
    top = symtable.symtable(ast.unparse(node), "<submission>", "exec")
    own = {node.name} if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else set()
    used = {sym.get_name() for sym in top.get_symbols() if sym.is_referenced()}
    return (used | _global_names(top)) - own


_COURSE_STRING = re.compile(r"^\s*gancourse(\.[\w.]*)?\s*$|gancourse[/\\]")


def _mentions_course(text: str) -> bool:
    """A string that names the package as a module (``"gancourse.nn"``) or as a path (``".../gancourse/..."``)."""
    return bool(_COURSE_STRING.search(text))


def _reference_use(nodes: list[ast.stmt]) -> str | None:
    for top in nodes:
        for n in ast.walk(top):
            if isinstance(n, ast.Import) and any(a.name.split(".")[0] == "gancourse" for a in n.names):
                return "the graded code imports gancourse"
            if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "gancourse":
                return "the graded code imports gancourse"
            if isinstance(n, ast.Name) and n.id == "gancourse":
                return "the graded code uses gancourse"
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and _mentions_course(n.value):
                return "the graded code refers to gancourse in a string"
    return None


def _parse_chunks(text: str, skipped: list[str], where: str) -> list[ast.stmt]:
    """Parse ``text``; if it fails, parse it in top-level chunks and keep the ones that parse."""
    try:
        return ast.parse(text).body
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        first_error = exc
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _TOP_CHUNK.match(line)] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    out: list[ast.stmt] = []
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        chunk = "".join(lines[a:b])
        try:
            out.extend(ast.increment_lineno(ast.parse(chunk), a).body)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
    line = getattr(first_error, "lineno", None)
    skipped.append(f"{where}: {type(first_error).__name__}" + (f" at line {line}" if line else "")
                   + " (the parts around it were still read)")
    return out


def _strip_magics(source: str) -> str:
    return "".join("\n" if _MAGIC.match(line) else line for line in source.splitlines(keepends=True))


def notebook_code_cells(nb: dict) -> list[str]:
    """The source of each code cell of a parsed notebook, as one string each."""
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError("the notebook has no list of cells")
    out = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    return out


def load_notebook(path: Path) -> dict:
    """A notebook file as a dict, with a clear error if it is not one."""
    try:
        nb = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path} is not a valid notebook: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionError(f"{path} is not a valid notebook: it has no list of cells")
    return nb


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SubmissionError(f"{path} is not a file")
        if size > MAX_SUBMISSION_BYTES:
            raise SubmissionError(f"{path} is too large ({size >> 20} MiB; at most {MAX_SUBMISSION_BYTES >> 20} MiB)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SubmissionError(f"{path} does not exist") from None
    except OSError as exc:
        raise SubmissionError(f"{path} could not be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path} is not UTF-8 text") from None


def read_submission(path: str | Path) -> Submission:
    """Parse a ``.ipynb`` or ``.py`` submission (cell by cell); never runs any of it."""
    path = Path(path)
    skipped: list[str] = []
    if path.suffix == ".ipynb":
        statements: list[ast.stmt] = []
        for i, cell in enumerate(notebook_code_cells(load_notebook(path))):
            statements.extend(_parse_chunks(_strip_magics(cell), skipped, f"code cell {i + 1}"))
        return Submission(path, statements, skipped)
    if path.suffix == ".py":
        return Submission(path, _parse_chunks(_read_text(path), skipped, path.name), skipped)
    raise SubmissionError(f"{path} is not a submission: expected a .ipynb or .py file")
