"""Hostile submissions: each earns nothing it did not earn honestly, grading finishes with valid JSON, and no
process is left behind. The submissions attack ``soft_clip`` (2 points) and answer ``moments`` (3 points)
honestly, so an attack that disturbed the grader would also show in the second question's score.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gancourse.grading.sandbox import privileged
from grading_fixture import write_fixture_homework

MARK = "987.125"  # a sleep duration no other process uses: its presence in /proc marks a leftover
HONEST_MOMENTS = "\n\ndef moments(x):\n    return x.mean(0), x.var(0)\n"
HONEST_SOFT_CLIP = "c * np.tanh(x / c)"


@pytest.fixture(scope="module")
def homework(tmp_path_factory):
    folder = tmp_path_factory.mktemp("homework")
    write_fixture_homework(folder)
    return folder


def leftovers() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if MARK in cmd:
                found.append(f"{entry}: {cmd}")
    return found


def grade_cli(homework: Path, submission: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "GANCOURSE_HOMEWORK_DIR": str(homework)}
    proc = subprocess.run([sys.executable, "-m", "gancourse", "grade", "hw0", str(submission), "--seed", "7", *extra],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(proc.stdout)  # the whole of stdout is one JSON object: nothing was injected


def submit(tmp_path: Path, body: str, header: str = "import numpy as np") -> Path:
    path = tmp_path / "attack.py"
    path.write_text(header + "\n\n\ndef soft_clip(x, c):\n" + textwrap.indent(textwrap.dedent(body), "    ")
                    + HONEST_MOMENTS)
    return path


def scores(result: dict) -> dict[str, float]:
    return {t["name"]: t["score"] for t in result["tests"]}


# name -> (header, body of soft_clip, words expected in soft_clip's feedback)
ZERO_ATTACKS = {
    "infinite loop": ("", "while True:\n    pass", "CPU-time limit"),
    "sys.exit(0)": ("import sys", "sys.exit(0)", "SystemExit"),
    "raise SystemExit(0)": ("", "raise SystemExit(0)", "SystemExit"),
    "os._exit(0)": ("import os", "os._exit(0)", "no answer"),
    "an exception": ("", "raise ValueError('no idea')", "ValueError"),
    "NaN": ("import numpy as np", "return np.full_like(x, np.nan)", "NaN"),
    "inf": ("import numpy as np", "return np.full_like(x, np.inf)", "infinite"),
    "wrong shape": ("import numpy as np", f"return ({HONEST_SOFT_CLIP}).T", "shape"),
    "wrong dtype": ("import numpy as np", f"return ({HONEST_SOFT_CLIP}).astype(np.int64)", "got dtype int64"),
    "__eq__ always True": ("", "class Anything:\n    def __eq__(self, other):\n        return True\n"
                               "    __hash__ = None\nreturn Anything()", "not a numeric array"),
    "rigged ndarray subclass": (
        "import numpy as np",
        "class Rigged(np.ndarray):\n"
        "    def __eq__(self, other):\n        return np.ones(self.shape, bool)\n"
        "    def __array_ufunc__(self, *args, **kwargs):\n        return np.ones(self.shape, bool)\n"
        "    def __array_function__(self, *args, **kwargs):\n        return True\n"
        "    def __bool__(self):\n        return True\n"
        "return np.zeros_like(x).view(Rigged)", "values are off"),
    "monkeypatching numpy inside the function": (
        "import numpy as np\nimport numpy.testing",
        "np.isclose = lambda *a, **k: np.ones(np.shape(a[0]), bool)\nnp.allclose = lambda *a, **k: True\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\nimport builtins\nbuiltins.abs = lambda v: 0 * v\n"
        "return np.zeros_like(x)", "values are off"),
    "memory bomb": ("", "blocks = []\nwhile True:\n    blocks.append(bytearray(50_000_000))", "limit|MemoryError"),
    "one huge allocation": ("", "return bytearray(1 << 40)", "MemoryError"),
}


@pytest.mark.parametrize("name", list(ZERO_ATTACKS))
def test_attack_earns_nothing(homework, tmp_path, name):
    header, body, words = ZERO_ATTACKS[name]
    proc, result = grade_cli(homework, submit(tmp_path, body, header or "import numpy as np"))
    assert scores(result) == {"soft_clip": 0.0, "moments": 3.0}, result
    assert result["score"] == 3.0 and result["max_score"] == 5.0
    feedback = result["tests"][0]["output"]
    assert any(w in feedback for w in words.split("|")), feedback
    assert not leftovers()


def test_top_level_monkeypatching_never_runs(homework, tmp_path):
    header = ("import numpy as np\nimport numpy.testing\nimport builtins\n"
              "np.isclose = lambda *a, **k: np.ones(np.shape(a[0]), bool)\nnp.allclose = lambda *a, **k: True\n"
              "numpy.testing.assert_allclose = lambda *a, **k: None\nbuiltins.isinstance = lambda *a: True\n"
              "raise RuntimeError('top-level code ran')")
    _, result = grade_cli(homework, submit(tmp_path, "return np.zeros_like(x)", header))
    assert scores(result) == {"soft_clip": 0.0, "moments": 3.0}
    assert "top-level code ran" not in json.dumps(result)


def test_fake_results_files_and_printed_results_change_nothing(homework, tmp_path):
    target = tmp_path / "results.json"
    fake = json.dumps({"score": 100, "max_score": 5, "tests": []})
    body = f"""
    import os, sys
    fake = {fake!r}
    for path in ["results.json", "/autograder/results/results.json", os.path.expanduser("~/results.json"),
                 {str(target)!r}]:
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w") as f:
                f.write(fake)
        except OSError:
            pass
    print(fake)
    sys.stdout.flush()
    os.write(1, fake.encode())
    os.write(2, fake.encode())
    return np.zeros_like(x)
    """
    proc, result = grade_cli(homework, submit(tmp_path, body))
    assert scores(result) == {"soft_clip": 0.0, "moments": 3.0}
    assert result["score"] == 3.0
    assert not Path("/autograder/results/results.json").exists()
    if privileged():  # the sandbox user cannot write the grader's folders
        assert not target.exists()


REFERENCE_ATTACKS = {
    "import gancourse": "import gancourse.divergences\nreturn c * np.tanh(x / c)",
    "import it under another name": "mod = __import__('gan' + 'course')\nreturn c * np.tanh(x / c)",
    "importlib": "import importlib\nimportlib.import_module('.'.join(['gancourse', 'nn']))\nreturn c * np.tanh(x / c)",
}


@pytest.mark.parametrize("name", list(REFERENCE_ATTACKS))
def test_importing_the_course_earns_nothing(homework, tmp_path, name):
    _, result = grade_cli(homework, submit(tmp_path, REFERENCE_ATTACKS[name]))
    assert scores(result) == {"soft_clip": 0.0, "moments": 3.0}
    assert "reference use" in result["tests"][0]["output"]


def test_reading_the_instructor_notebook_earns_nothing(homework, tmp_path):
    body = f"""
    import json, os
    for root, _, files in os.walk({str(homework)!r}):
        for name in files:
            if name.endswith('.ipynb'):
                nb = json.load(open(os.path.join(root, name)))
                code = '\\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code')
                ns = {{}}
                exec(code.replace('### BEGIN SOLUTION', '').replace('### END SOLUTION', ''), ns)
                return ns['soft_clip'](x, c)
    return np.zeros_like(x)
    """
    _, result = grade_cli(homework, submit(tmp_path, body))
    assert scores(result)["soft_clip"] == 0.0
    assert scores(result)["moments"] == 3.0


def test_static_reference_use_is_reported(homework, tmp_path):
    path = tmp_path / "lib.py"
    path.write_text("import numpy as np\nfrom gancourse.nn import Tanh\n\n\ndef soft_clip(x, c):\n"
                    "    return c * Tanh().forward(x / c)\n" + HONEST_MOMENTS)
    _, result = grade_cli(homework, path)
    assert scores(result) == {"soft_clip": 0.0, "moments": 3.0}
    assert "imports gancourse" in result["tests"][0]["output"]


SPAWN = f"""
import os
for attempt in (
    lambda: __import__('subprocess').Popen(['sleep', '{MARK}'], start_new_session=True),
    lambda: os.system('setsid sleep {MARK} &'),
    lambda: os.posix_spawn('/bin/sleep', ['sleep', '{MARK}'], dict()),
    lambda: os.fork(),
    lambda: __import__('_posixsubprocess'),
    lambda: __import__('subprocess')._fork_exec(*[None] * 23),
    lambda: __import__('gc').get_objects(),
    lambda: __import__('ctypes').CDLL(None).fork(),
    lambda: __import__('multiprocessing').Process(target=print).start(),
):
    try:
        if attempt() == 0:
            os.execv('/bin/sleep', ['sleep', '{MARK}'])
    except BaseException:
        pass
return c * np.tanh(x / c)
"""


def test_spawned_processes_do_not_outlive_the_question(homework, tmp_path):
    _, result = grade_cli(homework, submit(tmp_path, SPAWN))
    assert scores(result) == {"soft_clip": 2.0, "moments": 3.0}  # the honest answer still counts
    assert not leftovers()


def test_signalling_the_grader_changes_nothing(homework, tmp_path):
    body = """
    import os, signal
    for pid in (os.getppid(), os.getpgid(0), 1):
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
            try:
                os.kill(pid, sig)
            except BaseException:
                pass
    try:
        os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
    except BaseException:
        pass
    return np.zeros_like(x)
    """
    header = "import numpy as np"
    if privileged():  # -1 reaches only the sandbox's own user id there; never run it as root unisolated
        body = body.replace("(os.getppid(), os.getpgid(0), 1)", "(os.getppid(), os.getpgid(0), 1, -1)")
    _, result = grade_cli(homework, submit(tmp_path, body, header))
    assert scores(result) == {"soft_clip": 0.0, "moments": 3.0}


def test_flooding_stdout_is_capped(homework, tmp_path):
    body = "import os\nfor _ in range(200):\n    os.write(1, b'x' * 250_000)\nprint('y' * 10_000_000)\n" \
           "return c * np.tanh(x / c)"
    proc, result = grade_cli(homework, submit(tmp_path, body))
    assert scores(result) == {"soft_clip": 2.0, "moments": 3.0}
    assert len(proc.stdout) < 20_000
    assert "only the start was kept" in result["tests"][0]["output"]
