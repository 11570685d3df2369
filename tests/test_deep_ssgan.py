"""The semi-supervised GAN: the K+1 formulation, its losses, the label draw, the trainer and its baseline, the
``gancourse train ssgan`` run folder and exact resume."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.data import mnist5k, mnist5k_split_indices  # noqa: E402
from gancourse.deep.runs.registry import MODELS, get_spec  # noqa: E402
from gancourse.deep.ssgan import (  # noqa: E402
    SSGANClassifier,
    SSGANGenerator,
    WeightNormLinear,
    d_hidden_widths,
    d_of_logits,
    feature_matching_loss,
    real_logit,
    supervised_loss,
    unsupervised_loss,
)
from gancourse.deep.train_ssgan import SSGANConfig, SSGANTrainer, draw_labeled, ssgan_preset  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(steps=4, batch_size=16, labeled_batch=16, labels_per_class=2, d_width=16, d_layers=2, g_width=16,
            z_dim=8, log_every=2, sample_every=2, n_samples=4)
CLI = ["train", "ssgan", "--preset", "smoke", "--batch-size", "16", "--labeled-batch", "16", "--d-width", "16",
       "--g-width", "16", "--z-dim", "8", "--sample-every", "2", "--no-progress"]


def logits(n=6, k=10, seed=0, scale=3.0) -> torch.Tensor:
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


@pytest.fixture(scope="module")
def train_data():
    return mnist5k("train")


# ------------------------------------------------------------------------------------------ layers and networks
def test_weight_norm_linear_has_rows_of_length_g_and_data_init_standardises():
    layer = WeightNormLinear(7, 5)
    x = torch.randn(64, 7, generator=torch.Generator().manual_seed(1))
    assert layer(x).shape == (64, 5) and layer.weight.shape == (5, 7)
    with torch.no_grad():
        layer.g.copy_(torch.arange(1.0, 6.0))
    assert torch.allclose(layer.weight.norm(dim=1), torch.arange(1.0, 6.0), atol=1e-6)
    out = layer.init_from_data(x)  # (64, 5)
    assert torch.allclose(out.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(out.std(0), torch.ones(5), atol=1e-4)


def test_networks_shapes_and_noise_only_while_training():
    assert d_hidden_widths(500, 3) == (500, 250, 250) and d_hidden_widths(1000, 1) == (1000,)
    net = SSGANClassifier(32, (24, 12), 10, input_noise=0.5, hidden_noise=0.5, border=2)
    assert net.hidden[0].v.shape == (24, 28 * 28)  # the 2-pixel frame is skipped
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    out, feats = net.forward_features(x, torch.Generator().manual_seed(0))
    assert out.shape == (5, 10) and feats.shape == (5, 12)
    def seeded(s):
        return torch.Generator().manual_seed(s)

    a = net(x, seeded(3))
    assert torch.equal(a, net(x, seeded(3))) and not torch.equal(a, net(x, seeded(4)))  # noise from the generator
    net.eval()
    assert torch.equal(net(x, seeded(3)), net(x, seeded(4)))  # no noise in eval mode
    framed = x.clone()
    framed[:, :, :2] = framed[:, :, -2:] = framed[:, :, :, :2] = framed[:, :, :, -2:] = 0.7
    assert torch.equal(net(framed), net(x)) and not torch.equal(net(x.flip(-1)), net(x))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 1, 32, 32\), got \(5, 1, 28, 28\)"):
        net(x[:, :, 2:30, 2:30])
    G = SSGANGenerator(8, (16, 16), 32, border=2)
    fake = G(torch.randn(6, 8))
    assert fake.shape == (6, 1, 32, 32) and fake.abs().max() <= 1
    inner = torch.zeros(32, 32, dtype=torch.bool)
    inner[2:30, 2:30] = True
    assert (fake[:, :, ~inner] == -1).all() and (fake[:, :, inner] > -1).any()  # a frame of background
    with pytest.raises(ValueError, match=r"border must lie in \[0, image_size / 2\)"):
        SSGANGenerator(8, (16,), 32, border=16)


def test_classifier_data_init_gives_unit_logits_on_the_batch(train_data):
    x = train_data[0][:200]
    net = SSGANClassifier(32, (32, 16), 10, border=2)
    net.init_from_data(x)
    net.eval()
    out = net(x)  # (200, 10)
    assert torch.allclose(out.mean(0), torch.zeros(10), atol=1e-4) and torch.allclose(out.std(0), torch.ones(10),
                                                                                       atol=1e-3)


# ------------------------------------------------------------------------------------------ the K+1 formulation
def test_d_from_the_logits_is_z_over_z_plus_1():
    l = logits()
    Z = l.exp().sum(1)
    assert torch.allclose(d_of_logits(l), Z / (Z + 1), rtol=1e-12)
    assert torch.allclose(real_logit(l), Z.log(), rtol=1e-12)
    # the same as the (K+1)-way softmax with a fake logit of 0: D = 1 - p(fake)
    p = torch.softmax(torch.cat([l, torch.zeros(len(l), 1, dtype=l.dtype)], 1), 1)  # (N, K + 1)
    assert torch.allclose(d_of_logits(l), 1 - p[:, -1], rtol=1e-12)
    # no overflow where exp(l) would: D -> 1 for huge logits, -> 0 for very negative ones
    extreme = torch.tensor([[1000.0, 0.0], [-1000.0, -1000.0]])
    assert torch.equal(d_of_logits(extreme), torch.tensor([1.0, 0.0]))


def test_unsupervised_loss_is_the_k_plus_1_cross_entropy_with_a_zero_fake_logit():
    l_real, l_fake = logits(7, seed=1), logits(5, seed=2)
    K = l_real.shape[1]

    def with_fake(l):  # (N, K) -> (N, K + 1) with the fake logit 0
        return torch.cat([l, torch.zeros(len(l), 1, dtype=l.dtype)], 1)

    p_fake_real = torch.softmax(with_fake(l_real), 1)[:, K]  # p(K+1 | real digit)
    real_term = -torch.log(1 - p_fake_real).mean()  # target "one of the K real classes"
    fake_term = F.cross_entropy(with_fake(l_fake), torch.full((len(l_fake),), K))  # target class K+1
    assert torch.allclose(unsupervised_loss(l_real, l_fake), real_term + fake_term, rtol=1e-10)
    D_real, D_fake = d_of_logits(l_real), d_of_logits(l_fake)
    assert torch.allclose(unsupervised_loss(l_real, l_fake), -D_real.log().mean() - (1 - D_fake).log().mean(),
                          rtol=1e-10)
    big = torch.tensor([[200.0, -50.0]]), torch.tensor([[-200.0, -300.0]])  # D certain and right: loss ~ 0
    assert 0 <= float(unsupervised_loss(*big)) < 1e-30
    assert torch.isfinite(unsupervised_loss(big[1], big[0]))  # certain and wrong: large but finite


def test_supervised_loss_is_the_k_class_cross_entropy_by_hand():
    l, y = logits(4, k=3, seed=5), torch.tensor([0, 2, 1, 2])
    by_hand = np.mean([np.log(np.exp(row).sum()) - row[t] for row, t in zip(l.numpy(), y.numpy())])
    assert float(supervised_loss(l, y)) == pytest.approx(by_hand, rel=1e-12)


def test_feature_matching_loss_by_hand():
    f_real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    f_fake = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])  # mean (1, 1)
    assert float(feature_matching_loss(f_real, f_fake)) == pytest.approx((2 - 1) ** 2 + (3 - 1) ** 2)
    assert float(feature_matching_loss(f_real, f_real.flip(0))) == 0.0  # only the means count
    f = f_fake.clone().requires_grad_(True)
    feature_matching_loss(f_real, f).backward()  # d/df_j = -2 (mu_r - mu_f) / M
    assert torch.allclose(f.grad, torch.tensor([[-2 / 3, -4 / 3]]).expand(3, 2))


# ------------------------------------------------------------------------------------------ labels and config
def test_label_draw_is_10_per_class_fixed_by_the_seed_and_outside_the_held_out_digits(train_data):
    images, labels = train_data
    idx = draw_labeled(labels, 10, seed=0)
    assert idx.shape == (100,) and torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == 100
    assert torch.equal(torch.bincount(labels[idx], minlength=10), torch.full((10,), 10))
    assert torch.equal(idx, draw_labeled(labels, 10, seed=0))
    assert not torch.equal(idx, draw_labeled(labels, 10, seed=1))
    split = mnist5k_split_indices()
    assert not set(split["train"][idx.numpy()]) & set(split["heldout"])  # none of them is a held-out digit
    trainer = SSGANTrainer(ssgan_preset(tier="smoke"), images, labels)
    assert torch.equal(trainer.labeled_index, idx) and torch.equal(trainer.x_lab, images[idx])
    assert len(trainer.x_unl) == 3900 and torch.equal(trainer.y_lab, labels[idx])
    assert not (trainer.x_unl[:, None] == trainer.x_lab[None]).flatten(2).all(2).any()  # labeled digits kept apart
    with pytest.raises(ValueError, match="class 0 has 2 digits, fewer than labels_per_class=3"):
        draw_labeled(torch.tensor([0, 0, *[k for k in range(1, 10) for _ in range(3)]]), 3, seed=0)


@pytest.mark.parametrize("field, value, message", [
    ("labeled_batch", 101, "labeled_batch \\(101\\) must not exceed the number of labeled digits"),
    ("decay_start", 1.5, "decay_start must lie in \\[0, 1\\]"),
    ("max_shift", -1, "max_shift"),
    ("input_noise", -0.1, "input_noise"),
    ("steps", 0, "steps"),
    ("d_layers", 0, "d_layers"),
    ("beta1", 1.0, "beta1 must lie in \\[0, 1\\)"),
    ("border", 16, "border must lie in \\[0, image_size / 2\\)"),
    ("channels", 3, "channels must be 1"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        SSGANConfig(**{field: value})


def test_presets_by_tier():
    smoke, lecture, full = (ssgan_preset(tier=t) for t in ("smoke", "lecture", "full"))
    assert smoke == ssgan_preset(True) and full == ssgan_preset()
    assert smoke.steps < lecture.steps < full.steps and lecture.d_width <= full.d_width
    assert (lecture.lr, lecture.beta1, lecture.labels_per_class) == (3e-3, 0.5, 10)
    assert ssgan_preset(tier="lecture", seed=2).seed == 2
    with pytest.raises(ValueError, match="unknown tier 'huge'"):
        ssgan_preset(tier="huge")


# ------------------------------------------------------------------------------------------ the trainer
def test_baseline_starts_as_d_and_learns_from_the_labels_alone(train_data):
    images, labels = train_data
    config = ssgan_preset(tier="smoke", **TINY)
    a = SSGANTrainer(config, images, labels)
    assert_same_state(a.D.state_dict(), a.baseline.state_dict())
    a.train(progress=False)
    # the same labeled digits with other unlabeled images: the GAN's D changes, the baseline does not
    idx = a.labeled_index
    other = images.clone()
    keep = torch.zeros(len(images), dtype=torch.bool)
    keep[idx] = True
    other[~keep] = other[~keep].flip(-1)  # mirror every unlabeled digit
    b = SSGANTrainer(config, other, labels)
    b.train(progress=False)
    assert_same_state(a.baseline.state_dict(), b.baseline.state_dict())
    assert not torch.equal(a.D.out.v, b.D.out.v)
    assert a.history.values["step"] == [1, 2, 3, 4] and set(a.history.last()) >= {"sup", "unsup", "fm", "base_sup"}


def test_classifier_error_and_refused_names(train_data):
    images, labels = train_data
    trainer = SSGANTrainer(ssgan_preset(tier="smoke", **TINY), images, labels)
    x, y = images[:50], labels[:50]
    pred = trainer.predict(x)
    assert pred.shape == (50,) and trainer.error(x, y) == pytest.approx(float((pred != y).double().mean()))
    assert trainer.error(x, y, "baseline") == trainer.error(x, y)  # same weights before training
    with pytest.raises(ValueError, match="unknown classifier 'lenet'; valid options are: 'ssgan', 'baseline'"):
        trainer.predict(x, "lenet")
    with pytest.raises(ValueError, match=r"labels must have shape \(4000,\)"):
        SSGANTrainer(ssgan_preset(tier="smoke"), images, labels[:10])


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ssgan") / "run"
    ok([*CLI, "--steps", "4", "--out", out])
    return out


def test_registry_lists_ssgan():
    assert "ssgan" in MODELS and "Salimans et al. 2016" in MODELS["ssgan"].summary
    spec = get_spec("ssgan")
    assert spec.kind == SSGANTrainer.KIND and spec.config_class is SSGANConfig
    assert spec.scheduled(ssgan_preset()) is not None and spec.scheduled(ssgan_preset(decay_start=1.0)) is None


def test_a_run_writes_every_file(run):
    import matplotlib.pyplot as plt

    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["seed"], metrics["steps"]) == ("ssgan", "smoke", 0, 4)
    report = metrics["report"]
    assert list(report) == ["held-out error", "fd_lenet", "classifier_score", "class_histogram_kl"]
    for name, row in report.items():
        assert set(row) == {"floor", "trained", "ceiling", "better"}, name
    error = report["held-out error"]
    assert error["better"] == "lower" and 0 <= error["floor"] < 0.05 < error["ceiling"] <= 1  # the LeNet's is small
    assert report["fd_lenet"]["floor"] < report["fd_lenet"]["ceiling"]
    with np.load(run / "samples.npz") as npz:
        assert npz.files == ["images"]
        assert npz["images"].shape == (1000, 1, 32, 32) and npz["images"].dtype == np.float32
        assert np.abs(npz["images"]).max() <= 1
    assert metrics["samples"] == {"images": {"shape": [1000, 1, 32, 32], "dtype": "float32"}}
    assert plt.imread(run / "samples.png").ndim == 3
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 4 and state["run"]["model"] == "ssgan" and state["labeled_index"].shape == (100,)


def test_n_steps_then_resume_to_2n_equals_2n_straight(run, tmp_path):
    flags = ["--max-shift", "2", "--decay-start", "1"]  # a constant learning rate, so --steps may grow
    half = tmp_path / "half"
    ok([*CLI, *flags, "--steps", "2", "--out", half])
    ok(["train", "ssgan", "--resume", half / "checkpoint.pt", "--steps", "4", "--no-progress"])
    straight = tmp_path / "straight"
    ok([*CLI, *flags, "--steps", "4", "--out", straight])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    assert resumed.pop("run")["preset"] == whole.pop("run")["preset"] == "smoke"
    assert_same_state(resumed, whole)
    with np.load(half / "samples.npz") as a, np.load(straight / "samples.npz") as b:
        assert np.array_equal(a["images"], b["images"])


def test_a_checkpoint_mid_decay_resumes_exactly(train_data, tmp_path):
    images, labels = train_data
    config = ssgan_preset(tier="smoke", **{**TINY, "max_shift": 1})  # 4 steps, the rate decays over the last 2
    whole = SSGANTrainer(config, images, labels)
    whole.train(progress=False)
    part = SSGANTrainer(config, images, labels)
    part.train(steps=3, progress=False)
    part.save(tmp_path / "ckpt.pt")
    resumed = SSGANTrainer(config, images, labels).load(tmp_path / "ckpt.pt")
    resumed.train(progress=False)
    assert_same_state(resumed.state_dict(), whole.state_dict())
    assert whole.history.values["lr"][-1] < whole.history.values["lr"][0]


def test_resume_refuses_steps_that_would_change_the_schedule(run):
    rc, _, err = cli(["train", "ssgan", "--resume", run / "checkpoint.pt", "--steps", "8"])
    assert rc == 2 and "--steps 8 would change the schedule" in err and "decays linearly to 0" in err, err
