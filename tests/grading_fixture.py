"""A small instructor notebook for the grader's tests (fast: NumPy only, two questions)."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SOLUTION = '''import numpy as np


def soft_clip(x: np.ndarray, c: float) -> np.ndarray:
    """c * tanh(x / c), elementwise."""
    return c * np.tanh(x / c)


def moments(x: np.ndarray) -> tuple:
    """(mean, biased variance) over axis 0."""
    return x.mean(0), x.var(0)
'''


def write_fixture_homework(folder: Path) -> Path:
    """Write ``hw0_fixture.ipynb`` (questions soft_clip, 2 points, and moments, 3 points) into ``folder``."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        new_markdown_cell("# Homework 0: a fixture\n\nTwo small questions."),
        new_code_cell('import os\n\nSMOKE = os.environ.get("GANCOURSE_SMOKE", "") == "1" or "CI" in os.environ',
                      metadata={"tags": ["parameters"]}),
        new_code_cell("import numpy as np"),
        new_markdown_cell("## Question 1 (2 points)\n\n### BEGIN SOLUTION\nThe derivative is 1 - tanh^2.\n"
                          "### END SOLUTION"),
        new_code_cell('def soft_clip(x: np.ndarray, c: float) -> np.ndarray:\n    """c * tanh(x / c)."""\n'
                      '    ### BEGIN SOLUTION\n    return c * np.tanh(x / c)  # the distinctive solution line\n'
                      '    ### END SOLUTION'),
        new_code_cell("# Public checks (the hidden tests use other inputs)\n"
                      "assert np.isclose(soft_clip(np.array([0.0]), 2.0)[0], 0.0)"),
        new_code_cell('### BEGIN HIDDEN TESTS\nfrom gancourse.grading import question\n\n\n'
                      '@question("soft_clip", points=2, cpu_seconds=3)\ndef _(rng):\n'
                      '    return [dict(x=rng.normal(size=(3, 4)) * 3, c=float(rng.uniform(0.5, 2))) for _ in range(4)]\n'
                      '### END HIDDEN TESTS'),
        new_code_cell('def moments(x: np.ndarray) -> tuple:\n    """(mean, biased variance) over axis 0."""\n'
                      '    ### BEGIN SOLUTION\n    return x.mean(0), x.var(0)\n    ### END SOLUTION'),
        new_code_cell('### BEGIN HIDDEN TESTS\n@question("moments", points=3, rtol=1e-9)\ndef _(rng):\n'
                      '    return [dict(x=rng.normal(size=(n, 2))) for n in (5, 9, 17)]\n### END HIDDEN TESTS'),
    ]
    path = Path(folder) / "hw0_fixture.ipynb"
    nbformat.write(nb, path)
    return path
