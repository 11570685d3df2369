"""No figure is wider than 11 inches, so its text stays readable in JupyterLab's default column.

JupyterLab shrinks a wider figure to fit its column, text included: a 16-inch figure's 10 pt labels end up
some 6 px high. Three checks keep wide figures from coming back:

1. a static scan of every notebook's code cells and every module of the package: each ``figsize=`` is a
   literal at most 11 inches wide, or a width that goes through :mod:`gancourse.viz.layout`;
2. the figure functions of :mod:`gancourse.viz` that notebooks call, with the largest arguments the notebooks
   use and larger ones: the figure is at most 11 inches wide and no text is below 8 pt;
3. the layout helpers themselves, with the computed widths the notebooks ask of them.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from gancourse.toy import DATASETS, get_dataset  # noqa: E402
from gancourse.toy.trick_table import ROWS, summarize_runs  # noqa: E402
from gancourse.viz.dynamics import plot_eigenvalues  # noqa: E402
from gancourse.viz.images import plot_curves, plot_rows, plot_snapshots  # noqa: E402
from gancourse.viz.layout import MAX_WIDTH, capped_figsize, panel_grid  # noqa: E402
from gancourse.viz.mode_collapse import plot_toy_datasets, plot_trick_bars  # noqa: E402
from gancourse.viz.toy import animation_frame, plot_losses, plot_samples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
MODULES = sorted((ROOT / "gancourse").rglob("*.py"))
#: the helpers whose results are widths that fit (gancourse.viz.layout)
HELPERS = {"capped_figsize", "panel_grid"}
#: names that hold a width that fits
WIDTH_NAMES = {"MAX_WIDTH"}
MIN_FONT_PT = 8.0


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---- 1. the static scan ------------------------------------------------------------------------------------


def _called(node: ast.AST) -> str | None:
    """The name of the function a call calls (``f(...)`` or ``obj.f(...)``), else None."""
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


def _names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def helper_bound_names(tree: ast.AST) -> set[str]:
    """Names bound to a layout helper's result: ``size = capped_figsize(...)``, ``r, c, (w, h) = panel_grid(...)``."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _called(node.value) in HELPERS:
            for target in node.targets:
                bound |= _names(target)
    return bound


def _width_fits(node: ast.AST, bound: set[str]) -> bool:
    """A width expression that cannot exceed MAX_WIDTH: a number <= 11, a name of the layout helpers' results,
    or ``min(...)`` with such an argument."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value <= MAX_WIDTH
    if isinstance(node, ast.Name):
        return node.id in bound or node.id in WIDTH_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in WIDTH_NAMES
    if _called(node) == "min":
        return any(_width_fits(arg, bound) for arg in node.args)
    return False


def _describe(node: ast.AST) -> str:
    return ast.unparse(node)


def wide_figsizes(source: str, bound: set[str] = frozenset()) -> list[str]:
    """Every ``figsize=`` (and ``set_size_inches(...)``) in ``source`` whose width may exceed 11 inches.

    ``bound``: more names known to hold a layout helper's result (bound in a notebook's other cells).
    """
    tree = ast.parse(source)
    bound = helper_bound_names(tree) | set(bound)
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        sizes = [kw.value for kw in node.keywords if kw.arg == "figsize"]
        if _called(node) == "set_size_inches" and node.args:
            sizes.append(ast.Tuple(elts=list(node.args), lineno=node.lineno) if len(node.args) > 1 else node.args[0])
        for size in sizes:
            if _called(size) in HELPERS or (isinstance(size, ast.Name) and size.id in bound):
                continue  # the helpers' sizes fit by construction (checked in section 3)
            if isinstance(size, (ast.Tuple, ast.List)) and size.elts and _width_fits(size.elts[0], bound):
                continue
            bad.append(f"line {size.lineno}: figsize={_describe(size)}")
    return bad


def _code(cell_source: str) -> str:
    """A code cell as Python: IPython magics and shell lines become comments."""
    return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                     for line in cell_source.splitlines())


def notebook_wide_figsizes(path: Path) -> list[str]:
    """:func:`wide_figsizes` of each code cell (numbered as in the notebook, from 0), with the layout helpers'
    names bound anywhere in the notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = {i: _code("".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"}
    bound = set().union(*(helper_bound_names(ast.parse(code)) for code in cells.values()))
    return [f"cell {i}, {bad}" for i, code in cells.items() for bad in wide_figsizes(code, bound)]


def test_the_scan_finds_wide_and_unchecked_computed_widths():
    assert wide_figsizes("fig, ax = plt.subplots(1, 4, figsize=(16, 3.6))") == ["line 1: figsize=(16, 3.6)"]
    assert wide_figsizes("plt.figure(figsize=[11.5, 2])") == ["line 1: figsize=[11.5, 2]"]
    assert len(wide_figsizes("fig, ax = plt.subplots(1, n, figsize=(4 * n, 3))")) == 1
    assert len(wide_figsizes("fig, ax = plt.subplots(figsize=size)")) == 1  # a size of unknown origin
    assert len(wide_figsizes("fig.set_size_inches(12, 4)")) == 1
    assert len(wide_figsizes("fig, ax = plt.subplots(figsize=(min(20, 3 * n), 3))")) == 1
    fine = """
fig, ax = plt.subplots(figsize=(11, 3))
fig, ax = plt.subplots(figsize=(min(11, 3 * n), 3))
fig, ax = plt.subplots(figsize=(MAX_WIDTH, 3))
fig, ax = plt.subplots(figsize=capped_figsize(4 * n, 3))
size = capped_figsize(4 * n, 3)
fig, ax = plt.subplots(figsize=size)
nrows, ncols, (width, height) = panel_grid(n, panel=(3.6, 3.6))
fig, ax = plt.subplots(nrows, ncols, figsize=(width, 2 * height))
fig.set_size_inches(10, 4)
"""
    assert wide_figsizes(fine) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_notebook_figure_is_wider_than_11_inches(path):
    bad = notebook_wide_figsizes(path)
    assert not bad, (f"{path.relative_to(ROOT)}: figures wider than {MAX_WIDTH} inches, or widths computed "
                     f"without a cap (use gancourse.viz.layout.capped_figsize or panel_grid): {bad}")


def test_no_package_figure_is_wider_than_11_inches():
    bad = {str(p.relative_to(ROOT)): found for p in MODULES if (found := wide_figsizes(p.read_text(encoding="utf-8")))}
    assert not bad, f"figures wider than {MAX_WIDTH} inches, or widths computed without a cap: {bad}"


# ---- 2. the figure functions of gancourse.viz ----------------------------------------------------------------


def assert_readable(fig: plt.Figure) -> None:
    """At most 11 inches wide, and every visible, non-empty text at least 8 pt."""
    assert fig.get_figwidth() <= MAX_WIDTH, f"figure {fig.get_figwidth():.2f} inches wide"
    small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT]
    assert not small, f"text below {MIN_FONT_PT} pt: {small[:5]}"


def _images(n, c=1, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, c, 32, 32)).astype(np.float32)


NAMES_2D = [n for n in DATASETS if get_dataset(n).dim == 2]


@pytest.mark.parametrize("ncols", [3, 6, 12])  # notebook 05 draws six sets with the default, 3
def test_the_toy_gallery_fits(ncols):
    fig = plot_toy_datasets(NAMES_2D, n=50, seed=0, ncols=ncols)
    assert_readable(fig)
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == len(NAMES_2D)
    widths = {round(ax.get_position().width * fig.get_figwidth(), 6) for ax in fig.axes}
    assert min(widths) >= 2.5, "panels wrap into rows instead of shrinking below 2.5 inches"


@pytest.mark.parametrize("n_rows", [4, len(ROWS)])  # notebook 05's full table has every row
def test_the_trick_bars_fit(n_rows):
    run = {"modes": 20, "hq": 0.8, "reverse_kl": 0.1, "counts": [], "diverged": False, "seconds": 1.0}
    summaries = {row: summarize_runs([run, {**run, "modes": 22}]) for row in ROWS[:n_rows]}
    assert_readable(plot_trick_bars(summaries, n_modes=25, title="grid25: one trick at a time (8000 steps, "
                                                                  "3 seed(s); recipe 16000 steps, 3 seed(s))"))


@pytest.mark.parametrize("k, max_cols", [(5, 4), (5, 3), (12, 4), (12, 12)])  # notebooks 07, 08: (5, 4); 13: 3
def test_snapshot_grids_fit(k, max_cols):
    snaps = [(100 * i, _images(16, seed=i)) for i in range(k)]
    fig = plot_snapshots(snaps, n_show=16, max_cols=max_cols)
    assert_readable(fig)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in shown] == [f"step {100 * i}" for i in range(k)]
    assert fig.get_figwidth() >= min(k, max_cols, 3) * 2.5, "the grids keep their size"


@pytest.mark.parametrize("width", [10.0, 16.0])  # the notebooks ask for at most 10 (the default)
def test_image_rows_fit(width):
    rows = [_images(10, c=3, seed=i) for i in range(6)]  # notebook 09: six rows of ten
    fig = plot_rows(rows, labels=[f"row {i}" for i in range(6)], width=width)
    assert_readable(fig)
    assert fig.get_figwidth() == pytest.approx(min(width, MAX_WIDTH))


@pytest.mark.parametrize("dim", [1, 2])
def test_toy_sample_panels_keep_their_legends_at_8_pt(dim):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(200, dim)), rng.normal(size=(200, dim))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))  # notebooks 01 and 05 draw three panels a row
    plot_samples(axes[0], real, fake, lambda x: np.full(len(x), 0.5), extent=3.0, centers=np.zeros((1, dim)),
                 title="final: 0 modes, HQ 0%")
    plot_losses(axes[1], {"step": list(range(0, 500, 10)), "d_loss": [1.3] * 50, "g_loss": [0.7] * 50},
                smooth=5, loss="ns")
    assert_readable(fig)


@pytest.mark.parametrize("dim", [1, 2])
def test_animation_frames_fit(dim):
    rng = np.random.default_rng(0)
    heat = rng.uniform(size=(40,) if dim == 1 else (40, 40))
    frame = {"step": 1000, "fake": rng.normal(size=(100, dim)), "heat": heat}
    assert_readable(animation_frame(frame, real=rng.normal(size=(100, dim)), extent=3.0, vmin=0.0, vmax=1.0,
                                    title="grid25"))


def test_dynamics_figures_on_their_own_axes_fit():
    ax = plot_eigenvalues(np.array([0.9 + 0.2j, 0.9 - 0.2j, 1.05]), kind="discrete", title="eigenvalues of F'")
    assert_readable(ax.figure)


def test_curves_on_their_own_axes_fit():
    history = {"step": list(range(50)), "d_loss": list(np.linspace(1, 0.5, 50))}
    assert_readable(plot_curves(history, ["d_loss"], smooth=5).figure)


# ---- 3. the layout helpers ------------------------------------------------------------------------------------


def test_capped_figsize_keeps_the_aspect_and_caps_the_width():
    assert capped_figsize(8, 3) == (8, 3)  # narrow figures are unchanged
    w, h = capped_figsize(3.2 * 7, 4)
    assert w == pytest.approx(MAX_WIDTH) and w / h == pytest.approx(3.2 * 7 / 4)
    assert capped_figsize(30, 6, max_width=10) == pytest.approx((10, 2))
    with pytest.raises(ValueError, match="width"):
        capped_figsize(0, 3)


@pytest.mark.parametrize("n_snapshots", [1, 4, 9, 30])  # notebook 05 takes N_SNAPSHOTS = 4
def test_panel_grid_wraps_panels_into_rows_that_fit(n_snapshots):
    n = n_snapshots + 1  # notebook 05: the snapshots and the final samples, 3.6-inch panels
    nrows, ncols, (width, height) = panel_grid(n, panel=(3.6, 3.6))
    assert width <= MAX_WIDTH and nrows * ncols >= n and (nrows - 1) * ncols < n
    assert ncols == min(n, 3) and width == pytest.approx(3.6 * ncols) and height == pytest.approx(3.6 * nrows)


def test_panel_grid_respects_max_cols_and_scales_a_panel_wider_than_the_page():
    assert panel_grid(7, panel=(2.7, 2.9), max_cols=4)[:2] == (2, 4)
    assert panel_grid(7, panel=(2.7, 2.9), max_cols=3)[:2] == (3, 3)
    assert panel_grid(2, panel=(2.2, 2.0))[:2] == (1, 2)
    assert panel_grid(6, panel=(2.2, 2.0))[2][0] <= MAX_WIDTH  # five 2.2-inch panels: exactly 11 inches
    nrows, ncols, (width, height) = panel_grid(2, panel=(22, 4), extra_height=0.5)
    assert (nrows, ncols) == (2, 1) and width == pytest.approx(MAX_WIDTH) and height == pytest.approx(4 + 0.5)
    with pytest.raises(ValueError, match="n"):
        panel_grid(0)
