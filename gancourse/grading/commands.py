"""The ``gancourse homework`` and ``gancourse grade`` sub-commands (wired into ``gancourse.cli``).

```
gancourse homework list [--json]
gancourse homework student ID --out DIR
gancourse homework solution ID --out DIR
gancourse homework gradescope ID --out FILE.zip
gancourse grade ID SUBMISSION            # Gradescope results JSON on stdout
gancourse grade ID DIR --out OUTDIR      # OUTDIR/<name>/results.json and OUTDIR/grades.csv
```
``grade`` exits 0 whenever grading completed, whatever the score, and 2 when it could not run.
"""
from __future__ import annotations

import argparse
import json

from pathlib import Path

__all__ = ["add_parsers", "run_homework", "run_grade"]


def add_parsers(sub) -> None:
    hw = sub.add_parser("homework", help="list homework sets, write student or instructor versions, build an "
                                         "autograder zip",
                        description="Homework sets: one instructor notebook each, from which everything is derived.")
    hsub = hw.add_subparsers(dest="action", metavar="ACTION")
    hsub.required = True
    ls = hsub.add_parser("list", help="ids, titles, questions and points")
    ls.add_argument("--json", action="store_true", help="print JSON: [{id, title, questions: [{name, points}]}]")
    for action, what in (("student", "the student version (no solutions, no hidden tests)"),
                         ("solution", "the instructor notebook")):
        p = hsub.add_parser(action, help=f"write {what}; prints its path as the last line")
        p.add_argument("id", metavar="ID", help="homework id, e.g. hw1 (see `gancourse homework list`)")
        p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the notebook into")
        p.add_argument("--force", action="store_true",
                       help="replace a notebook of the same name already in DIR (default: refuse, it may hold work)")
    gs = hsub.add_parser("gradescope", help="write a Gradescope autograder zip (setup.sh, run_autograder)")
    gs.add_argument("id", metavar="ID", help="homework id")
    gs.add_argument("--out", type=Path, required=True, metavar="FILE.zip", help="the zip to write")

    gr = sub.add_parser("grade", help="grade a submission (JSON on stdout) or a folder of them (--out)",
                        description="Grade a .ipynb or .py submission in a sandbox; print Gradescope's results "
                                    "object. With a folder, grade every submission in it in parallel and write "
                                    "OUTDIR/<name>/results.json and OUTDIR/grades.csv.")
    gr.add_argument("id", metavar="ID", help="homework id, e.g. hw1")
    gr.add_argument("submission", type=Path, metavar="SUBMISSION", help="a .ipynb or .py file, or a folder of them")
    gr.add_argument("--out", type=Path, metavar="OUTDIR", help="where batch results go (needed for a folder)")
    gr.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: one per core)")
    gr.add_argument("--seed", type=int, default=None,
                    help="seed of the hidden inputs (default: a fresh secret one per run)")
    gr.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                    help="show a progress bar for a folder (default: on)")


def _write_notebook(nb: dict, out: Path, name: str, force: bool) -> Path:
    from gancourse.io import atomic_write

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if (out / name).exists() and not force:
        raise ValueError(f"{out / name} already exists (it may hold someone's work); choose another --out, "
                         "or add --force to replace it")
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    return atomic_write(out / name, lambda fh: fh.write(text.encode("utf-8")))


def run_homework(args: argparse.Namespace) -> int:
    from gancourse.grading.extract import load_notebook
    from gancourse.grading.notebook import student_version
    from gancourse.grading.registry import get_homework, list_homework

    if args.action == "list":
        sets = list_homework()
        if args.json:
            print(json.dumps([h.to_dict() for h in sets]))
        else:
            for h in sets:
                qs = ", ".join(f"{n} ({p:g})" for n, p in h.questions)
                print(f"{h.id}  {h.title}  [{h.max_score:g} points: {qs}]")
        return 0
    hw = get_homework(args.id)
    if args.action == "gradescope":
        from gancourse.grading.gradescope import build_autograder_zip
        from gancourse.grading.registry import load_questions

        torch = any(spec.framework == "torch" for spec, _ in load_questions(hw))
        print(build_autograder_zip(hw, args.out, torch=torch))
        return 0
    nb = load_notebook(hw.path)
    out = _write_notebook(student_version(nb) if args.action == "student" else nb, args.out, hw.path.name,
                          args.force)
    print(out)
    return 0


def run_grade(args: argparse.Namespace) -> int:
    from gancourse.grading.registry import get_homework

    hw = get_homework(args.id)
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, got {args.jobs}")
    if args.submission.is_dir():
        from gancourse.grading.batch import grade_folder

        if args.out is None:
            raise ValueError(f"{args.submission} is a folder: give --out OUTDIR for the results")
        rows = grade_folder(hw, args.submission, args.out, jobs=args.jobs, seed=args.seed, progress=args.progress)
        scores = [r["score"] for r in rows.values()]
        print(f"graded {len(rows)} submissions of {hw.id}: mean {sum(scores) / len(scores):.2f} of "
              f"{hw.max_score:g}; results in {args.out}, scores in {args.out / 'grades.csv'}")
        return 0
    from gancourse.grading.grader import grade_homework

    if args.out is not None:
        raise ValueError("--out is for grading a folder; a single submission's results go to stdout")
    print(json.dumps(grade_homework(hw, args.submission, seed=args.seed), indent=1))
    return 0



