"""Toy-GAN figures: the loss curves of a run."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gancourse.toy import ToyGAN, plain_gan  # noqa: E402
from gancourse.viz.toy import plot_losses  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_losses_of_a_run_are_drawn_raw_and_smoothed():
    gan = ToyGAN(plain_gan("ring8", steps=60, batch_size=16, g_hidden=(8,), d_hidden=(8,), n_eval=50))
    h = gan.train(progress=False)
    fig, ax = plt.subplots()
    plot_losses(ax, h, smooth=3)
    lines = ax.get_lines()
    assert len(lines) == 4  # raw and smoothed, for D and for G; no penalty line without a penalty
    raw_d, smooth_d = lines[0], lines[1]
    assert np.array_equal(raw_d.get_xdata(), h["step"]) and np.allclose(raw_d.get_ydata(), h["d_loss"])
    assert np.allclose(smooth_d.get_ydata(), np.convolve(h["d_loss"], np.ones(3) / 3, mode="valid"))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["d loss", "g loss"]


def test_a_penalty_gets_its_own_lines_and_an_empty_history_a_note():
    gan = ToyGAN(plain_gan("ring8", penalty="r1", gamma=0.1, steps=30, batch_size=16, g_hidden=(8,), d_hidden=(8,)))
    fig, ax = plt.subplots()
    plot_losses(ax, gan.train(progress=False), smooth=20)
    assert len(ax.get_lines()) == 6
    fig, ax = plt.subplots()
    plot_losses(ax, {"step": [], "d_loss": [], "g_loss": [], "penalty": []})
    assert not ax.get_lines() and ax.texts[0].get_text() == "no losses logged yet"
