"""The conditional GAN: class-conditional batch norm, the projection and concatenation discriminators, the
trainer, and ``gancourse train cgan`` (every file written, exact resume)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from gancourse.deep.conditional import (  # noqa: E402
    ClassConditionalBatchNorm2d,
    ConcatDiscriminator,
    ConditionalGenerator,
    ProjectionDiscriminator,
    check_labels,
    make_discriminator,
    one_hot_planes,
)
from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.runs.cgan import CGAN, eval_labels  # noqa: E402
from gancourse.deep.train_cgan import CGANConfig, CGANTrainer, cgan_preset  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = ["--batch-size", "8", "--g-width", "8", "--d-width", "8", "--z-dim", "8", "--embed-dim", "4",
        "--sample-every", "2", "--no-progress"]
CGAN_CLI = ["train", "cgan", "--preset", "smoke", *TINY]
MAIN_ROWS = ("label accuracy", "worst class accuracy", "fd_lenet")


def tiny_config(**kw) -> CGANConfig:
    return cgan_preset(tier="smoke", **{**dict(steps=3, batch_size=8, g_width=8, d_width=8, z_dim=8, embed_dim=4,
                                               n_samples=2, sample_every=2), **kw})


def toy_data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 32, 32, generator=gen) * 2 - 1, torch.arange(n) % 10


# ------------------------------------------------------------------------------------------ layers
def test_class_conditional_bn_is_batch_norm_then_the_class_affine():
    torch.manual_seed(0)
    layer = ClassConditionalBatchNorm2d(3, n_classes=4)
    assert torch.equal(layer.gain.weight, torch.ones(4, 3)) and torch.equal(layer.bias.weight, torch.zeros(4, 3))
    x, y = torch.randn(6, 3, 5, 5) * 2 + 1, torch.tensor([0, 3, 1, 3, 2, 0])
    assert torch.allclose(layer(x, y), F.batch_norm(x, None, None, training=True, eps=layer.bn.eps), atol=1e-6)
    with torch.no_grad():
        layer.gain.weight.copy_(torch.randn(4, 3))
        layer.bias.weight.copy_(torch.randn(4, 3))
    out = layer(x, y).double()
    xd = x.double()
    mu = xd.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1), the batch mean per channel
    var = xd.var(dim=(0, 2, 3), unbiased=False, keepdim=True)  # the biased batch variance normalises
    gamma, beta = layer.gain.weight.double()[y], layer.bias.weight.double()[y]  # (N, C): row y_i for image i
    hand = (xd - mu) / torch.sqrt(var + layer.bn.eps) * gamma[:, :, None, None] + beta[:, :, None, None]
    assert torch.allclose(out, hand, atol=1e-5)
    # two images of the same class get the same affine; running statistics serve in eval mode
    layer.eval()
    running = (xd - layer.bn.running_mean.double()[None, :, None, None]) / torch.sqrt(
        layer.bn.running_var.double()[None, :, None, None] + layer.bn.eps)
    assert torch.allclose(layer(x, y).double(), running * gamma[:, :, None, None] + beta[:, :, None, None], atol=1e-5)


def test_class_conditional_bn_refuses_bad_inputs():
    layer = ClassConditionalBatchNorm2d(3, n_classes=4)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, H, W\), got \(2, 5, 4, 4\)"):
        layer(torch.randn(2, 5, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels must lie in 0..3 \\(n_classes = 4\\), got values from 0 to 4"):
        layer(torch.randn(2, 3, 4, 4), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="one gain and bias per image, shape \\(2, 3\\), got \\(3, 3\\)"):
        layer(torch.randn(2, 3, 4, 4), torch.tensor([0, 1, 2]))


def test_class_conditional_bn_takes_its_affine_from_one_method():
    """A layer conditioned on vectors (as BigGAN's) replaces ``affine`` and keeps the normalisation."""

    class VectorConditioned(ClassConditionalBatchNorm2d):
        def affine(self, c):
            return 1 + c, -c  # (N, C) each

    x, c = torch.randn(4, 3, 2, 2), torch.randn(4, 3)
    hand = F.batch_norm(x, None, None, training=True) * (1 + c)[:, :, None, None] - c[:, :, None, None]
    assert torch.allclose(VectorConditioned(3, n_classes=1)(x, c), hand, atol=1e-5)


@pytest.mark.parametrize("y, message", [
    (torch.tensor([0, 10]), "labels must lie in 0..9 \\(n_classes = 10\\), got values from 0 to 10"),
    (torch.tensor([-1, 3]), "got values from -1 to 3"),
    (torch.tensor([0.0, 1.0]), "labels must be an integer tensor of shape \\(N,\\), got a torch.float32 tensor"),
    (torch.tensor([[0, 1]]), "got a torch.int64 tensor of shape \\(1, 2\\)"),
    ([0, 1], "labels must be an integer tensor of shape \\(N,\\), got a list"),
])
def test_labels_out_of_range_or_of_the_wrong_kind_are_refused(y, message):
    with pytest.raises(ValueError, match=message):
        check_labels(y, 10, 2)
    G = ConditionalGenerator(8, 10, 4, 1, 8, 32)
    if isinstance(y, torch.Tensor) and y.ndim == 1:
        with pytest.raises(ValueError, match=message):
            G(torch.randn(2, 8), y)
        with pytest.raises(ValueError, match=message):
            ProjectionDiscriminator(1, 10, 8, 32)(torch.zeros(2, 1, 32, 32), y)


def test_shapes_of_the_generator_and_both_discriminators():
    torch.manual_seed(0)
    z, y = torch.randn(5, 16), torch.tensor([0, 1, 2, 9, 9])
    for cbn in (True, False):
        G = ConditionalGenerator(16, 10, embed_dim=4, channels=1, width=8, image_size=32, conditional_bn=cbn)
        x = G(z, y)
        assert x.shape == (5, 1, 32, 32) and x.abs().max() <= 1
        norms = [type(m).__name__ for m in G.norms]
        assert norms == ["ClassConditionalBatchNorm2d" if cbn else "BatchNorm2d"] * 3
        assert G.convs[0].in_channels == 16 + 4  # [z, e(y)]
    assert ConditionalGenerator(16, 10, 4, 3, 8, 64)(z, y).shape == (5, 3, 64, 64)
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    for kind, cls in (("projection", ProjectionDiscriminator), ("concat", ConcatDiscriminator)):
        D = make_discriminator(kind, 1, 10, 8, 32)
        assert isinstance(D, cls) and D(x, y).shape == (5,)
        assert D.phi(x if kind == "projection" else torch.cat([x, one_hot_planes(y, 10, 32)], 1)).shape == (5, 32 * 16)
        assert D.feature_dim == 4 * 8 * 4 * 4
    assert ConcatDiscriminator(1, 10, 8, 32).phi[0].in_channels == 1 + 10
    assert make_discriminator("projection", 1, 10, 8, 32).embed.weight.shape == (10, 512)
    with pytest.raises(ValueError, match="unknown discriminator 'aux'; valid options are: 'projection', 'concat'"):
        make_discriminator("aux")


def test_one_hot_planes():
    planes = one_hot_planes(torch.tensor([2, 0]), 3, 4)
    assert planes.shape == (2, 3, 4, 4)
    assert torch.equal(planes[:, :, 1, 3], torch.tensor([[0.0, 0, 1], [1, 0, 0]]))


def test_projection_logit_is_psi_of_phi_plus_the_class_embedding_inner_product():
    torch.manual_seed(0)
    D = ProjectionDiscriminator(1, 10, width=8, image_size=32).eval()
    with torch.no_grad():
        D.embed.weight.normal_()  # class embeddings that matter
        D.phi[3].running_var.uniform_(0.5, 2.0)
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.tensor([3, 3, 7, 0])
    with torch.no_grad():
        h = D.phi(x).double()  # (N, D)
        v = D.embed.weight.double()[y]  # (N, D)
        hand = h @ D.psi.weight.double()[0] + D.psi.bias.double()[0] + (v * h).sum(1)
        assert torch.allclose(D(x, y).double(), hand, atol=1e-5)
        # only the inner product depends on the label: switching y_i to k adds <v_k - v_{y_i}, phi(x_i)>
        k = torch.tensor([5, 5, 5, 5])
        shift = ((D.embed.weight[k] - D.embed.weight[y]).double() * h).sum(1)
        assert torch.allclose(D(x, k).double() - D(x, y).double(), shift, atol=1e-5)
        # with V = 0 it is an unconditional discriminator
        D.embed.weight.zero_()
        assert torch.equal(D(x, y), D(x, k))


def test_concat_discriminator_reads_the_label_through_its_first_layer_only():
    torch.manual_seed(0)
    D = ConcatDiscriminator(1, 10, width=8, image_size=32).eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    a, b = D(x, torch.tensor([1, 2, 3])), D(x, torch.tensor([4, 2, 9]))
    assert a[1] == b[1] and a[0] != b[0] and a[2] != b[2]
    with torch.no_grad():
        D.phi[0].weight[:, 1:].zero_()  # the weights on the label planes
    assert torch.equal(D(x, torch.tensor([1, 2, 3])), D(x, torch.tensor([4, 2, 9])))


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("field, value, message", [
    ("discriminator", "aux", "unknown discriminator 'aux'; valid options are: 'projection', 'concat'"),
    ("n_classes", 1, "n_classes must be at least 2"),
    ("embed_dim", 0, "embed_dim must be a positive integer"),
    ("conditional_bn", "yes", "conditional_bn must be True or False"),
    ("steps", 0, "steps must be a positive integer"),
    ("lr_d", -1.0, "lr_d"),
    ("beta1", 1.0, "beta1 must lie in \\[0, 1\\)"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        CGANConfig(**{field: value})


def test_presets_by_tier():
    smoke, lecture, full = (cgan_preset(tier=t) for t in ("smoke", "lecture", "full"))
    assert cgan_preset(True) == smoke and cgan_preset() == full
    assert smoke.steps < lecture.steps < full.steps and lecture.g_width <= full.g_width
    assert all(c.discriminator == "projection" and c.conditional_bn for c in (smoke, lecture, full))
    assert full.steps * full.batch_size <= 20000 * 128  # a few minutes on one GPU
    assert cgan_preset(tier="lecture", discriminator="concat").discriminator == "concat"
    with pytest.raises(ValueError, match="smoke=True contradicts tier='lecture'"):
        cgan_preset(True, tier="lecture")


def test_the_full_preset_builds_and_takes_two_steps():
    images, labels = toy_data(256)
    trainer = CGANTrainer(dataclasses.replace(cgan_preset(tier="full"), steps=2), images, labels)
    trainer.train(progress=False)
    x = trainer.sample(torch.arange(4))
    assert x.shape == (4, 1, 32, 32) and torch.isfinite(x).all() and len(trainer.history.values["d_loss"]) == 2


# ------------------------------------------------------------------------------------------ trainer
def test_the_first_d_loss_is_bce_on_real_pairs_and_generated_pairs():
    images, labels = toy_data()
    config = tiny_config()
    trainer = CGANTrainer(config, images, labels)
    replay = CGANTrainer(config, images, labels)  # the same seed: the same weights and the same draws
    trainer.train_step()
    trainer.history.flush()
    idx = replay.batcher.next()
    z = torch.randn(config.batch_size, config.z_dim, generator=replay.generator)
    y_fake = torch.randint(config.n_classes, (config.batch_size,), generator=replay.generator)
    with torch.no_grad():
        l_real = replay.D(images[idx], labels[idx]).double()
        l_fake = replay.D(replay.G(z, y_fake), y_fake).double()
    hand = -torch.log(torch.sigmoid(l_real)).mean() - torch.log(1 - torch.sigmoid(l_fake)).mean()
    assert trainer.history.values["d_loss"][0] == pytest.approx(hand.item(), rel=1e-5)
    assert trainer.history.values["d_real"][0] == pytest.approx(torch.sigmoid(l_real).mean().item(), rel=1e-5)


def test_trainer_refuses_bad_labels_and_samples_by_class():
    images, labels = toy_data()
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        CGANTrainer(tiny_config(), images, labels + 1)
    with pytest.raises(ValueError, match="one class per image \\(40\\), got 39"):
        CGANTrainer(tiny_config(), images, labels[:-1])
    trainer = CGANTrainer(tiny_config(), images, labels)
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        trainer.sample(torch.tensor([3, 10]))
    x = trainer.sample(torch.tensor([3, 3, 4]))
    assert x.shape == (3, 1, 32, 32) and torch.equal(x, trainer.sample([3, 3, 4]))
    assert not torch.equal(x, trainer.sample([3, 3, 4], seed=5))
    assert torch.equal(trainer.fixed_labels(), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
                                                              9, 9]))
    trainer.snapshot()
    step, grid = trainer.snapshots[0]
    z = trainer.fixed_z.repeat(10, 1)
    assert step == 0 and torch.equal(grid, trainer.generate(z, trainer.fixed_labels()))


def test_a_checkpoint_is_not_resumed_on_other_labels(tmp_path):
    images, labels = toy_data()
    trainer = CGANTrainer(tiny_config(), images, labels)
    trainer.train(steps=1, checkpoint=tmp_path / "c.pt", progress=False)
    with pytest.raises(ValueError, match="trained on a different dataset \\(labels: the same shape"):
        CGANTrainer(tiny_config(), images, labels.flip(0)).load(tmp_path / "c.pt")


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cgan") / "run"
    ok([*CGAN_CLI, "--steps", "3", "--out", out])
    return out


def test_help_shows_the_models_flags():
    rc, out, _ = cli(["train", "cgan", "--help"])
    text = " ".join(out.split())
    assert rc == 0 and "--discriminator {projection,concat}" in text and "--conditional-bn, --no-conditional-bn" in text
    assert "--embed-dim" in text and "--n-classes" not in text and "--channels" not in text
    rc, out, _ = cli(["train", "--help"])
    assert "Conditional GAN with a projection discriminator" in " ".join(out.split())


def test_a_cgan_run_writes_every_file(run):
    import matplotlib.pyplot as plt

    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["steps"]) == ("cgan", "smoke", 3)
    report = metrics["report"]
    assert list(report) == [*MAIN_ROWS, *(f"class {k} accuracy" for k in range(10))]
    for name in MAIN_ROWS:  # the real digits beat the untrained generator
        row = report[name]
        assert (row["floor"] > row["ceiling"]) == (row["better"] == "higher"), name
    assert report["label accuracy"]["floor"] > 0.9 and report["label accuracy"]["ceiling"] < 0.5
    per_class = [report[f"class {k} accuracy"]["trained"] for k in range(10)]
    assert report["worst class accuracy"]["trained"] == min(per_class)
    assert report["label accuracy"]["trained"] == pytest.approx(np.mean(per_class))  # 100 samples per class
    with np.load(run / "samples.npz") as npz:
        assert sorted(npz.files) == ["images", "labels"]
        images, labels = npz["images"], npz["labels"]
    assert images.shape == (1000, 1, 32, 32) and images.dtype == np.float32 and np.abs(images).max() <= 1
    assert labels.shape == (1000,) and labels.dtype == np.int64 and np.array_equal(labels, eval_labels().numpy())
    assert np.array_equal(np.bincount(labels), np.full(10, 100))
    png = plt.imread(run / "samples.png")
    assert png.shape[0] == png.shape[1]  # ten rows of ten digits
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0000002.png", "step-0000003.png"]
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 3 and state["kind"] == "cgan" and state["run"]["model"] == "cgan"
    assert state["snapshots"][0][1].shape == (10 * 8, 1, 32, 32)  # a row of n_samples per class


def test_the_concat_discriminator_and_plain_bn_run_from_the_command(tmp_path):
    out = tmp_path / "run"
    ok([*CGAN_CLI, "--steps", "2", "--discriminator", "concat", "--no-conditional-bn", "--out", out])
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["config"]["discriminator"] == "concat" and state["config"]["conditional_bn"] is False
    assert state["D"]["phi.0.weight"].shape[1] == 1 + 10 and "embed.weight" not in state["D"]  # image + one-hot
    assert not any(k.startswith("norms.0.gain") for k in state["G"])  # plain batch norm


def test_n_steps_then_resume_to_2n_equals_2n_straight(tmp_path):
    half, straight = tmp_path / "half", tmp_path / "straight"
    ok([*CGAN_CLI, "--steps", "3", "--out", half])
    ok(["train", "cgan", "--resume", half / "checkpoint.pt", "--steps", "6", "--no-progress"])
    ok([*CGAN_CLI, "--steps", "6", "--out", straight])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    for key in ("step", "G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "rng"):
        assert_same_state(resumed[key], whole[key], key)
    # the resumed run also kept a grid at step 3, where its first part ended; the others are the same
    assert [s for s, _ in resumed["snapshots"]] == [2, 3, 4, 6] and [s for s, _ in whole["snapshots"]] == [2, 4, 6]
    assert_same_state([x for s, x in resumed["snapshots"] if s != 3], [x for _, x in whole["snapshots"]], "snapshots")
    with np.load(half / "samples.npz") as a, np.load(straight / "samples.npz") as b:
        assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])
    assert json.loads((half / "metrics.json").read_text())["report"] == \
        json.loads((straight / "metrics.json").read_text())["report"]


def test_resume_refuses_a_changed_discriminator(run):
    rc, _, err = cli(["train", "cgan", "--resume", run / "checkpoint.pt", "--discriminator", "concat"])
    assert rc == 2 and "--discriminator concat (the checkpoint has --discriminator projection)" in err, err


def test_spec_config_fixes_the_data_fields():
    with pytest.raises(ValueError, match="n_classes cannot be set for this model"):
        CGAN.config("smoke", n_classes=5)
    assert dataclasses.asdict(CGAN.config("lecture"))["n_classes"] == 10
