"""The grader on a small fixture homework: student versions, extraction, sandbox, batch, CLI and Gradescope zip."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gancourse.cli import main
from gancourse.grading import _child, protocol
from gancourse.grading.extract import read_submission
from gancourse.grading.grader import grade
from gancourse.grading.notebook import MarkerError, student_version
from gancourse.grading.registry import get_homework
from gancourse.grading.sandbox import privileged, run_question
from grading_fixture import SOLUTION, write_fixture_homework


@pytest.fixture()
def homework(tmp_path, monkeypatch):
    folder = tmp_path / "homework"
    folder.mkdir()
    write_fixture_homework(folder)
    monkeypatch.setenv("GANCOURSE_HOMEWORK_DIR", str(folder))
    return folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- student versions ------------------------------------------------------------------------------------------


def test_student_version_has_no_solution_or_hidden_tests(homework):
    nb = json.loads((homework / "hw0_fixture.ipynb").read_text())
    text = json.dumps(student_version(nb))
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "the distinctive solution line",
                   "@question", "derivative is 1 - tanh"):
        assert marker not in text
    assert 'raise NotImplementedError(\\"replace this line with your answer\\")' in text
    assert "Public checks" in text and "def soft_clip(x: np.ndarray, c: float)" in text
    assert len(student_version(nb)["cells"]) == len(nb["cells"]) - 2  # the two hidden-only cells are gone


def test_unpaired_markers_are_reported():
    nb = {"cells": [{"cell_type": "code", "source": "def f():\n    ### BEGIN SOLUTION\n    return 1\n"}]}
    with pytest.raises(MarkerError, match="never closed"):
        student_version(nb)


def test_homework_list_reads_points_without_running_code(homework, capsys):
    assert main(["homework", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing == [{"id": "hw0", "title": "Homework 0: a fixture",
                        "questions": [{"name": "soft_clip", "points": 2.0}, {"name": "moments", "points": 3.0}]}]


def test_student_and_solution_commands_print_the_path_last(homework, tmp_path, capsys):
    assert main(["homework", "student", "hw0", "--out", str(tmp_path / "s")]) == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path == tmp_path / "s" / "hw0_fixture.ipynb" and "BEGIN SOLUTION" not in path.read_text()
    assert main(["homework", "solution", "hw0", "--out", str(tmp_path / "k")]) == 0
    key = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert key.read_text() == (homework / "hw0_fixture.ipynb").read_text().rstrip("\n") + "\n" or \
        json.loads(key.read_text()) == json.loads((homework / "hw0_fixture.ipynb").read_text())


def test_writing_a_student_version_never_replaces_work_unless_forced(homework, tmp_path, capsys):
    target = write(tmp_path / "hw0_fixture.ipynb", "a student's answers")
    assert main(["homework", "student", "hw0", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err and target.read_text() == "a student's answers"
    assert main(["homework", "student", "hw0", "--out", str(tmp_path), "--force"]) == 0
    assert "NotImplementedError" in target.read_text()


def test_unknown_homework_lists_the_valid_ids(homework, capsys):
    assert main(["homework", "student", "hw42", "--out", "x"]) == 2
    assert "unknown homework 'hw42'; valid ids are: hw0" in capsys.readouterr().err


# --- extraction ------------------------------------------------------------------------------------------------


def test_extraction_keeps_only_what_the_function_needs(tmp_path):
    path = write(tmp_path / "s.py", (
        "import numpy as np\nimport os\nSCALE = 2.0\nrng = np.random.default_rng(0)\n"
        "np.tanh = None\n\n\ndef helper(v):\n    return v * SCALE\n\n\n"
        "def soft_clip(x, c):\n    return helper(c * np.tanh(x / c)) / SCALE\n\n\nprint('top level')\n"))
    ex = read_submission(path).extract("soft_clip")
    assert ex.source is not None
    assert "import numpy as np" in ex.source and "SCALE = 2.0" in ex.source and "def helper" in ex.source
    assert "import os" not in ex.source and "np.tanh = None" not in ex.source and "print" not in ex.source
    assert "default_rng" not in ex.source


def test_local_names_do_not_pull_in_top_level_definitions(homework, tmp_path):
    """A loop variable ``_`` or a parameter ``np`` is local: the top-level ``def _`` (which uses the course) and the
    top-level ``x`` are not part of the graded code."""
    path = write(tmp_path / "s.py", (
        "import numpy as np\nfrom gancourse.nn import MLP\nx = MLP\n\n\ndef _(rng):\n    return MLP\n\n\n"
        "def soft_clip(x, c):\n    out = x\n    for _ in range(1):\n        out = c * np.tanh(x / c)\n    return out\n"
        + SOLUTION.split("def moments", 1)[0].replace("import numpy as np", "") + "def moments(x):\n"
        "    return x.mean(0), x.var(0)\n"))
    ex = read_submission(path).extract("soft_clip")
    assert ex.source is not None and "MLP" not in ex.source
    assert grade("hw0", path, seed=2)["score"] == 5.0


def test_a_cell_that_does_not_parse_loses_only_itself(homework, tmp_path):
    nb = json.loads((homework / "hw0_fixture.ipynb").read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "def broken(:\n    pass\n%matplotlib inline\n"})
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "raise RuntimeError('a crashing cell')\n"})
    path = write(tmp_path / "crashy.ipynb", json.dumps(nb))
    result = grade("hw0", path, seed=3)
    assert result["score"] == 5.0
    assert "SyntaxError" in result["output"]


def test_imports_come_before_the_definitions_that_use_them(homework, tmp_path):
    """numpy imported again in a later cell, and used in a default argument: the def must still see it."""
    path = write(tmp_path / "s.py", "def soft_clip(x, c, dtype=np.float64):\n    return (c * np.tanh(x / c)).astype(dtype)\n"
                 "\n\nimport numpy as np\n" + SOLUTION.split("def moments", 1)[0].split("def soft_clip")[0]
                 + "def moments(x):\n    return x.mean(0), x.var(0)\n")
    assert grade("hw0", path, seed=4)["score"] == 5.0


def test_last_definition_wins_and_missing_function_is_named(homework, tmp_path):
    path = write(tmp_path / "s.py", SOLUTION + "\n\ndef soft_clip(x, c):\n    return x\n")
    result = grade("hw0", path, seed=3)
    assert [t["score"] for t in result["tests"]] == [0.0, 3.0]
    path = write(tmp_path / "t.py", "import numpy as np\n\ndef moments(x):\n    return x.mean(0), x.var(0)\n")
    result = grade("hw0", path, seed=3)
    assert "no function named 'soft_clip'" in result["tests"][0]["output"]


def test_a_docstring_that_names_the_course_is_not_reference_use(homework, tmp_path):
    path = write(tmp_path / "s.py", SOLUTION.replace('"""c * tanh(x / c), elementwise."""',
                                                     '"""Unlike gancourse.nn, c * tanh(x / c)."""'))
    assert grade("hw0", path, seed=3)["score"] == 5.0


# --- scores and feedback ---------------------------------------------------------------------------------------


def test_solution_full_marks_student_zero_half_right_partial(homework, tmp_path):
    assert grade("hw0", homework / "hw0_fixture.ipynb")["score"] == 5.0
    student = Path(tmp_path / "student.ipynb")
    student.write_text(json.dumps(student_version(json.loads((homework / "hw0_fixture.ipynb").read_text()))))
    assert grade("hw0", student)["score"] == 0.0
    half = write(tmp_path / "half.py", "import numpy as np\n\ndef soft_clip(x, c):\n"
                 "    return np.where(np.abs(x) < 1000, c * np.tanh(x / c), 0)\n\n"
                 "def moments(x):\n    return x.mean(0), x.var(0, ddof=1)\n")
    result = grade("hw0", half)
    assert result["score"] == 2.0
    assert "relative" in result["tests"][1]["output"]  # the largest error on the public case


def test_hidden_values_never_appear_in_the_feedback(homework, tmp_path):
    wrong = write(tmp_path / "w.py", "import numpy as np\n\ndef soft_clip(x, c):\n    raise ValueError(repr(x))\n\n"
                  "def moments(x):\n    return x.T\n")
    result = grade("hw0", wrong, seed=11)
    hidden = get_homework("hw0")
    from gancourse.grading.registry import load_questions

    for index, (spec, _) in enumerate(load_questions(hidden)):
        for case in spec.cases(np.random.default_rng([11, index])):
            for value in case.values():
                for number in np.ravel(value)[:3]:
                    assert f"{float(number):.6f}"[:8] not in json.dumps(result)


def test_seed_makes_grading_reproducible_and_default_is_fresh(homework):
    a = grade("hw0", homework / "hw0_fixture.ipynb", seed=5)
    b = grade("hw0", homework / "hw0_fixture.ipynb", seed=5)
    assert [t["output"] for t in a["tests"]] == [t["output"] for t in b["tests"]]


# --- the sandbox itself ----------------------------------------------------------------------------------------


def test_case_encoding_round_trips_types_and_functions():
    from gancourse.grading import Expr

    case = {"x": np.arange(6.0).reshape(2, 3), "n": 3, "a": 0.5, "flag": True, "name": "ring8",
            "f": Expr("lambda v: np.sum(A * v)", A=np.ones(3)), "_secret": 42}
    back = protocol.decode_case(protocol.encode_case(case))
    assert set(back) == {"x", "n", "a", "flag", "name", "f"}
    assert type(back["n"]) is int and type(back["a"]) is float and back["flag"] is True and back["name"] == "ring8"
    assert np.array_equal(back["x"], case["x"]) and back["f"](np.arange(3.0)) == 3.0


def test_sandbox_user_network_and_protected_files(tmp_path):
    secret = write(tmp_path / "secret" / "key.txt", "the key")
    src = ("import os\nimport sys\nimport numpy as np\nimport socket\n\ndef probe(x):\n"
           "    try:\n        socket.socket().connect(('127.0.0.1', 9))\n        net = 1\n    except Exception:\n"
           "        net = 0\n"
           "    course = int(any(m.split('.')[0] == 'gancourse' for m in sys.modules))\n"
           f"    return np.array([os.getuid(), net, int(os.path.exists({str(secret)!r})), course])\n")
    run = run_question(src, "probe", [{"x": 1.0}], protected=[secret.parent])
    (structure, arrays), = run.answers
    uid, net, visible, course = arrays[""]
    assert net == 0 and course == 0  # no network, and no module of the course is loaded in the sandbox
    if privileged():
        assert uid != 0 and visible == 0  # another user, and the protected folder is an empty mount
    src = f"def probe(x):\n    return open({str(secret)!r}).read()\n"
    run = run_question(src, "probe", [{"x": 1.0}], protected=[secret.parent])
    assert run.reference_use is not None and run.answers == [None]


@pytest.mark.skipif(not privileged(), reason="user isolation needs root")
def test_without_namespaces_the_grader_says_what_is_missing(tmp_path):
    src = "import os\nimport numpy as np\n\ndef f(x):\n    return np.array(os.getuid())\n"
    run = run_question(src, "f", [{"x": 1.0}], namespaces=False)
    assert run.isolation_note is not None and "no mount or network namespaces" in run.isolation_note
    assert run.answers[0] is not None  # grading still works


def test_unisolated_mode_keeps_the_hook_and_the_cleanup(tmp_path):
    """What an ordinary user gets: the same refusals, as the same user."""
    src = ("import os\n\ndef f(x):\n    try:\n        os.system('sleep 987.5 &')\n        return 1.0\n"
           "    except PermissionError:\n        return 0.0\n")
    run = run_question(src, "f", [{"x": 1.0}], isolate_user=False)
    assert float(run.answers[0][1][""]) == 0.0
    run = run_question("def f(x):\n    __import__('gancourse')\n", "f", [{"x": 1.0}], isolate_user=False)
    assert run.reference_use == "imported gancourse"


def test_kill_everything_reaches_processes_in_new_sessions(tmp_path):
    """The supervisor's clean-up, on a tree whose grandchildren left its session and its parent."""
    script = tmp_path / "tree.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(Path(_child.__file__).parent)!r})\n"
        "import _child\n"
        "lib = _child._libc()\nlib.prctl(36, 1, 0, 0, 0)\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            os.execv('/bin/sleep', ['sleep', '987.75'])\n"
        "        os._exit(0)\n"
        "time.sleep(0.5)\n"
        "print(_child.kill_everything(None))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 3
    time.sleep(0.2)
    assert not any(b"987.75" in Path(f"/proc/{p}/cmdline").read_bytes() for p in os.listdir("/proc")
                   if p.isdigit() and Path(f"/proc/{p}/cmdline").exists())


# --- command line and batch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content, suffix, message", [
    (None, ".ipynb", "does not exist"),
    ("{not json", ".ipynb", "not a valid notebook"),
    ('{"cells": 3}', ".ipynb", "no list of cells"),
    (b"\xff\xfe\x00", ".py", "not UTF-8"),
    ("x = 1", ".txt", "expected a .ipynb or .py file"),
])
def test_grade_exits_2_only_when_grading_cannot_run(homework, tmp_path, capsys, content, suffix, message):
    path = tmp_path / f"sub{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["grade", "hw0", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_grade_exits_0_for_a_zero_score(homework, tmp_path, capsys):
    assert main(["grade", "hw0", str(write(tmp_path / "z.py", "x = 1\n"))]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == 0.0


def test_batch_grading_writes_results_and_csv(homework, tmp_path, capsys):
    subs = tmp_path / "subs"
    write(subs / "alice.py", SOLUTION)
    write(subs / "bob" / "hw0.ipynb", (homework / "hw0_fixture.ipynb").read_text())
    write(subs / "carol.py", "import numpy as np\n\ndef soft_clip(x, c):\n    while True:\n        pass\n")
    write(subs / "dave.ipynb", "not a notebook")
    out = tmp_path / "out"
    assert main(["grade", "hw0", str(subs), "--out", str(out), "--no-progress", "--jobs", "2"]) == 0
    rows = {r["submission"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert float(rows["alice"]["score"]) == 5.0 and float(rows["bob"]["score"]) == 5.0
    assert float(rows["carol"]["score"]) == 0.0 and float(rows["dave"]["score"]) == 0.0
    assert "not a valid notebook" in rows["dave"]["error"]
    assert json.loads((out / "alice" / "results.json").read_text())["score"] == 5.0
    assert "graded 4 submissions" in capsys.readouterr().out


def test_folder_without_out_is_an_error(homework, tmp_path, capsys):
    write(tmp_path / "subs" / "a.py", SOLUTION)
    assert main(["grade", "hw0", str(tmp_path / "subs")]) == 2
    assert "give --out" in capsys.readouterr().err


# --- Gradescope ------------------------------------------------------------------------------------------------


def test_gradescope_zip_runs_against_a_fake_autograder(homework, tmp_path, capsys):
    zpath = tmp_path / "hw0.zip"
    assert main(["homework", "gradescope", "hw0", "--out", str(zpath)]) == 0
    assert Path(capsys.readouterr().out.strip().splitlines()[-1]) == zpath
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zpath) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "homework/hw0_fixture.ipynb", "package/pyproject.toml"} <= names
        z.extractall(root / "source")
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())
    subprocess.run(["bash", "-n", str(root / "source" / "setup.sh")], check=True)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GANCOURSE_PYTHON": sys.executable}
    env.pop("GANCOURSE_HOMEWORK_DIR")
    for text, expected in ((SOLUTION, 5.0), ("import numpy as np\n\ndef moments(x):\n    return x.mean(0), x.var(0)\n", 3.0)):
        write(root / "submission" / "answer.py", text)
        proc = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        results = json.loads((root / "results" / "results.json").read_text())
        assert results["score"] == expected, results
        assert {t["name"] for t in results["tests"]} == {"soft_clip", "moments"}
    write(root / "submission" / "second.py", SOLUTION)
    subprocess.run(["bash", str(root / "run_autograder")], env=env, check=True, timeout=300)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "exactly one" in results["output"]
