"""Grading throughput: one submission alone, then a batch of generated submissions; prints JSON.

    python benchmarks/grade_batch.py                    # hw1, 50 submissions, one job per core
    python benchmarks/grade_batch.py --homework hw2 --n 20 --jobs 1

The batch mixes correct submissions (the generated student version completed with the solutions), partly
answered ones (some questions completed), and hostile ones (an infinite loop, exits, process spawning, a memory
bomb, a stdout flood, importing the course, NaN, an object whose ``==`` is always true, fake results files). It
reports submissions per minute, the slowest submission, and whether every correct one earned full marks and
every hostile one earned nothing it did not earn honestly. Timings are recorded in the docs, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from gancourse.grading.batch import grade_folder
from gancourse.grading.extract import load_notebook
from gancourse.grading.grader import grade_homework
from gancourse.grading.notebook import fill_in, student_version
from gancourse.grading.registry import get_homework

ATTACKS = {
    "loop": "while True:\n        pass",
    "exit": "import os\n    os._exit(0)",
    "systemexit": "raise SystemExit(0)",
    "spawn": "import subprocess\n    subprocess.Popen(['sleep', '600'], start_new_session=True)",
    "memory": "blocks = []\n    while True:\n        blocks.append(bytearray(10 ** 8))",
    "flood": "import os\n    for _ in range(100):\n        os.write(1, b'x' * 1_000_000)",
    "reference": "import gancourse\n    return 0.0",
    "nan": "return float('nan')",
    "always_equal": "class Anything:\n        def __eq__(self, other):\n            return True\n    return Anything()",
    "fake_results": "open('results.json', 'w').write('{\"score\": 100}')\n    print('{\"score\": 100}')\n    return 0",
}


def hostile_source(names: list[str], attack: str) -> str:
    body = ATTACKS[attack]
    return "".join(f"def {name}(*args, **kwargs):\n    {body}\n\n\n" for name in names)


def make_submissions(hw, folder: Path, n: int) -> dict[str, str]:
    """Write ``n`` submissions into ``folder``; returns name -> kind (correct, partial, hostile)."""
    instructor = load_notebook(hw.path)
    student = student_version(instructor)
    names = [q for q, _ in hw.questions]
    kinds: dict[str, str] = {}
    attacks = list(ATTACKS)
    for i in range(n):
        kind = ("correct", "partial", "hostile")[i % 3]
        name = f"student{i:03d}_{kind}"
        if kind == "correct":
            (folder / f"{name}.ipynb").write_text(json.dumps(fill_in(student, instructor)))
        elif kind == "partial":
            subset = {q for j, q in enumerate(names) if (i // 3 + j) % 2 == 0}
            (folder / f"{name}.ipynb").write_text(json.dumps(fill_in(student, instructor, subset)))
        else:
            attack = attacks[(i // 3) % len(attacks)]
            name = f"{name}_{attack}"
            (folder / f"{name}.py").write_text(hostile_source(names, attack))
        kinds[name] = kind
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homework", default="hw1")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    hw = get_homework(args.homework)
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "submissions", Path(tmp) / "results"
        folder.mkdir()
        kinds = make_submissions(hw, folder, args.n)
        single_name = next(n for n, k in kinds.items() if k == "correct")
        t0 = time.perf_counter()
        single = grade_homework(hw, folder / f"{single_name}.ipynb")
        single_wall = time.perf_counter() - t0
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        rows = grade_folder(hw, folder, out, jobs=args.jobs, progress=False)
        wall = time.perf_counter() - t0
    slowest = max(rows, key=lambda k: rows[k]["execution_time"])
    full = hw.max_score
    print(json.dumps({
        "homework": hw.id,
        "submissions": len(rows),
        "jobs": args.jobs or os.cpu_count(),
        "cores": os.cpu_count(),
        "single_submission_wall_s": round(single_wall, 2),
        "single_submission_score": single["score"],
        "batch_wall_s": round(wall, 1),
        "submissions_per_minute": round(60 * len(rows) / wall, 1),
        "slowest_submission": slowest,
        "slowest_submission_s": rows[slowest]["execution_time"],
        "every_correct_full_marks": all(rows[n]["score"] == full for n, k in kinds.items() if k == "correct"),
        "every_partial_strictly_between": all(0 < rows[n]["score"] < full for n, k in kinds.items()
                                              if k == "partial"),
        "hostile_scores": {n: rows[n]["score"] for n, k in kinds.items() if k == "hostile"},
        "load_average_before": [round(v, 2) for v in load_before],
        "python": platform.python_version(),
    }, indent=1))


if __name__ == "__main__":
    main()
