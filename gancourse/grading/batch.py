"""Grade a folder of submissions in parallel: ``OUTDIR/<name>/results.json`` and ``OUTDIR/grades.csv``.

A submission is a ``.ipynb`` or ``.py`` file in the folder (named by its stem), or a sub-folder holding exactly
one such file (named by the folder, as in a Gradescope export). Each submission's results are written as soon as
it is graded and ``grades.csv`` is rewritten after each one, so an interrupted batch keeps what it finished.
"""
from __future__ import annotations

import csv
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from gancourse.grading.extract import SubmissionError
from gancourse.grading.grader import grade_homework
from gancourse.grading.registry import Homework, load_questions
from gancourse.io import atomic_write

__all__ = ["find_submissions", "grade_folder"]

SUFFIXES = (".ipynb", ".py")


def find_submissions(folder: Path) -> dict[str, Path]:
    """name -> submission file, for every submission in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix in SUFFIXES:
            found[entry.stem] = entry
        elif entry.is_dir():
            files = [p for p in sorted(entry.iterdir()) if p.is_file() and p.suffix in SUFFIXES]
            if len(files) == 1:
                found[entry.name] = files[0]
    if not found:
        raise FileNotFoundError(f"no submissions (.ipynb or .py files) in {folder}")
    return found


def _csv_text(hw: Homework, rows: dict[str, dict[str, Any]]) -> str:
    names = [n for n, _ in hw.questions]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["submission", "score", "max_score", *names, "error"])
    for sub in sorted(rows):
        r = rows[sub]
        scores = {t["name"]: t["score"] for t in r.get("tests", [])}
        writer.writerow([sub, r.get("score", 0), hw.max_score, *(scores.get(n, 0) for n in names), r.get("error", "")])
    return buf.getvalue()


def grade_folder(hw: Homework, folder: Path, out: Path, *, jobs: int | None = None, seed: int | None = None,
                 progress: bool = True) -> dict[str, dict[str, Any]]:
    """Grade every submission in ``folder`` with ``jobs`` in parallel (default: one per core)."""
    submissions = find_submissions(folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = max(1, jobs or os.cpu_count() or 1)
    rows: dict[str, dict[str, Any]] = {}
    questions = load_questions(hw)

    def one(name: str, path: Path) -> dict[str, Any]:
        try:
            return grade_homework(hw, path, seed=seed, questions=questions)
        except SubmissionError as exc:  # unreadable: a zero with the reason, the batch goes on
            return {"score": 0.0, "max_score": hw.max_score, "execution_time": 0.0, "output": str(exc),
                    "tests": [], "error": str(exc)}

    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=jobs) as pool, tqdm(total=len(submissions), desc=f"grading {hw.id}",
                                                          unit="submission", disable=not progress) as bar:
        futures = {pool.submit(one, name, path): name for name, path in submissions.items()}
        for future in as_completed(futures):
            name = futures[future]
            result = future.result()
            rows[name] = result
            text = json.dumps({k: v for k, v in result.items() if k != "error"}, indent=1)
            atomic_write(out / name / "results.json", lambda fh, t=text: fh.write(t.encode()))
            atomic_write(out / "grades.csv", lambda fh: fh.write(_csv_text(hw, rows).encode()))
            bar.update(1)
    return rows
