"""A toy run over time: snapshots from fixed latent codes, and the modes covered at each evaluation."""
from __future__ import annotations

import numpy as np
import pytest

from gancourse.toy import ToyGAN, plain_gan
from gancourse.toy.timeline import mode_coverage, snapshot_callback

SIZES = dict(steps=60, batch_size=32, g_hidden=(16, 16), d_hidden=(16, 16), n_eval=300)


@pytest.fixture(scope="module")
def watched():
    """A plain GAN on grid25 evaluated every 6 steps, with a snapshot every 15: the run of lecture 5, small."""
    gan = ToyGAN(plain_gan("grid25", eval_every=6, **SIZES))
    snaps: list = []
    gan.train(progress=False, callback_every=15, callbacks=[snapshot_callback(snaps, n=200)])
    return gan, snaps


def test_snapshots_are_taken_at_every_callback_from_the_same_codes(watched):
    gan, snaps = watched
    assert gan.step == SIZES["steps"]
    assert [step for step, _ in snaps] == [15, 30, 45, 60]
    assert all(x.shape == (200, 2) and np.isfinite(x).all() for _, x in snaps)
    assert np.array_equal(snaps[-1][1], gan.sample(200))  # the last one is the trained generator's sample
    assert not np.array_equal(snaps[0][1], snaps[-1][1])  # the generator moved in between


def test_watching_a_run_does_not_change_it(watched):
    gan, _ = watched
    quiet = ToyGAN(plain_gan("grid25", **SIZES))
    quiet.train(progress=False)
    assert np.array_equal(quiet.G.theta, gan.G.theta) and np.array_equal(quiet.D.theta, gan.D.theta)


def test_snapshot_callback_checks_n():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        snapshot_callback([], n=0)


def test_mode_coverage_of_a_run(watched):
    gan, _ = watched
    evals = gan.history["eval"]
    assert len(evals) == SIZES["steps"] // gan.config.eval_every
    cov = mode_coverage(evals)
    n = len(evals)
    assert cov["steps"].tolist() == list(range(6, 61, 6))
    assert cov["counts"].shape == cov["covered"].shape == (n, 25)
    # the counts are the HQ samples, and modes are the components with at least one of them
    assert np.allclose(cov["counts"].sum(axis=1) / SIZES["n_eval"], [e["hq"] for e in evals])
    assert [e["modes"] for e in evals] == cov["covered"].sum(axis=1).tolist()
    assert cov["final"] == set(np.flatnonzero(evals[-1]["counts"]).tolist()) and cov["final"] <= cov["ever"]
    assert 0 <= cov["changes"] <= n - 1


def test_mode_coverage_by_hand():
    counts = [[1, 0, 0], [2, 0, 0], [0, 2, 0], [0, 2, 0], [3, 0, 1]]  # covered: {0}, {0}, {1}, {1}, {0, 2}
    evals = [{"step": 10 * (i + 1), "counts": c, "modes": 0, "hq": 0.0} for i, c in enumerate(counts)]
    cov = mode_coverage(evals)
    assert cov["ever"] == {0, 1, 2} and cov["final"] == {0, 2} and cov["changes"] == 2
    assert cov["covered"].tolist() == [[True, False, False], [True, False, False], [False, True, False],
                                       [False, True, False], [True, False, True]]
    assert cov["steps"].tolist() == [10, 20, 30, 40, 50] and cov["counts"][4].tolist() == [3.0, 0.0, 1.0]
    assert mode_coverage(evals, final_counts=[0, 0, 5])["final"] == {2}
    assert mode_coverage(evals[:1])["changes"] == 0


def test_mode_coverage_errors():
    with pytest.raises(ValueError, match="eval_every"):
        mode_coverage([])
    gan = ToyGAN(plain_gan("two_moons", eval_every=2, **{**SIZES, "steps": 4}))
    gan.train(progress=False)
    with pytest.raises(ValueError, match="mixture"):
        mode_coverage(gan.history["eval"])
    evals = [{"step": 1, "counts": [1, 0]}, {"step": 2, "counts": [1, 0, 0]}]
    with pytest.raises(ValueError, match="same number of components"):
        mode_coverage(evals)
    with pytest.raises(ValueError, match="final_counts must have 2 entries"):
        mode_coverage(evals[:1], final_counts=[1, 2, 3])
