"""A Gradescope autograder zip for one homework: ``setup.sh``, ``run_autograder`` and ``source/``.

``source/`` holds the course package (to install with pip) and the homework's instructor notebook. The
``run_autograder`` script makes the instructor files readable by root only, grades the single ``.ipynb`` or ``.py``
file of ``/autograder/submission`` and writes ``/autograder/results/results.json``. ``AUTOGRADER_ROOT`` moves the
whole layout (the tests run it against a fake ``/autograder`` in a temporary folder).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from gancourse.grading.registry import Homework
from gancourse.io import atomic_write

__all__ = ["build_autograder_zip", "SETUP_SH", "run_autograder_script"]

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when the autograder image is built (choose a base image with Python >= 3.11,
# e.g. Ubuntu 24.04). The course goes into its own virtual environment, /autograder/venv.
set -euo pipefail
cd /autograder/source
apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
{torch}/autograder/venv/bin/python -m pip install "./package{extra}"
"""
_CPU_TORCH = ("/autograder/venv/bin/python -m pip install torch==2.13.0 "
              "--index-url https://download.pytorch.org/whl/cpu  # the CPU build: no GPU on Gradescope\n")


def run_autograder_script(hw: Homework) -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this for every submission; results go to $ROOT/results/results.json.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
PYTHON="${{GANCOURSE_PYTHON:-}}"
if [ -z "$PYTHON" ]; then
  if [ -x "$ROOT/venv/bin/python" ]; then PYTHON="$ROOT/venv/bin/python"; else PYTHON=python3; fi
fi
chmod -R go-rwx "$SOURCE/homework" 2>/dev/null || true
mkdir -p "$ROOT/results"
shopt -s nullglob
files=("$ROOT"/submission/*.ipynb "$ROOT"/submission/*.py)
if [ "${{#files[@]}}" -ne 1 ]; then
  printf '{{"score": 0, "output": "Upload exactly one .ipynb or .py file (found %d).", "tests": []}}\\n' \\
    "${{#files[@]}}" > "$ROOT/results/results.json"
  exit 0
fi
GANCOURSE_HOMEWORK_DIR="$SOURCE/homework" "$PYTHON" -m gancourse grade {hw.id} "${{files[0]}}" \\
  > "$ROOT/results/results.json.tmp" 2> "$ROOT/results/grader.log"
status=$?
if [ $status -eq 0 ]; then
  mv "$ROOT/results/results.json.tmp" "$ROOT/results/results.json"
else
  msg=$(tail -n 1 "$ROOT/results/grader.log" | "$PYTHON" -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')
  printf '{{"score": 0, "output": %s, "tests": []}}\\n' "$msg" > "$ROOT/results/results.json"
fi
exit 0
"""


def _package_files(root: Path) -> list[tuple[Path, str]]:
    files = [(root / "pyproject.toml", "pyproject.toml"), (root / "README.md", "README.md")]
    for path in sorted((root / "gancourse").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((path, str(path.relative_to(root))))
    return files


def build_autograder_zip(hw: Homework, out: Path, *, torch: bool = False) -> Path:
    """Write the autograder zip for ``hw`` to ``out`` (atomically) and return its path."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise FileNotFoundError(f"the course's source tree was not found at {root}; build the zip from a checkout")
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"the autograder file must end in .zip, got {out.name!r}")

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in (("setup.sh", SETUP_SH.format(extra="[torch]" if torch else "", torch=_CPU_TORCH if torch else "")),
                               ("run_autograder", run_autograder_script(hw))):
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o755 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, text)
            for path, arc in _package_files(root):
                z.write(path, f"package/{arc}")
            z.write(hw.path, f"homework/{hw.path.name}")

    return atomic_write(out, write)
