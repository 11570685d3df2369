"""The project's set-up files agree with each other, notebooks are stored clean, the NumPy half needs no torch."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
from packaging.requirements import Requirement  # noqa: E402
from packaging.specifiers import SpecifierSet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())
README = (ROOT / "README.md").read_text()
CI_RUN = (ROOT / ".ci" / "run").read_text()
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
TORCH_PIN = "torch==2.13.0"

FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)


def fenced_block_after(text: str, phrase: str) -> str:
    """The body of the first fenced code block after ``phrase`` in ``text``."""
    start = text.find(phrase)
    assert start >= 0, f"README has no {phrase!r}"
    match = FENCE.search(text, start)
    assert match is not None, f"no fenced code block after {phrase!r}"
    return match.group(1).strip()


def shell_commands(script: str) -> list[str]:
    """The commands of a shell script, one per line, without comments, blank lines and the shebang."""
    out = []
    for line in script.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def torch_pins(text: str) -> set[str]:
    return set(re.findall(r"torch==[0-9][\w.+]*", text))


def extras_of(spec: str) -> set[str]:
    """``.[dev,notebooks]`` (maybe quoted, maybe after -e) -> {'dev', 'notebooks'}."""
    m = re.search(r"\.\[([\w,\s-]+)\]", spec)
    assert m is not None, f"no extras in {spec!r}"
    return {e.strip() for e in m.group(1).split(",") if e.strip()}


def env_pip_section() -> list[str]:
    sections = [d["pip"] for d in ENV["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one pip section"
    return sections[0]


# --- (a) environment.yml <-> pyproject.toml ----------------------------------------------------


def test_env_python_matches_requires_python():
    pythons = [d for d in ENV["dependencies"] if isinstance(d, str) and re.match(r"python\s*[=<>]", d)]
    assert len(pythons) == 1, pythons
    version = re.split(r"[=<>]+", pythons[0], maxsplit=1)[1].strip()
    assert version == "3.11"
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert requires.contains(version)
    assert "pip" in ENV["dependencies"]


def test_env_installs_the_project_with_existing_extras():
    pip = env_pip_section()
    project = [p for p in pip if re.search(r"(^|\s)\.(\[|$)", p)]
    assert len(project) == 1, pip
    assert project[0].startswith("-e "), "the conda environment installs the project editable"
    extras = extras_of(project[0])
    assert "dev" in extras
    assert extras <= set(EXTRAS), f"unknown extras {sorted(extras - set(EXTRAS))}; pyproject has {sorted(EXTRAS)}"


def test_env_torch_pin_matches_ci():
    pip = env_pip_section()
    assert torch_pins(" ".join(pip)) == {TORCH_PIN}
    assert torch_pins(CI_RUN) == {TORCH_PIN}
    # and the pin satisfies the project's own torch requirements
    version = TORCH_PIN.split("==")[1]
    for extra, reqs in EXTRAS.items():
        for req in map(Requirement, reqs):
            if req.name == "torch":
                assert req.specifier.contains(version), f"{TORCH_PIN} does not satisfy {req} in [{extra}]"


def test_every_extra_named_anywhere_exists():
    named = set()
    for text in (README, CI_RUN, " ".join(env_pip_section())):
        for m in re.finditer(r"\.\[([\w,\s-]+)\]", text):
            named |= {e.strip() for e in m.group(1).split(",") if e.strip()}
    assert named, "no extras named in README, .ci/run or environment.yml"
    assert named <= set(EXTRAS), sorted(named - set(EXTRAS))


def test_dev_extra_has_what_the_tests_use():
    dev = {Requirement(r).name.lower() for r in EXTRAS["dev"]}
    assert {"pytest", "hypothesis", "pyyaml", "nbval", "torch", "playwright", "jupyterlab", "anywidget"} <= dev


def _requirements(name: str) -> list[tuple[str, Requirement]]:
    return [(extra, req) for extra, reqs in EXTRAS.items() for req in map(Requirement, reqs) if req.name == name]


def test_jupyterlab_is_pinned_to_one_exact_version():
    # the browser tests drive JupyterLab's pages, whose structure changes between releases
    pins = {str(req.specifier) for _, req in _requirements("jupyterlab")}
    assert len(pins) == 1 and re.fullmatch(r"==\d+\.\d+\.\d+", pins.pop()), _requirements("jupyterlab")


def test_installed_jupyterlab_matches_the_pin():
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("jupyterlab")
    except PackageNotFoundError:
        pytest.skip("jupyterlab is not installed")
    (_, req), *_ = _requirements("jupyterlab")
    assert req.specifier.contains(installed), f"jupyterlab {installed} installed, the project pins {req}"


def test_browser_marker_is_registered():
    markers = PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("browser:") for m in markers)


def test_console_script_points_at_main():
    import importlib

    target = PYPROJECT["project"]["scripts"]["gancourse"]
    module, func = target.split(":")
    assert callable(getattr(importlib.import_module(module), func))


# --- (b) .ci/run --------------------------------------------------------------------------------


def test_ci_installs_torch_first_then_the_dev_extra():
    commands = shell_commands(CI_RUN)
    torch_idx = [i for i, c in enumerate(commands) if "pip install" in c and TORCH_PIN in shlex.split(c)]
    project_idx = [i for i, c in enumerate(commands) if "pip install" in c and re.search(r"\.\[", c)]
    assert len(torch_idx) == 1 and len(project_idx) == 1, commands
    assert torch_idx[0] < project_idx[0], "torch must be installed before the project"
    assert "dev" in extras_of(commands[project_idx[0]])
    assert "-e" in shlex.split(commands[project_idx[0]])
    assert commands[0].startswith("set -euo pipefail")


def test_ci_last_command_is_the_readme_test_command():
    test_cmd = fenced_block_after(README, "Run the tests")
    assert test_cmd == "pytest"
    assert shell_commands(CI_RUN)[-1] == test_cmd


def test_ci_installs_chromium_before_the_tests():
    commands = shell_commands(CI_RUN)
    update = [i for i, c in enumerate(commands) if re.fullmatch(r"(\S+=\S+ )*apt-get update( -\w+)*", c)]
    install = [i for i, c in enumerate(commands) if re.search(r"apt-get install (-\S+ )*-y (-\S+ )*chromium$", c)]
    assert len(update) == 1 and len(install) == 1, commands
    assert update[0] < install[0] < len(commands) - 1
    noninteractive = [i for i, c in enumerate(commands) if "DEBIAN_FRONTEND=noninteractive" in c]
    assert noninteractive and noninteractive[0] <= update[0], "apt-get must not ask questions in CI"


def test_ci_script_is_executable():
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    assert CI_RUN.startswith("#!/usr/bin/env bash")


# --- (c) README set-up ---------------------------------------------------------------------------


def test_readme_setup_command():
    setup = fenced_block_after(README, "Set up")
    assert TORCH_PIN in setup
    assert '".[dev]"' in setup or ".[dev]" in setup
    assert "pip install" in setup
    assert "environment.yml" in README


def test_readme_setup_installs_what_opening_the_notebooks_needs():
    # one command: JupyterLab, a kernel, and the widget front ends (ipywidgets, anywidget)
    setup = fenced_block_after(README, "Set up")
    assert len(shell_commands(setup)) == 1
    installed = {Requirement(r).name.lower() for extra in extras_of(setup) for r in EXTRAS[extra]}
    assert {"jupyterlab", "ipykernel", "ipywidgets", "anywidget"} <= installed
    assert {"jupyterlab", "ipykernel", "ipywidgets", "anywidget"} <= {
        Requirement(r).name.lower() for r in EXTRAS["notebooks"]}
    assert "jupyter lab notebooks/" in README


def test_installed_torch_matches_the_pin():
    torch = pytest.importorskip("torch")
    assert torch.__version__.split("+")[0] == TORCH_PIN.split("==")[1]


# --- (d) notebooks --------------------------------------------------------------------------------

NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb")) if (ROOT / "notebooks").is_dir() else []
NOTEBOOKS = [p for p in NOTEBOOKS if ".ipynb_checkpoints" not in p.parts]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_is_stored_clean_with_parameters_cell(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} of {path.name} has outputs"
            assert cell.get("execution_count") is None, f"cell {i} of {path.name} has an execution count"
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert params, f"{path.name} has no cell tagged 'parameters'"
    source = "".join(params[0]["source"]) if isinstance(params[0]["source"], list) else params[0]["source"]
    if path.parent.name == "homework":  # graded code may not import the course's package: a plain SMOKE switch
        assert re.search(r"^SMOKE\s*=", source, re.M), f"the parameters cell of {path.name} does not define SMOKE"
        return
    assert re.search(r"^TIER = default_tier\(\)$", source, re.M), f"the parameters cell of {path.name} does not set TIER"
    first = "".join(nb["cells"][0]["source"])  # a lecture's first cell says which tier runs and how to switch
    assert "**Tier.**" in first and "`lecture`" in first, f"the first cell of {path.name} does not name its tier"


# --- (e) the NumPy half does not need torch -------------------------------------------------------


def _numpy_modules() -> list[str]:
    mods = ["gancourse", "gancourse.nn", "gancourse.toy", "gancourse.cli", "gancourse.errors"]
    for name in ("dynamics", "divergences"):
        if any((ROOT / "gancourse" / name).glob("*.py")):
            mods.append(f"gancourse.{name}")
    return mods


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)


def test_numpy_modules_do_not_import_torch():
    mods = _numpy_modules()
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "assert 'torch' not in sys.modules, sorted(k for k in sys.modules if k.startswith('torch'))\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr


def test_numpy_half_works_with_torch_unavailable():
    # sys.modules['torch'] = None makes every `import torch` fail, as if torch were not installed
    mods = _numpy_modules()
    code = (
        "import importlib, json, sys\n"
        "sys.modules['torch'] = None\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "from gancourse.cli import main\n"
        "sys.exit(main(['toy', '--data', 'ring8', '--steps', '3', '--batch-size', '16', '--g-hidden', '8',"
        " '--d-hidden', '8', '--n-eval', '100', '--json', '--no-progress']))\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["steps"] == 3
