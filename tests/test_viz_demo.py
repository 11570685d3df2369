"""``gancourse demo``'s figures, read from the figure objects: legends, point styles, reference lines, frames.

Runs are a few dozen steps of the presets; the figures that ``run_demo`` saves are recorded (and still written).
"""
from __future__ import annotations

import json
import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.colors import to_rgb, to_rgba_array  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

import gancourse.viz.demo as demo  # noqa: E402
import gancourse.viz.toy as viz_toy  # noqa: E402
from gancourse.toy import ToyGAN, get_dataset, plain_gan  # noqa: E402
from gancourse.toy.distributions import DATASETS  # noqa: E402
from gancourse.viz.demo import run_demo  # noqa: E402
from gancourse.viz.toy import Snapshot, plot_losses, plot_samples  # noqa: E402

LOG2, LOG4 = math.log(2.0), math.log(4.0)
MAX_WIDTH_IN = 11.0  # a notebook column


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def recorded(monkeypatch):
    """The figures ``run_demo`` saves (by file name), the frames it animates and the figures of those frames."""
    got: dict = {"figures": {}, "frames": None, "frame_figures": []}
    save_figure, save_animation = demo._save_figure, viz_toy.save_animation
    frame = getattr(viz_toy, "animation_frame", None)

    def record_figure(fig, path):
        got["figures"][path.name] = fig
        save_figure(fig, path)

    def record_animation(frames, path, **kwargs):
        got["frames"] = list(frames)
        return save_animation(frames, path, **kwargs)

    def record_frame(fr, **kwargs):
        fig = frame(fr, **kwargs)
        got["frame_figures"].append(fig)
        return fig

    monkeypatch.setattr(demo, "_save_figure", record_figure)
    monkeypatch.setattr(viz_toy, "save_animation", record_animation)
    monkeypatch.setattr(viz_toy, "animation_frame", record_frame, raising=False)
    return got


def legend_entries(ax) -> dict:
    """Legend label -> the artist it stands for, in the axes or its twins."""
    legend = ax.get_legend()
    assert legend is not None
    handles = {}
    for other in ax.get_shared_x_axes().get_siblings(ax):
        h, labels = other.get_legend_handles_labels()
        handles.update(zip(labels, h))
    texts = [t.get_text() for t in legend.get_texts()]
    missing = [t for t in texts if t not in handles]
    assert not missing, f"legend entries that stand for nothing drawn: {missing}"
    return {t: handles[t] for t in texts}


def n_drawn(artist) -> int:
    """How many points (or non-empty histogram bars, or raised vertices of a step histogram) an artist draws."""
    if hasattr(artist, "get_offsets"):
        return len(artist.get_offsets())
    if isinstance(artist, Polygon):
        return int(np.count_nonzero(artist.get_xy()[:, 1] > 0))
    if isinstance(artist, Rectangle):
        bars = next(c for c in artist.axes.containers if artist in c)
        return sum(bar.get_height() > 0 for bar in bars)
    return len(artist.get_ydata())


def scatter_by_label(ax, label: str):
    found = [c for c in ax.collections if c.get_label() == label]
    assert len(found) == 1, [c.get_label() for c in ax.collections]
    return found[0]


def luminance(rgb) -> float:
    r, g, b = rgb[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def dashed_horizontal_lines(ax) -> dict[str, tuple[float, tuple]]:
    """Label -> (y, colour) of the dashed horizontal lines of ``ax``."""
    out = {}
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if line.get_linestyle() == "--" and y.size and np.all(y == y[0]):
            out[line.get_label()] = (float(y[0]), to_rgb(line.get_color()))
    return out


def short_demo(tmp_path, **kwargs) -> dict:
    kwargs = {"steps": 20, "gif": False, "progress": False, "n_frames": 4, **kwargs}
    return run_demo(out=tmp_path, **kwargs)


# --- 1. the left panel's legend lists only what it draws ---------------------------------------------------


def test_the_real_data_panel_lists_only_the_real_points(tmp_path, recorded):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no legend without labelled artists, nothing else either
        short_demo(tmp_path)
    fig = recorded["figures"]["samples.png"]
    left, right = fig.axes[0], fig.axes[1]
    entries = legend_entries(left)
    assert list(entries) == ["real"] and n_drawn(entries["real"]) == 2500
    assert not any(c.get_label() == "generated" for c in left.collections)
    entries = legend_entries(right)
    assert list(entries) == ["real", "generated", "mode centres"]
    assert [n_drawn(entries[k]) for k in entries] == [2500, 2500, 25]


def test_empty_or_missing_samples_are_neither_drawn_nor_listed():
    real = get_dataset("ring8").sample(200, 0)
    for fake in (real[:0], None):  # the old call with an empty array, and None
        fig, ax = plt.subplots()
        plot_samples(ax, real, fake, lambda x: np.full(len(x), 0.5), extent=1.5)
        assert list(legend_entries(ax)) == ["real"]
    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_samples(ax, real[:0], None, extent=1.5)
    assert ax.get_legend() is None and not ax.collections


# --- 2. real points stand out from the heatmap, generated ones from real ones -----------------------------


def test_real_points_are_dark_and_opaque_with_a_light_edge_and_generated_ones_are_off_the_colour_map(
        tmp_path, recorded):
    short_demo(tmp_path)
    right = recorded["figures"]["samples.png"].axes[1]
    real, fake = scatter_by_label(right, "real"), scatter_by_label(right, "generated")
    face, edge = real.get_facecolors(), real.get_edgecolors()
    assert face.shape[0] >= 1 and all(luminance(c) < 0.2 for c in face)
    assert all(c[3] == 1.0 for c in face) and (real.get_alpha() in (None, 1.0))
    assert all(luminance(c) > 0.8 for c in edge) and real.get_linewidths()[0] > 0
    assert real.get_sizes()[0] >= 5
    assert real.get_zorder() > fake.get_zorder()  # over the generated samples: the data stays visible
    fake_rgb = fake.get_facecolors()[0][:3]
    assert np.linalg.norm(fake_rgb - face[0][:3]) > 0.8  # far from the real points' colour
    viridis = to_rgba_array(colormaps["viridis"](np.linspace(0, 1, 256)))[:, :3]
    assert np.min(np.linalg.norm(viridis - fake_rgb, axis=1)) > 0.4  # and from every colour of the heatmap
    assert fake.get_alpha() >= 0.5


# --- 3. dashed reference lines at the equilibrium of the cross-entropy losses ------------------------------


def _history(steps: int = 60):
    gan = ToyGAN(plain_gan("ring8", steps=steps, batch_size=16, g_hidden=(8,), d_hidden=(8,), n_eval=50))
    return gan.train(progress=False)


def test_non_saturating_losses_get_log4_for_d_and_log2_for_g_in_their_curves_colours():
    h = _history()
    fig, ax = plt.subplots()
    plot_losses(ax, h, smooth=3, loss="ns")
    refs = dashed_horizontal_lines(ax)
    assert len(refs) == 2
    (d_label, (d_y, d_color)), (g_label, (g_y, g_color)) = sorted(refs.items())
    assert d_label.startswith("D loss") and "log 4" in d_label and d_y == pytest.approx(LOG4)
    assert g_label.startswith("G loss") and "log 2" in g_label and g_y == pytest.approx(LOG2)
    curves = {line.get_label(): to_rgb(line.get_color()) for line in ax.get_lines()}
    assert d_color == curves["d loss"] and g_color == curves["g loss"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["d loss", "g loss"] and d_label in labels and g_label in labels
    lo, hi = ax.get_ylim()
    assert lo < LOG2 and LOG4 < hi


def test_the_minimax_generator_loss_has_its_reference_at_minus_log2():
    fig, ax = plt.subplots()
    plot_losses(ax, _history(), smooth=3, loss="gan")
    refs = {label.split()[0]: y for label, (y, _) in dashed_horizontal_lines(ax).items()}
    assert refs == {"D": pytest.approx(LOG4), "G": pytest.approx(-LOG2)}


def test_other_losses_and_no_loss_draw_no_reference_and_unknown_ones_are_refused():
    h = _history(30)
    for loss in ("wgan", "hinge", "lsgan", None):
        fig, ax = plt.subplots()
        plot_losses(ax, h, smooth=3, loss=loss)
        assert not dashed_horizontal_lines(ax) and len(ax.get_lines()) == 4
    assert viz_toy.equilibrium_losses("hinge") == {}
    with pytest.raises(ValueError, match="valid options are"):
        plot_losses(plt.subplots()[1], h, loss="bce")
    fig, ax = plt.subplots()
    plot_losses(ax, {"step": [], "d_loss": [], "g_loss": [], "penalty": []}, loss="ns")
    assert not ax.get_lines() and ax.get_legend() is None  # nothing to compare with: no reference either


def test_the_demo_losses_figure_has_the_references_of_its_loss(tmp_path, recorded):
    short_demo(tmp_path, steps=40)
    ax = recorded["figures"]["losses.png"].axes[0]
    ys = sorted(y for y, _ in dashed_horizontal_lines(ax).values())
    assert ys == pytest.approx([LOG2, LOG4])


# --- 4. the animation starts at step 0 and has a colour bar ------------------------------------------------


def test_the_animation_runs_from_step_0_to_the_last_with_a_d_colour_bar(tmp_path, recorded):
    short_demo(tmp_path, steps=30, gif=True, n_frames=4)
    steps = [fr["step"] for fr in recorded["frames"]]
    assert steps == [0, 8, 16, 24, 30]  # a frame before training, every ceil(30 / 4) steps, and the last
    assert (tmp_path / "training.gif").is_file()
    figures = recorded["frame_figures"]
    assert len(figures) == len(steps)
    for fig, step in zip(figures, steps):
        ax, bar = fig.axes
        assert ax.get_title() == f"grid25, step {step}"
        assert bar.get_ylabel() == "D(x)"
        assert ax.get_images()[0].get_clim() == (0.0, 1.0)  # one scale for every frame
        assert fig.get_size_inches()[0] <= MAX_WIDTH_IN
    first = figures[0].axes[0]
    assert [len(c.get_offsets()) for c in first.collections] == [600, 1000]  # generated, then the data over it


def test_frames_of_logits_share_one_colour_scale_over_all_frames(tmp_path, recorded):
    heat = [np.full((5, 5), v) for v in (-2.0, 3.0)]
    frames = [Snapshot(step=i, fake=np.zeros((3, 2)), heat=h) for i, h in enumerate(heat)]
    viz_toy.save_animation(frames, tmp_path / "a.gif", real=np.zeros((4, 2)), extent=1.0, label="critic")
    for fig, step in zip(recorded["frame_figures"], (0, 1)):
        ax, bar = fig.axes
        assert ax.get_images()[0].get_clim() == (-2.0, 3.0)
        assert bar.get_ylabel() == "critic" and ax.get_title() == f"step {step}"


# --- 5. any dataset and either preset ----------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"data": "grid26"}, "unknown data 'grid26'; valid options are: " + ", ".join(map(repr, DATASETS))),
    ({"preset": "best"}, "unknown preset 'best'; valid options are: 'recommended', 'plain'"),
])
def test_unknown_data_or_preset_is_refused_before_training(tmp_path, monkeypatch, kwargs, message):
    def refuse(self):
        raise AssertionError("training started")

    monkeypatch.setattr(ToyGAN, "train_step", refuse)
    out = tmp_path / "out"
    with pytest.raises(ValueError) as info:
        run_demo(out=out, steps=5, **kwargs)
    assert str(info.value) == message
    assert not out.exists()


def test_ring8_is_framed_titled_and_recorded_as_ring8(tmp_path, recorded, capsys):
    result = short_demo(tmp_path, data="ring8")
    out = capsys.readouterr().out
    assert "Training the recommended recipe on ring8 (20 steps, seed 0)" in out
    assert "PacGAN" not in out and "VEEGAN" not in out
    assert "gancourse recipe (seed 0)" in out and "published rows exist only for grid25" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"] == result["data"] == "ring8" and metrics["preset"] == "recommended"
    fig = recorded["figures"]["samples.png"]
    assert "ring8" in fig._suptitle.get_text() and "recommended recipe" in fig._suptitle.get_text()
    extent = viz_toy.data_extent(get_dataset("ring8"))
    real = scatter_by_label(fig.axes[1], "real").get_offsets()
    assert 1.2 < extent < 1.6 and np.abs(real).max() < extent  # framed: every point in, no large void around
    for ax in fig.axes[:2]:
        assert ax.get_xlim() == pytest.approx((-extent, extent)) and ax.get_ylim() == pytest.approx((-extent, extent))
        assert ax.get_images()[0].get_extent() == pytest.approx([-extent, extent, -extent, extent])
    assert fig.axes[1].get_title().startswith("generated: ") and "/8 modes" in fig.axes[1].get_title()
    assert recorded["figures"]["losses.png"].axes[0].get_title().startswith("ring8, recommended recipe")


def test_the_plain_preset_trains_the_plain_gan(tmp_path, recorded, capsys, monkeypatch):
    configs = []

    class Recording(ToyGAN):
        def __init__(self, cfg):
            configs.append(cfg)
            super().__init__(cfg)

    monkeypatch.setattr(demo, "ToyGAN", Recording)
    short_demo(tmp_path, data="two_moons", preset="plain", seed=2)
    assert configs == [plain_gan("two_moons", seed=2, steps=20)]
    out = capsys.readouterr().out
    assert "Training the plain GAN on two_moons" in out and "gancourse plain GAN (seed 2)" in out
    assert "energy" in out and "published rows exist only for grid25" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["data"], metrics["preset"], metrics["seed"]) == ("two_moons", "plain", 2)
    fig = recorded["figures"]["samples.png"]
    assert "two_moons, plain GAN" in fig._suptitle.get_text()
    assert fig.axes[1].get_title().startswith("generated: energy distance")


def test_a_1d_dataset_gets_histograms_under_the_d_curve(tmp_path, recorded):
    short_demo(tmp_path, data="mixture1d", gif=True, n_frames=2)
    fig = recorded["figures"]["samples.png"]
    right = fig.axes[1]
    entries = legend_entries(right)
    assert list(entries) == ["real", "generated", "mode centres", "D(x)"]
    assert all(n_drawn(a) > 0 for a in entries.values())
    assert list(legend_entries(fig.axes[0])) == ["real", "D(x)"]
    assert [fr["step"] for fr in recorded["frames"]] == [0, 10, 20]
    assert all(f.axes[1].get_ylabel() == "D(x)" for f in recorded["frame_figures"])


def test_every_2d_dataset_is_framed_by_its_extent():
    for name, cls in DATASETS.items():
        ds = get_dataset(name)
        x = ds.sample(5000, 0)
        extent = viz_toy.data_extent(ds)
        assert np.quantile(np.abs(x), 0.999) < extent < 1.6 * np.abs(x).max(), name
    assert viz_toy.data_extent(get_dataset("grid25")) == pytest.approx(1.35 * 4.15)


def test_presets_and_figure_widths(tmp_path, recorded):
    assert list(demo.PRESETS) == ["recommended", "plain"]
    short_demo(tmp_path, steps=10, gif=True, n_frames=2)
    widths = [f.get_size_inches()[0] for f in [*recorded["figures"].values(), *recorded["frame_figures"]]]
    assert len(widths) == 2 + 3 and max(widths) <= MAX_WIDTH_IN
