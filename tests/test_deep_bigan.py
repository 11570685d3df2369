"""BiGAN / ALI: the encoder, the joint discriminator, the losses, the linear probe, the trainer and
``gancourse train bigan`` (a smoke run writing every file, and an exact resume)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from test_train_command import assert_same_state, cli, ok  # noqa: E402

from gancourse.deep.bigan import Encoder, JointDiscriminator, SeededDropout  # noqa: E402
from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.probe import fit_linear_probe, probe_accuracy  # noqa: E402
from gancourse.deep.runs.bigan import same_label_partners  # noqa: E402
from gancourse.deep.runs.registry import get_spec  # noqa: E402
from gancourse.deep.train_bigan import (  # noqa: E402
    BiGANConfig,
    BiGANTrainer,
    bigan_d_loss,
    bigan_eg_loss,
    bigan_preset,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(batch_size=8, g_width=8, e_width=8, d_width=8, d_hidden=16, z_dim=8)
BIGAN = ["train", "bigan", "--preset", "smoke", "--batch-size", "8", "--g-width", "8", "--e-width", "8",
         "--d-width", "8", "--d-hidden", "16", "--z-dim", "8", "--d-dropout", "0.2", "--sample-every", "2",
         "--log-every", "2", "--no-progress"]


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------------------------ the networks
def test_encoder_maps_images_to_codes_and_refuses_other_shapes():
    E = Encoder(z_dim=7, channels=1, width=4)
    assert E(images(3)).shape == (3, 7)
    assert E.body(images(2)).shape == (2, 16, 4, 4)  # (N, 4w, 4, 4) before the linear head
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 32, 32\), got \(2, 1, 28, 28\)"):
        E(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="z_dim must be a positive integer"):
        Encoder(z_dim=0)


def test_joint_discriminator_gives_one_logit_per_pair():
    D = JointDiscriminator(z_dim=5, channels=1, width=4, hidden=6, dropout=0.2)
    assert D(images(3), torch.randn(3, 5)).shape == (3,)
    assert D.x_path(images(2)).shape == (2, 16 * 4 * 4) and D.z_path(torch.randn(2, 5)).shape == (2, 6)
    with pytest.raises(ValueError, match=r"z must have shape \(3, 5\) to pair with x, got \(2, 5\)"):
        D(images(3), torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        JointDiscriminator(z_dim=5, dropout=1.0)


def test_the_discriminators_logit_depends_on_both_x_and_z():
    torch.manual_seed(0)
    D = JointDiscriminator(z_dim=5, channels=1, width=4, hidden=8).eval()
    x, z = images(4, seed=1).requires_grad_(), torch.randn(4, 5, requires_grad=True)
    logits = D(x, z)
    gx, gz = torch.autograd.grad(logits.sum(), (x, z))
    assert (gx.flatten(1).norm(dim=1) > 0).all() and (gz.norm(dim=1) > 0).all()
    with torch.no_grad():
        assert not torch.allclose(D(x, z.roll(1, 0)), logits)  # the same images with other codes
        assert not torch.allclose(D(x.roll(1, 0), z), logits)  # the same codes with other images


def test_seeded_dropout_draws_its_masks_from_its_generator_and_is_off_in_eval_mode():
    drop = SeededDropout(0.5)
    h = torch.ones(4, 100)
    drop.generator = torch.Generator().manual_seed(3)
    a = drop(h)
    drop.generator = torch.Generator().manual_seed(3)
    assert torch.equal(a, drop(h))
    assert set(a.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - p)
    assert torch.equal(drop.eval()(h), h)


# ------------------------------------------------------------------------------------------ the losses
def test_bigan_losses_by_hand():
    l_real = torch.tensor([2.0, -1.0])  # D's logits on (x, E(x))
    l_fake = torch.tensor([0.5, -3.0])  # and on (G(z), z)
    sig = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    d_hand = -np.mean(np.log(sig(l_real.numpy()))) - np.mean(np.log(1 - sig(l_fake.numpy())))
    eg_hand = -np.mean(np.log(sig(l_fake.numpy()))) - np.mean(np.log(1 - sig(l_real.numpy())))
    assert bigan_d_loss(l_real, l_fake).item() == pytest.approx(d_hand, rel=1e-6)
    assert bigan_eg_loss(l_real, l_fake).item() == pytest.approx(eg_hand, rel=1e-6)
    # at D = 1/2 everywhere (all logits 0) both losses are 2 log 2, the value of the game at its optimum
    zero = torch.zeros(3)
    assert bigan_d_loss(zero, zero).item() == pytest.approx(2 * np.log(2))
    assert bigan_eg_loss(zero, zero).item() == pytest.approx(2 * np.log(2))


# ------------------------------------------------------------------------------------------ the probe
def test_the_probe_recovers_a_linearly_separable_labelling_and_is_deterministic():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 6, generator=gen) * 8  # four well-separated classes in 6 dimensions
    labels = torch.arange(400) % 4
    features = centres[labels] + torch.randn(400, 6, generator=gen)
    scale = torch.tensor([1e-3, 1.0, 50.0, 1.0, 1.0, 1e3])  # per-feature scales: standardising undoes them
    probe = fit_linear_probe(features * scale, labels)
    assert probe.accuracy(features * scale, labels) == 1.0
    again = fit_linear_probe(features * scale, labels)
    assert torch.equal(probe.W, again.W) and torch.equal(probe.b, again.b)
    test_labels = torch.arange(100) % 4
    test = centres[test_labels] + torch.randn(100, 6, generator=gen)
    assert probe_accuracy(features * scale, labels, test * scale, test_labels) == 1.0


def test_the_probe_on_noise_features_is_near_chance_and_refuses_bad_input():
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(1000) % 10
    acc = probe_accuracy(torch.randn(1000, 5, generator=gen), labels, torch.randn(1000, 5, generator=gen), labels)
    assert acc < 0.2
    with pytest.raises(ValueError, match="must be an int64 tensor of shape"):
        fit_linear_probe(torch.randn(4, 2), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="features must be a tensor of features"):
        fit_linear_probe(torch.randn(4), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="contains NaN"):
        fit_linear_probe(torch.tensor([[0.0], [float("nan")]]), torch.tensor([0, 1]))


def test_same_label_partners_pair_each_item_with_another_of_its_class():
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3])
    partner = same_label_partners(labels, seed=0)
    assert torch.equal(labels[partner], labels)
    alone = labels == 3
    assert (partner[~alone] != torch.arange(len(labels))[~alone]).all() and partner[7] == 7


# ------------------------------------------------------------------------------------------ config and trainer
@pytest.mark.parametrize("field, value, message", [
    ("image_size", 64, "image_size must be 32"),
    ("d_dropout", 1.0, r"d_dropout must lie in \[0, 1\)"),
    ("weight_decay", -1.0, "weight_decay"),
    ("z_dim", 0, "z_dim must be a positive integer"),
    ("lr_eg", 0.0, "lr_eg"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        bigan_preset(tier="smoke", **{field: value})


def test_presets_grow_with_the_tier():
    smoke, lecture, full = (bigan_preset(tier=t) for t in ("smoke", "lecture", "full"))
    assert bigan_preset(True) == smoke and bigan_preset() == full
    assert smoke.steps < lecture.steps < full.steps and smoke.e_width <= lecture.e_width <= full.e_width
    assert lecture.z_dim == smoke.z_dim == full.z_dim  # the probe reads codes of the same length at every size


def test_a_step_updates_all_three_networks_and_the_weights_depend_on_the_seed_only():
    config = bigan_preset(tier="smoke", steps=1, **TINY)
    a, b = BiGANTrainer(config, images(32)), BiGANTrainer(config, images(32, seed=5))
    for net in ("E", "G", "D"):
        assert_same_state(getattr(a, net).state_dict(), getattr(b, net).state_dict(), net)
    before = {n: [p.detach().clone() for p in getattr(a, n).parameters()] for n in ("E", "G", "D")}
    a.train(progress=False)
    for n, old in before.items():
        assert any(not torch.equal(p, q) for p, q in zip(getattr(a, n).parameters(), old)), n
    assert set(a.history.values) == {"step", "d_loss", "eg_loss", "d_real", "d_fake"}
    assert a.encode(images(3)).shape == (3, 8) and a.reconstruct(images(3)).shape == (3, 1, 32, 32)
    with pytest.raises(TypeError, match="config must be a BiGANConfig"):
        BiGANTrainer(dataclasses.asdict(config), images(32))


def test_the_inversion_is_watched_every_log_every_steps():
    config = bigan_preset(tier="smoke", steps=6, log_every=3, sample_every=3, **TINY)
    trainer = BiGANTrainer(config, images(32))
    trainer.train(progress=False)
    assert trainer.inversion.values["step"] == [3, 6]
    assert all(v > 0 for v in trainer.inversion.values["recon_l1"] + trainer.inversion.values["latent_l1"])
    assert [s for s, _, _ in trainer.snapshots] == [3, 6]


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bigan") / "run"
    ok([*BIGAN, "--steps", "4", "--out", out])
    return out


def test_the_registry_knows_bigan():
    spec = get_spec("bigan")
    assert spec.kind == BiGANTrainer.KIND and spec.config_class is BiGANConfig
    rc, out, _ = cli(["train", "bigan", "--help"])
    text = " ".join(out.split())
    assert rc == 0 and "--e-width" in text and "--d-dropout" in text and "--image-size" not in text


def test_a_smoke_run_writes_every_file(run):
    import matplotlib.pyplot as plt

    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["steps"]) == ("bigan", "smoke", 4)
    report = metrics["report"]
    assert list(report) == ["linear probe on E(x)", "label kept G(E(x))", "L1 of G(E(x))", "fd_lenet",
                            "classifier_score", "class_histogram_kl"]
    for name, row in report.items():
        assert set(row) == {"floor", "trained", "ceiling", "better"}, name
        assert (row["floor"] > row["ceiling"]) == (row["better"] == "higher"), name  # the reference beats untrained
    assert report["linear probe on E(x)"]["floor"] > 0.9  # the LeNet's features, trained with the labels
    shapes = {"images": (1000, 1, 32, 32), "inputs": (1000, 1, 32, 32), "reconstructions": (1000, 1, 32, 32),
              "labels": (1000,)}
    with np.load(run / "samples.npz") as npz:
        assert {k: npz[k].shape for k in npz.files} == shapes
        assert npz["labels"].dtype == np.int64 and set(np.unique(npz["labels"])) == set(range(10))
        for k in ("images", "inputs", "reconstructions"):
            assert npz[k].dtype == np.float32 and np.abs(npz[k]).max() <= 1, k
    assert plt.imread(run / "samples.png").ndim == 3
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 4 and state["run"]["model"] == "bigan" and state["inversion"]["step"] == [2, 4]


def test_n_steps_then_resume_to_2n_equals_2n_straight(run, tmp_path):
    half = tmp_path / "half"
    ok([*BIGAN, "--steps", "2", "--out", half])
    ok(["train", "bigan", "--resume", half / "checkpoint.pt", "--steps", "4", "--no-progress"])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(run / "checkpoint.pt")
    assert resumed.pop("run")["preset"] == whole.pop("run")["preset"] == "smoke"
    assert_same_state(resumed, whole)
    with np.load(half / "samples.npz") as a, np.load(run / "samples.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in b.files)
    report = json.loads((half / "metrics.json").read_text())["report"]
    assert report == json.loads((run / "metrics.json").read_text())["report"]
