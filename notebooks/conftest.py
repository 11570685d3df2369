"""Notebooks run under pytest (nbval) in smoke mode: the kernels inherit this environment.

Run a notebook in another tier with papermill instead: ``papermill NB.ipynb out.ipynb -p TIER lecture``.
"""
import os

os.environ.setdefault("GANCOURSE_SMOKE", "1")
os.environ.setdefault("GANCOURSE_TIER", "smoke")  # an explicit GANCOURSE_TIER runs that tier under nbval
