"""Figures of lecture 5: the toy-data gallery, snapshot panels, mode coverage over time, the bars of the trick table."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from gancourse.toy import DATASETS, get_dataset  # noqa: E402
from gancourse.toy.timeline import mode_coverage  # noqa: E402
from gancourse.toy.trick_table import RECIPE_ROW, summarize_runs  # noqa: E402
from gancourse.viz.mode_collapse import (  # noqa: E402
    plot_mode_coverage,
    plot_toy_datasets,
    plot_toy_snapshots,
    plot_trick_bars,
)
from gancourse.viz.toy import plot_samples  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_gallery_draws_every_2d_set_and_marks_mixture_centres():
    names = [n for n in DATASETS if get_dataset(n).dim == 2]
    fig = plot_toy_datasets(names, n=300, seed=1)
    axes = fig.axes
    assert len(axes) == len(names) == 6
    for ax, name in zip(axes, names):
        assert ax.has_data()
        n_points = [len(c.get_offsets()) for c in ax.collections]
        if name in ("ring8", "grid25"):
            assert ax.get_title() == f"{name} ({len(get_dataset(name).centers)} modes)"
            assert n_points == [300, len(get_dataset(name).centers)]
        else:
            assert ax.get_title() == name and n_points == [300]
    assert np.allclose(axes[0].collections[0].get_offsets(), get_dataset(names[0]).sample(300, 1))


def test_the_gallery_switches_off_spare_panels_and_refuses_1d_sets():
    fig = plot_toy_datasets(["ring8", "grid25", "spiral", "two_moons"], n=50, ncols=3)
    axes = fig.axes
    assert len(axes) == 6 and [ax.axison for ax in axes] == [True] * 4 + [False] * 2
    with pytest.raises(ValueError, match="2D"):
        plot_toy_datasets(["ring8", "gaussian"])
    with pytest.raises(ValueError, match="2D"):
        plot_toy_datasets([])


def test_snapshot_panels_and_the_final_panel_fill_the_figure():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(100, 2))
    snaps = [(10 * (i + 1), rng.normal(size=(50, 2))) for i in range(3)]
    fig, axes = plt.subplots(2, 4)
    for row in axes:
        plot_toy_snapshots(row[:3], real, snaps, extent=2.5, label="grid25")
        plot_samples(row[-1], real, snaps[-1][1], lambda x: np.full(len(x), 0.5), extent=2.5)
    assert all(ax.has_data() for ax in axes.ravel())
    assert len(fig.axes) == 2 * 4 + 2  # eight panels and the two colour bars of the heat maps
    first = axes[0, 0]
    assert first.get_title() == "grid25, step 10" and first.get_xlim() == (-2.5, 2.5)
    assert np.allclose(first.collections[1].get_offsets(), snaps[0][1])  # the generated samples, over the data
    with pytest.raises(ValueError, match="one axes per snapshot: got 2 axes for 3"):
        plot_toy_snapshots(axes[0, :2], real, snaps, extent=1.0)


def test_mode_coverage_heat_map_shows_the_hq_fraction_per_component():
    counts = [[10, 0, 0], [0, 20, 0], [5, 5, 5]]
    cov = mode_coverage([{"step": 5 * (i + 1), "counts": c} for i, c in enumerate(counts)])
    fig, ax = plt.subplots()
    plot_mode_coverage(ax, cov, n_eval=100, title="grid25")
    assert ax.has_data() and len(fig.axes) == 2  # the heat map and its colour bar
    image = ax.get_images()[0]
    assert np.allclose(image.get_array(), np.array(counts).T / 100)  # rows: components, columns: evaluations
    assert image.get_extent() == [4.5, 15.5, -0.5, 2.5]
    assert image.get_clim() == (0.0, 0.2) and ax.get_title() == "grid25"
    empty = mode_coverage([{"step": 1, "counts": [0, 0]}])
    fig, ax = plt.subplots()
    assert plot_mode_coverage(ax, empty, n_eval=10).get_images()[0].get_clim() == (0.0, 0.01)


def _run(modes, hq):
    return {"modes": modes, "hq": hq, "reverse_kl": 0.1, "counts": [], "diverged": False, "seconds": 1.0}


def test_trick_bars_have_one_bar_per_row_in_each_panel():
    summaries = {"plain NS GAN": summarize_runs([_run(10, 0.2), _run(14, 0.4)]),
                 "hinge loss": summarize_runs([{"diverged": True, "step": 3, "seconds": 1.0}] * 2),
                 "R1 penalty (gamma 0.1)": summarize_runs([_run(20, 0.5), _run(22, 0.7)]),
                 RECIPE_ROW: summarize_runs([_run(25, 0.9), _run(25, 0.95)])}
    fig = plot_trick_bars(summaries, n_modes=25, title="grid25")
    hq_ax, modes_ax = fig.axes
    assert all(len(ax.patches) == len(summaries) for ax in (hq_ax, modes_ax))
    assert [p.get_width() for p in hq_ax.patches] == pytest.approx([30.0, 0.0, 60.0, 92.5])
    assert [p.get_width() for p in modes_ax.patches] == pytest.approx([12.0, 0.0, 21.0, 25.0])
    assert [t.get_text() for t in hq_ax.get_yticklabels()] == list(summaries)
    assert hq_ax.patches[0].get_facecolor() == to_rgba("tab:gray")
    assert modes_ax.patches[-1].get_facecolor() == to_rgba("tab:green")
    assert hq_ax.get_lines()[0].get_xdata()[0] == pytest.approx(30.0)  # the baseline's dashed line
    assert modes_ax.get_xlim() == (0, 25) and fig._suptitle.get_text() == "grid25"

    def error_bar_lengths(ax):
        return np.ptp(np.asarray(ax.collections[0].get_segments())[:, :, 0], axis=1)

    assert error_bar_lengths(hq_ax) == pytest.approx([20.0, 0.0, 20.0, 5.0])  # 2 std over the seeds, in %
    no_err = plot_trick_bars(summaries, n_modes=25, show_err=False).axes[0]
    assert np.allclose(error_bar_lengths(no_err), 0)


def test_trick_bars_need_a_baseline_and_another_row():
    with pytest.raises(ValueError, match="baseline"):
        plot_trick_bars({"plain NS GAN": summarize_runs([_run(1, 0.1)])}, n_modes=8)
