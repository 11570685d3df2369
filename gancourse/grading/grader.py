"""Grade one submission: Gradescope's results object (``score``, ``max_score``, ``tests[]``...).

For each question the grader extracts the graded function from the submission, draws the hidden inputs from a
secret per-run seed, runs the function on them in the sandbox, and only then computes the reference answers
itself, from the instructor notebook's solution, and compares. Points are split evenly over the hidden cases;
the public case (seed 0) earns nothing and exists for feedback.
"""
from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from gancourse.grading import protocol
from gancourse.grading.compare import CaseResult, compare_answers
from gancourse.grading.extract import read_submission
from gancourse.grading.registry import Homework, get_homework, load_questions
from gancourse.grading.sandbox import SandboxResult, run_question
from gancourse.grading.spec import QuestionSpec

__all__ = ["grade", "grade_homework", "protected_paths"]

PUBLIC_SEED = 0


def protected_paths(hw: Homework) -> list[Path]:
    """What the graded code must not see: the course's package and the folder of instructor notebooks."""
    return [Path(__file__).resolve().parents[1], hw.path.parent.resolve()]


def _round(x: float) -> float:
    return round(float(x), 4)


def _same_inputs(case: dict) -> dict:
    """The inputs exactly as the sandbox sees them (scalars typed, Expr evaluated, fresh copies)."""
    return protocol.decode_case(protocol.encode_case(case))


def _reference(spec: QuestionSpec, solution, case: dict):
    return protocol.call(solution, _same_inputs(case), spec.framework, spec.grad_wrt)


def _case_result(spec: QuestionSpec, solution, case: dict, answer, error: str | None,
                 ended: str | None) -> tuple[float, CaseResult]:
    """(fraction earned, result) of one case."""
    if answer is None:
        if error and error.startswith(protocol.UNGRADABLE):
            return 0.0, CaseResult(False, "ungradable answer", error[len(protocol.UNGRADABLE):].strip())
        if error:
            return 0.0, CaseResult(False, "raised " + error.split(":", 1)[0].strip(), "it raised " + error.strip())
        return 0.0, CaseResult(False, "no answer", f"no answer: {ended or 'the process ended before this case'}")
    if spec.score is not None:
        try:
            value = protocol.unflatten_output(*answer)
        except (KeyError, ValueError):
            return 0.0, CaseResult(False, "wrong structure", "the answer has an unexpected structure")
        try:
            fraction, message = spec.score(case, value)
            fraction = min(1.0, max(0.0, float(fraction)))
        except Exception as exc:  # noqa: BLE001 -- the scorer rejects a malformed answer
            return 0.0, CaseResult(False, "unscorable", f"the answer could not be scored: {exc}")
        problem = "" if fraction >= 1.0 else "partial credit" if fraction > 0 else "no credit"
        return fraction, CaseResult(fraction >= 1.0, problem, message)
    res = compare_answers(_reference(spec, solution, case), answer, spec.rtol, spec.atol)
    return (1.0 if res.passed else 0.0), res


def _grade_question(spec: QuestionSpec, solution, source: str, seed: int, index: int,
                    protected: list[Path], notes: set[str]) -> tuple[float, list[str]]:
    public = spec.cases(np.random.default_rng(PUBLIC_SEED))[:1] if spec.public else []
    hidden = spec.cases(np.random.default_rng([seed, index]))
    cases = public + hidden
    run: SandboxResult = run_question(source, spec.name, cases, framework=spec.framework, grad_wrt=spec.grad_wrt,
                                      cpu_seconds=spec.cpu_seconds, memory_mb=spec.memory_mb, protected=protected)
    if run.status.get("setup_error"):
        raise RuntimeError(run.status["setup_error"])
    if run.isolation_note:
        notes.add(f"sandbox: {run.isolation_note}")
    if run.reference_use:
        return 0.0, [f"0 points: reference use ({run.reference_use}); the graded code must be your own"]
    ended = run.ended_early
    results = [_case_result(spec, solution, c, a, e, ended) for c, a, e in zip(cases, run.answers, run.errors)]
    lines = []
    if public:
        _, res = results[0]
        lines.append("public case: " + ("passed" if res.passed else res.detail))
    hidden_results = results[len(public):]
    earned = sum(f for f, _ in hidden_results) / max(1, len(hidden_results))
    passed = sum(r.passed for _, r in hidden_results)
    line = f"hidden cases: {passed} of {len(hidden_results)} passed"
    problems = Counter(r.problem for _, r in hidden_results if not r.passed)
    if problems:
        line += " (" + ", ".join(f"{p}: {n}" for p, n in problems.most_common()) + ")"
    lines.append(line)
    if spec.score is not None:  # an outcome: its scorer's message is about the student's own model
        lines.extend(dict.fromkeys(f"  {r.detail}" for _, r in hidden_results if r.detail))
    if ended and not all(r.passed for _, r in results):
        lines.append(f"note: {ended}")
    if run.status.get("output_bytes", 0) > protocol.OUTPUT_HEAD:
        lines.append(f"note: the function printed {run.status['output_bytes']:,} bytes; only the start was kept")
    return spec.points * earned, lines


def grade_homework(hw: Homework, submission: str | Path, *, seed: int | None = None,
                   questions: list | None = None) -> dict[str, Any]:
    """Gradescope results for one submission of ``hw`` (raises ``SubmissionError`` if it cannot be read).

    ``questions`` (from ``load_questions(hw)``) saves rebuilding them for every submission of a batch.
    """
    start = time.monotonic()
    sub = read_submission(submission)
    questions = load_questions(hw) if questions is None else questions
    seed = secrets.randbits(63) if seed is None else int(seed)
    protected = protected_paths(hw)
    notes: set[str] = set()
    tests = []
    for index, (spec, solution) in enumerate(questions):
        extraction = sub.extract(spec.name)
        if extraction.source is None:
            why = (f"0 points: reference use ({extraction.reference_use}); the graded code must be your own"
                   if extraction.reference_use else f"0 points: {extraction.note}")
            score, lines = 0.0, [why]
        else:
            score, lines = _grade_question(spec, solution, extraction.source, seed, index, protected, notes)
        tests.append({"name": spec.name, "score": _round(score), "max_score": _round(spec.points),
                      "output": "\n".join(lines), "visibility": "visible"})
    total = sum(t["score"] for t in tests)
    summary = [f"{hw.id} ({hw.title}): {_round(total):g} of {hw.max_score:g} points"]
    summary += [f"note: {s}" for s in sub.skipped] + sorted(notes)
    return {"score": _round(total), "max_score": _round(hw.max_score),
            "execution_time": _round(time.monotonic() - start), "output": "\n".join(summary),
            "visibility": "visible", "tests": tests}


def grade(homework_id: str, submission: str | Path, *, seed: int | None = None,
          directory: Path | None = None) -> dict[str, Any]:
    """Grade ``submission`` (a .ipynb or .py file) for homework ``homework_id``; see ``grade_homework``."""
    return grade_homework(get_homework(homework_id, directory), submission, seed=seed)
