"""The homework sets: one instructor notebook each, ``notebooks/homework/hwN_topic.ipynb`` (id ``hwN``).

``list_homework`` reads ids, titles, questions and points without running any code (the ``question(...)``
decorators in the hidden-tests regions are parsed, not executed). ``load_questions`` builds, in the grader's own
process, the question specs and the reference solutions from the instructor notebook: the graded functions are
extracted exactly as a student's are, so the solution obeys the same rules it grades by.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gancourse.grading.extract import load_notebook, read_submission
from gancourse.grading.notebook import first_heading, hidden_test_sources
from gancourse.grading.spec import QuestionSpec, collecting

__all__ = ["Homework", "homework_dir", "list_homework", "get_homework", "load_questions", "HOMEWORK_ENV"]

HOMEWORK_ENV = "GANCOURSE_HOMEWORK_DIR"


def homework_dir() -> Path:
    """Where the instructor notebooks are: ``$GANCOURSE_HOMEWORK_DIR``, else the checkout's ``notebooks/homework``."""
    env = os.environ.get(HOMEWORK_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "notebooks" / "homework"


@dataclass(frozen=True)
class Homework:
    """One homework set as listed: its id, title, instructor notebook and (question name, points) pairs."""

    id: str
    title: str
    path: Path
    questions: tuple[tuple[str, float], ...]

    @property
    def max_score(self) -> float:
        return float(sum(p for _, p in self.questions))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title,
                "questions": [{"name": n, "points": p} for n, p in self.questions]}


def _declared_questions(nb: dict, path: Path) -> tuple[tuple[str, float], ...]:
    found = []
    for source in hidden_test_sources(nb):
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and getattr(dec.func, "id", getattr(dec.func, "attr", None)) == "question":
                    try:
                        name = ast.literal_eval(dec.args[0])
                        points = ast.literal_eval(next(k.value for k in dec.keywords if k.arg == "points"))
                    except (IndexError, StopIteration, ValueError):
                        raise ValueError(f"{path.name}: question(...) needs a literal name and points=") from None
                    found.append((name, float(points)))
    if not found:
        raise ValueError(f"{path.name} declares no questions (no @question(...) in a hidden-tests region)")
    names = [n for n, _ in found]
    if len(set(names)) != len(names):
        raise ValueError(f"{path.name} declares a question twice: {sorted(n for n in names if names.count(n) > 1)}")
    return tuple(found)


def _homework_id(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def list_homework(directory: Path | None = None) -> list[Homework]:
    """Every homework set in ``directory`` (default ``homework_dir()``), in id order."""
    directory = homework_dir() if directory is None else Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no homework folder at {directory} (set {HOMEWORK_ENV} to the folder of "
                                "the instructor notebooks)")
    out = []
    for path in sorted(directory.glob("hw*.ipynb"), key=lambda p: (len(_homework_id(p)), _homework_id(p))):
        nb = load_notebook(path)
        title = first_heading(nb) or _homework_id(path)
        out.append(Homework(_homework_id(path), title, path, _declared_questions(nb, path)))
    return out


def get_homework(homework_id: str, directory: Path | None = None) -> Homework:
    """The homework with this id, or a ValueError that lists the valid ones."""
    sets = list_homework(directory)
    for hw in sets:
        if hw.id == homework_id:
            return hw
    raise ValueError(f"unknown homework {homework_id!r}; valid ids are: {', '.join(h.id for h in sets) or 'none'}")


def load_questions(hw: Homework) -> list[tuple[QuestionSpec, Callable]]:
    """Each question's spec and reference solution, built from the instructor notebook (trusted code)."""
    nb = load_notebook(hw.path)
    instructor = read_submission(hw.path)  # the solution is extracted exactly as a student's answer is
    if instructor.skipped:
        raise ValueError(f"the instructor notebook {hw.path.name} does not parse: {instructor.skipped[0]}")
    namespace: dict[str, Any] = {"__name__": f"gancourse_homework_{hw.id}"}
    with collecting() as specs:
        for source in hidden_test_sources(nb):
            exec(compile(source, f"{hw.path.name} (hidden tests)", "exec"), namespace)  # noqa: S102 (instructor's)
    declared = [n for n, _ in hw.questions]
    if [s.name for s in specs] != declared:
        raise ValueError(f"{hw.path.name}: the hidden tests declare {[s.name for s in specs]}, expected {declared}")
    out = []
    for spec in specs:
        extraction = instructor.extract(spec.name)
        if extraction.source is None:
            raise ValueError(f"{hw.path.name}: the solution of {spec.name!r} cannot be graded: "
                             f"{extraction.reference_use or extraction.note}")
        solution_ns: dict[str, Any] = {"__name__": f"gancourse_solution_{hw.id}"}
        exec(compile(extraction.source, f"{hw.path.name} ({spec.name})", "exec"), solution_ns)  # noqa: S102
        out.append((spec, solution_ns[spec.name]))
    return out
