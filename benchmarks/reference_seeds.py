"""How often a homework's reference solution falls short of full marks on random hidden cases; prints JSON.

    python benchmarks/reference_seeds.py                          # hw4's train_generator, 40 case draws
    python benchmarks/reference_seeds.py --homework hw4 --question train_generator --n 100 --seed 3

Questions graded on an outcome (a trained model's modes, HQ and reverse KL) draw their hidden training seeds
afresh at every grading, so the reference solution itself can miss full marks on an unlucky seed. This script
calls the reference solution directly (in this process, no sandbox) on ``n`` draws of the question's hidden cases
and scores each with the question's own scorer. The test suite grades with a fixed seed; this is where the
solution's robustness over seeds is measured.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gancourse.grading.protocol import decode_case, encode_case
from gancourse.grading.registry import get_homework, load_questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", default="hw4")
    parser.add_argument("--question", default="train_generator")
    parser.add_argument("--n", type=int, default=40, help="draws of the question's hidden cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    args = parser.parse_args()
    questions = {spec.name: (spec, solution) for spec, solution in load_questions(get_homework(args.homework))}
    if args.question not in questions:
        parser.error(f"{args.homework} has no question {args.question!r}; it has {sorted(questions)}")
    spec, solution = questions[args.question]
    if spec.score is None:
        parser.error(f"{args.question!r} is graded by comparison with the solution, so the solution always matches")
    rng = np.random.default_rng(args.seed)
    fractions, short, start = [], [], time.process_time()
    for _ in range(args.n):
        for case in spec.cases(rng):
            got = solution(**decode_case(encode_case(case)))  # the arguments the grader's sandbox passes
            fraction, message = spec.score(case, got)
            fractions.append(float(fraction))
            if fraction < 1.0:
                short.append({"case": case, "fraction": float(fraction),
                              "message": message})
    print(json.dumps({"homework": args.homework, "question": args.question, "runs": len(fractions),
                      "below_full_marks": len(short), "min_fraction": min(fractions),
                      "cpu_seconds_per_run": round((time.process_time() - start) / len(fractions), 2),
                      "short": short}, indent=1, default=repr))  # repr: a case may hold arrays


if __name__ == "__main__":
    main()
