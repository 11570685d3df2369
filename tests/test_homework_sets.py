"""The course's homework sets, graded end to end: the solution earns full marks, the unanswered student version
earns nothing, a generated student version completed with the solutions earns full marks, and a half-answered one
earns partial credit. Each set also builds a Gradescope zip."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gancourse.grading.grader import grade_homework
from gancourse.grading.notebook import MARKERS, fill_in, solution_lines
from gancourse.grading.registry import list_homework

ROOT = Path(__file__).resolve().parents[1]
SETS = list_homework(ROOT / "notebooks" / "homework")
#: the grading seed: without one, every grading draws its hidden cases afresh, and hw4's outcome-graded question
#: then trains on new seeds each time (benchmarks/reference_seeds.py measures the solution over many draws)
SEED = 20261126
IDS = [h.id for h in SETS]


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "gancourse", *args], capture_output=True, text=True, timeout=900,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_at_least_five_sets_are_listed():
    listing = json.loads(cli("homework", "list", "--json"))
    assert len(listing) >= 5
    assert [h["id"] for h in listing] == IDS
    for h in listing:
        assert h["title"] and h["questions"]
        assert all(q["points"] > 0 and q["name"].isidentifier() for q in h["questions"])


@pytest.fixture(scope="module", params=SETS, ids=IDS)
def homework(request, tmp_path_factory):
    hw = request.param
    out = tmp_path_factory.mktemp(hw.id)
    student = Path(cli("homework", "student", hw.id, "--out", str(out)).strip().splitlines()[-1])
    return hw, student


def test_student_version_has_no_solution_or_hidden_text(homework):
    hw, student = homework
    text = student.read_text()
    nb = json.loads(text)
    lines = {line.strip() for cell in nb["cells"] for line in "".join(cell["source"]).splitlines()}
    assert not lines & set(MARKERS)
    assert "@question(" not in text and "gancourse.grading" not in text
    instructor = json.loads(hw.path.read_text())
    distinctive = [line for line in solution_lines(instructor) if len(line) > 25]
    leaked = [line for line in distinctive if line in text]
    assert not leaked, leaked[:3]


def test_solution_earns_full_marks(homework):
    hw, _ = homework
    result = grade_homework(hw, hw.path, seed=SEED)
    assert result["score"] == result["max_score"] == hw.max_score, json.dumps(result, indent=1)


def test_unanswered_student_version_earns_nothing(homework):
    hw, student = homework
    result = grade_homework(hw, student, seed=SEED)
    assert result["score"] == 0.0, json.dumps(result, indent=1)
    assert len(result["tests"]) == len(hw.questions)


def test_completed_student_version_round_trips(homework, tmp_path):
    hw, student = homework
    done = tmp_path / "done.ipynb"
    done.write_text(json.dumps(fill_in(json.loads(student.read_text()), json.loads(hw.path.read_text()))))
    result = grade_homework(hw, done, seed=SEED)
    assert result["score"] == hw.max_score, json.dumps(result, indent=1)


def test_half_answered_earns_partial_credit(homework, tmp_path):
    hw, student = homework
    names = {n for n, _ in hw.questions[: max(1, len(hw.questions) // 2)]}
    half = tmp_path / "half.ipynb"
    half.write_text(json.dumps(fill_in(json.loads(student.read_text()), json.loads(hw.path.read_text()), names)))
    result = grade_homework(hw, half, seed=SEED)
    expected = sum(p for n, p in hw.questions if n in names)
    assert result["score"] == pytest.approx(expected) and 0 < result["score"] < hw.max_score
    for test in result["tests"]:
        assert (test["score"] == test["max_score"]) == (test["name"] in names)


def test_gradescope_zip_has_setup_and_run_autograder(homework, tmp_path):
    hw, _ = homework
    path = Path(cli("homework", "gradescope", hw.id, "--out", str(tmp_path / f"{hw.id}.zip")).strip().splitlines()[-1])
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", f"homework/{hw.path.name}"} <= names
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111


def test_penalty_without_double_backprop_loses_its_points_with_a_hint(tmp_path):
    hw = next(h for h in SETS if h.id == "hw5")
    instructor = json.loads(hw.path.read_text())
    from gancourse.grading.notebook import student_version

    done = fill_in(student_version(instructor), instructor)
    text = json.dumps(done)
    assert "create_graph=True" in text
    broken = tmp_path / "no_create_graph.ipynb"
    broken.write_text(text.replace("create_graph=True", "create_graph=False"))
    result = grade_homework(hw, broken, seed=SEED)
    tests = {t["name"]: t for t in result["tests"]}
    assert tests["gradient_penalty"]["score"] == 0.0
    assert "create_graph=True" in tests["gradient_penalty"]["output"]
    assert result["score"] == hw.max_score - tests["gradient_penalty"]["max_score"]
