"""Notebooks run under pytest (nbval) in smoke mode: the kernels inherit this environment.

Run a notebook at full size with papermill instead: ``papermill NB.ipynb out.ipynb -p SMOKE False``.
"""
import os

os.environ.setdefault("GANCOURSE_SMOKE", "1")
