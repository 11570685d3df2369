"""StackedMNIST: the data, the mode count and reverse KL, packing, the trainer (exact resume) and
``gancourse train stackedmnist`` with the rescoring of its samples.npz."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.data import mnist5k  # noqa: E402
from gancourse.deep.runs.stacked import STACKED, n_scored  # noqa: E402
from gancourse.deep.stacked_mnist import (  # noqa: E402
    N_MODES,
    channel_classes,
    classes_of_modes,
    from_uint8,
    kl_decomposition,
    mode_histogram,
    mode_of_classes,
    modes_covered,
    reverse_kl,
    score_samples,
    stacked_mnist,
    to_uint8,
)
from gancourse.deep.train_stacked import StackedConfig, StackedTrainer, pack, stacked_preset, unpack  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = ["--batch-size", "8", "--g-width", "8", "--d-width", "8", "--z-dim", "8", "--sample-every", "2",
        "--no-progress"]
CLI = ["train", "stackedmnist", "--preset", "smoke", *TINY]


def tiny_config(**kw) -> StackedConfig:
    return stacked_preset(tier="smoke", **{**dict(steps=3, batch_size=8, g_width=8, d_width=8, z_dim=8,
                                                  n_samples=4, sample_every=2), **kw})


def toy_digits(n: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 32, 32, generator=gen) * 2 - 1, torch.arange(n) % 10


# ------------------------------------------------------------------------------------------ data
def test_channels_are_training_digits_and_labels_are_their_classes():
    digits, labels = mnist5k("train")
    data = stacked_mnist("train", n=50, seed=3)
    x, y = data.images(), data.labels()
    assert x.shape == (50, 3, 32, 32) and y.shape == (50,) and y.dtype == torch.int64
    for i in range(50):
        a, b, c = data.triples[i].tolist()
        for ch, j in enumerate((a, b, c)):
            assert torch.equal(x[i, ch], digits[j, 0])
        assert y[i] == 100 * labels[a] + 10 * labels[b] + labels[c]
    assert torch.equal(stacked_mnist("train", n=50, seed=3).triples, data.triples)  # seeded
    assert not torch.equal(stacked_mnist("train", n=50, seed=4).triples, data.triples)


def test_the_lenet_reads_real_stacks_back_to_their_modes():
    data = stacked_mnist("heldout", n=300, seed=0)
    predicted = mode_of_classes(channel_classes(data.images()))
    assert (predicted == data.labels().numpy()).mean() > 0.9  # each channel is a digit the LeNet knows


def test_modes_and_reverse_kl_on_constructed_histograms():
    uniform = mode_histogram(np.repeat(np.arange(N_MODES), 26))
    assert uniform.shape == (N_MODES,) and modes_covered(uniform) == 1000
    assert reverse_kl(uniform) == pytest.approx(0, abs=1e-12)
    one = mode_histogram(np.full(500, 437))
    assert modes_covered(one) == 1 and reverse_kl(one) == pytest.approx(math.log(1000))
    half = mode_histogram(np.arange(0, 1000, 2))  # 500 modes, evenly
    assert modes_covered(half) == 500 and reverse_kl(half) == pytest.approx(math.log(2))
    q = np.random.default_rng(0).dirichlet(np.ones(N_MODES))
    assert reverse_kl(q * 1e4) == pytest.approx(float(np.sum(q * np.log(q * N_MODES))))
    with pytest.raises(ValueError, match=r"modes must lie in \[0, 1000\)"):
        mode_histogram(np.array([3, 1000]))
    with pytest.raises(ValueError, match="positive total"):
        reverse_kl(np.zeros(N_MODES))


def test_mode_of_classes_and_the_uint8_round_trip():
    assert mode_of_classes(np.array([[1, 2, 3], [9, 0, 9]])).tolist() == [123, 909]
    assert classes_of_modes(np.array([123, 909, 7])).tolist() == [[1, 2, 3], [9, 0, 9], [0, 0, 7]]
    every = np.arange(N_MODES)
    assert np.array_equal(mode_of_classes(classes_of_modes(every)), every)
    with pytest.raises(ValueError, match=r"modes must lie in \[0, 1000\)"):
        classes_of_modes(np.array([1000]))
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    back = from_uint8(to_uint8(x))
    assert back.dtype == torch.float32 and (back - x).abs().max() <= 1 / 127.5 / 2 + 1e-6
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]


def test_kl_decomposition_splits_the_reverse_kl_into_channels_and_their_dependence():
    rng = np.random.default_rng(0)
    # dependent channels: the last two copy the first, so each channel alone is uniform but only 10 modes occur
    a = rng.integers(0, 10, 5000)
    tied = kl_decomposition(np.stack([a, a, a], 1))
    assert max(tied["channels"]) < 0.01 and math.isclose(tied["dependence"], tied["total"] - sum(tied["channels"]))
    assert tied["total"] > math.log(100) - 0.01  # 10 of 1000 modes: log 100
    # skewed but independent channels: the dependence is only sampling noise
    p = np.array([0.3] + [0.7 / 9] * 9)
    free = kl_decomposition(rng.choice(10, size=(26000, 3), p=p))
    expected_channel = float(np.sum(p * np.log(10 * p)))
    assert all(abs(k - expected_channel) < 0.02 for k in free["channels"])
    assert 0.01 < free["dependence"] < 0.03  # about (1000 - 1 - 27) / (2 * 26000) = 0.019
    # the total correlation computed directly: KL(q || q0 x q1 x q2)
    c = rng.choice(10, size=(3000, 3))
    c[:, 2] = np.where(rng.random(3000) < 0.5, c[:, 0], c[:, 2])
    q = mode_histogram(mode_of_classes(c)) / len(c)
    m = [np.bincount(c[:, k], minlength=10) / len(c) for k in range(3)]
    prod = np.einsum("i,j,k->ijk", *m).ravel()
    nz = q > 0
    assert math.isclose(kl_decomposition(c)["dependence"], float(np.sum(q[nz] * np.log(q[nz] / prod[nz]))),
                        rel_tol=1e-9)
    with pytest.raises(ValueError, match=r"\(n, 3\) array of digit classes"):
        kl_decomposition(np.array([[1, 2, 10]]))


# ------------------------------------------------------------------------------------------ packing and trainer
def test_pack_puts_m_samples_on_the_channel_axis():
    x = torch.randn(6, 3, 4, 4)
    p = pack(x, 2)
    assert p.shape == (3, 6, 4, 4)
    assert torch.equal(p[1, :3], x[2]) and torch.equal(p[1, 3:], x[3])
    assert torch.equal(unpack(p, 2), x) and torch.equal(pack(x, 1), x)
    with pytest.raises(ValueError, match="a batch of 6 cannot be cut into packs of 4"):
        pack(x, 4)


@pytest.mark.parametrize("recipe, m, d_channels", [("dcgan", 1, 3), ("pacgan", 2, 6), ("course", 2, 6), ("r3", 2, 6)])
def test_recipes_set_the_discriminator_input(recipe, m, d_channels):
    c = tiny_config(recipe=recipe)
    assert c.pack == m
    trainer = StackedTrainer(c, *toy_digits())
    first = next(trainer.D.parameters())
    assert first.shape[1] == d_channels
    real, modes = trainer.real_batch(8)
    assert real.shape == (8, 3, 32, 32) and modes.shape == (8,)
    assert trainer._logits(real).shape == (8 // m,)
    trainer.train(steps=2, progress=False)
    assert trainer.history.values["step"][-1] == 2


def test_the_first_pacgan_d_loss_is_bce_on_packs():
    trainer = StackedTrainer(tiny_config(pack=4), *toy_digits())
    state = trainer.generator.get_state()
    real, _ = trainer.real_batch(8)  # the step's draws: the real triples, then the noise
    z = torch.randn(8, 8, generator=trainer.generator)
    trainer.generator.set_state(state)
    with torch.no_grad():
        l_real, l_fake = trainer.D(pack(real, 4)), trainer.D(pack(trainer.G(z), 4))
    hand = torch.nn.functional.softplus(-l_real).mean() + torch.nn.functional.softplus(l_fake).mean()
    trainer.train(steps=1, progress=False)
    assert l_real.shape == (2,)
    assert trainer.history.values["d_loss"][0] == pytest.approx(float(hand), rel=1e-5)


@pytest.mark.parametrize("field, value, message", [
    ("recipe", "unrolled", "unknown recipe 'unrolled'"),
    ("pack", 3, r"batch_size \(8\) must be a multiple of pack \(3\)"),
    ("gamma", 1.0, "use d_norm='none'"),
    ("channels", 1, "3 channels"),
    ("loss", "wgan", "unknown loss 'wgan'"),
])
def test_bad_config_values_are_refused(field, value, message):
    kw = {field: value}
    with pytest.raises(ValueError, match=message):
        tiny_config(**kw)


def test_k_steps_save_load_k_steps_equals_2k_steps(tmp_path):
    for recipe in ("course", "r3"):
        digits, labels = toy_digits()
        straight = StackedTrainer(tiny_config(recipe=recipe, steps=4), digits, labels)
        straight.train(progress=False)
        half = StackedTrainer(tiny_config(recipe=recipe, steps=4), digits, labels)
        half.train(steps=2, checkpoint=tmp_path / f"{recipe}.pt", progress=False)
        resumed = StackedTrainer(tiny_config(recipe=recipe, steps=4), digits, labels).load(tmp_path / f"{recipe}.pt")
        resumed.train(progress=False)
        a, b = resumed.state_dict(), straight.state_dict()
        for key in ("G", "G_ema", "D", "opt_g", "opt_d", "generator", "history"):
            assert_same_state(a[key], b[key], key)


def test_samples_come_from_the_moving_average_of_g():
    digits, labels = toy_digits()
    trainer = StackedTrainer(tiny_config(ema=0.9), digits, labels)
    before = [p.detach().clone() for p in trainer.G_ema.parameters()]
    trainer.train(steps=1, progress=False)
    for p0, p_avg, p in zip(before, trainer.G_ema.parameters(), trainer.G.parameters()):
        assert torch.allclose(p_avg, 0.9 * p0 + 0.1 * p, atol=1e-7)  # G_ema started as G's initial weights
    assert not torch.equal(trainer.sample(4), trainer.sample(4, average=False))
    plain = StackedTrainer(tiny_config(ema=0.0), digits, labels)
    plain.train(steps=2, progress=False)
    assert torch.equal(plain.sample(4), plain.sample(4, average=False))  # ema = 0: the average is G
    with pytest.raises(ValueError, match=r"ema must lie in \[0, 1\)"):
        tiny_config(ema=1.0)


def test_recipes_fill_in_the_preset_and_flags_still_win():
    dcgan, course = stacked_preset(tier="lecture", recipe="dcgan"), stacked_preset(tier="lecture")
    assert course.recipe == "course" and (course.pack, course.ema, course.lr_g, course.lr_d) == (2, 0.0, 5e-4, 5e-4)
    assert (dcgan.pack, dcgan.ema, dcgan.lr_g, dcgan.lr_d) == (1, 0.0, 2e-4, 2e-4)
    assert (dcgan.steps, dcgan.g_width) == (course.steps, course.g_width)  # the same size, the same budget
    assert stacked_preset(tier="lecture", recipe="dcgan", pack=4).pack == 4
    r3 = stacked_preset(tier="smoke", recipe="r3")
    assert (r3.loss, r3.d_norm, r3.gamma, r3.ema) == ("rpgan", "none", 1.0, 0.999)


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stacked") / "run"
    ok([*CLI, "--steps", "3", "--out", out])
    return out


def test_a_run_writes_samples_that_rescore_to_its_metrics(run):
    metrics = json.loads((run / "metrics.json").read_text())
    report = metrics["report"]
    assert list(report)[:2] == ["modes", "reverse_kl"]
    n = n_scored("smoke")
    with np.load(run / "samples.npz") as f:
        assert f["images"].shape == (n, 3, 32, 32) and f["images"].dtype == np.uint8
        assert f["modes"].shape == (n,)
    rescored = score_samples(run / "samples.npz")
    assert rescored["modes"] == report["modes"]["trained"]
    assert rescored["reverse_kl"] == pytest.approx(report["reverse_kl"]["trained"], abs=1e-12)  # scored as stored
    assert (metrics["modes"], metrics["reverse_kl"]) == (report["modes"]["trained"], report["reverse_kl"]["trained"])
    assert rescored["histogram"].sum() == n
    assert report["modes"]["floor"] > 900  # 2,600 real stacks already reach most of the 1000 modes
    assert (run / "samples.png").exists()
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["kind"] == "stackedmnist" and state["config"]["recipe"] == "course"


def test_score_samples_recomputes_from_a_written_file(tmp_path):
    data = stacked_mnist("heldout", n=200, seed=1)
    np.savez(tmp_path / "u8.npz", images=to_uint8(data.images()))
    np.savez(tmp_path / "f32.npz", images=data.images().numpy())
    a, b = score_samples(tmp_path / "u8.npz"), score_samples(tmp_path / "f32.npz")
    assert a["modes"] == b["modes"] and a["modes"] <= 200
    assert a["histogram"].sum() == 200
    assert abs(a["reverse_kl"] - b["reverse_kl"]) < 0.05
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="no 'images' array"):
        score_samples(tmp_path / "bad.npz")


def test_cli_recipe_dcgan_and_resume_equal_a_straight_run(tmp_path):
    half, straight = tmp_path / "half", tmp_path / "straight"
    ok([*CLI, "--recipe", "dcgan", "--steps", "2", "--out", half])
    ok(["train", "stackedmnist", "--resume", half / "checkpoint.pt", "--steps", "4", "--no-progress"])
    ok([*CLI, "--recipe", "dcgan", "--steps", "4", "--out", straight])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    assert resumed["config"]["pack"] == 1
    for key in ("G", "G_ema", "D", "opt_g", "opt_d", "generator"):
        assert_same_state(resumed[key], whole[key], key)


def test_help_lists_the_model_and_its_flags():
    rc, out, _ = cli(["train", "stackedmnist", "--help"])
    assert rc == 0 and "--pack" in out and "--recipe" in out
    with pytest.raises(ValueError, match="channels"):
        STACKED.config("smoke", channels=1)
