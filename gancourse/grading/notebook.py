"""Instructor notebooks and the student versions generated from them.

Markers (nbgrader's spelling), each on a line of its own:

- ``### BEGIN SOLUTION`` / ``### END SOLUTION``: the lines between them (and the markers) become
  ``raise NotImplementedError(...)`` at the marker's indentation (in markdown: a placeholder line);
- ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``: removed with everything between them; a cell left empty
  is dropped.

Student versions are generated, never edited: ``student_version`` is a pure function of the instructor notebook.
"""
from __future__ import annotations

import copy
import re

__all__ = ["student_version", "hidden_test_sources", "MARKERS", "cell_source", "MarkerError"]

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
CODE_PLACEHOLDER = 'raise NotImplementedError("replace this line with your answer")'
MARKDOWN_PLACEHOLDER = "_Write your answer here._"


class MarkerError(ValueError):
    """An instructor notebook's markers do not pair up."""


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _regions(lines: list[str], begin: str, end: str, where: str) -> list[tuple[int, int]]:
    """(first, last) line indices of each begin/end pair; markers must pair up and not nest."""
    out, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == begin:
            if start is not None:
                raise MarkerError(f"{where}: {begin!r} at line {i + 1} before the previous one was closed")
            start = i
        elif text == end:
            if start is None:
                raise MarkerError(f"{where}: {end!r} at line {i + 1} without a {begin!r}")
            out.append((start, i))
            start = None
    if start is not None:
        raise MarkerError(f"{where}: {begin!r} at line {start + 1} is never closed by {end!r}")
    return out


def _strip_cell(source: str, markdown: bool, where: str) -> str:
    lines = source.splitlines(keepends=True)
    for first, last in reversed(_regions(lines, BEGIN_HIDDEN, END_HIDDEN, where)):
        del lines[first:last + 1]
    for first, last in reversed(_regions(lines, BEGIN_SOLUTION, END_SOLUTION, where)):
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        placeholder = MARKDOWN_PLACEHOLDER if markdown else CODE_PLACEHOLDER
        lines[first:last + 1] = [indent + placeholder + "\n"]
    return "".join(lines)


def student_version(nb: dict) -> dict:
    """The student notebook: solutions replaced by placeholders, hidden tests removed, outputs cleared."""
    out = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(out.get("cells", [])):
        kind = cell.get("cell_type")
        source = _strip_cell(cell_source(cell), kind == "markdown", f"cell {i + 1}")
        if not source.strip() and cell_source(cell).strip():
            continue  # the cell held only hidden tests
        cell["source"] = source
        if kind == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    out["cells"] = cells
    return out


def _region_texts(nb: dict, begin: str, end: str, *, code_only: bool = True) -> list[str]:
    """The text strictly between each ``begin``/``end`` pair of the notebook, in order."""
    out = []
    for i, cell in enumerate(nb.get("cells", [])):
        if code_only and cell.get("cell_type") != "code":
            continue
        lines = cell_source(cell).splitlines(keepends=True)
        out.extend("".join(lines[first + 1:last]) for first, last in _regions(lines, begin, end, f"cell {i + 1}"))
    return out


def hidden_test_sources(nb: dict) -> list[str]:
    """The code inside every hidden-tests region, in order."""
    return _region_texts(nb, BEGIN_HIDDEN, END_HIDDEN)


def solution_lines(nb: dict) -> list[str]:
    """The non-blank lines inside solution regions (a student version must contain none of the distinctive ones)."""
    texts = _region_texts(nb, BEGIN_SOLUTION, END_SOLUTION, code_only=False)
    return [line.strip() for text in texts for line in text.splitlines() if line.strip()]


def first_heading(nb: dict) -> str | None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#\s+(.+)$", cell_source(cell), re.M)
            if m:
                return m.group(1).strip()
    return None


def _defined_functions(source: str) -> set[str]:
    return set(re.findall(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", source, re.M))


def fill_in(student_nb: dict, instructor_nb: dict, names: set[str] | None = None) -> dict:
    """A student notebook with the instructor's solutions put back into the cells that define ``names``.

    The k-th placeholder of the student version is the k-th solution region of the instructor notebook (code cells,
    in order). ``names=None`` fills every cell. This is how the tests complete a generated student version, and how
    a TA can see the score of a partly answered notebook.
    """
    solutions = _region_texts(instructor_nb, BEGIN_SOLUTION, END_SOLUTION)
    out = copy.deepcopy(student_nb)
    k = 0
    for cell in out.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        wanted = names is None or bool(_defined_functions(source) & set(names))
        lines = source.splitlines(keepends=True)
        for j, line in enumerate(lines):
            if line.strip() == CODE_PLACEHOLDER:
                if k >= len(solutions):
                    raise MarkerError("the student notebook has more placeholders than the instructor has solutions")
                if wanted:
                    lines[j] = solutions[k] if solutions[k].endswith("\n") else solutions[k] + "\n"
                k += 1
        cell["source"] = "".join(lines)
    return out
