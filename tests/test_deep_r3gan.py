"""R3GAN: the residual block and its fix-up start, the normalisation-free networks, the RpGAN + R1 + R2 trainer
(exact resume), ``gancourse train r3gan``, and the stability grid's classifier."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.losses import zero_centered_penalty  # noqa: E402
from gancourse.deep.r3gan import (  # noqa: E402
    NORM_LAYERS,
    R3GANDiscriminator,
    R3GANGenerator,
    ResidualBlock,
    stage_widths,
)
from gancourse.deep.runs.r3gan import R3GAN  # noqa: E402
from gancourse.deep.stability import (  # noqa: E402
    RULE,
    StabilityRule,
    class_counts,
    classify,
    count_outcomes,
    format_grid,
    grid_settings,
    recipe_config,
    run_cell,
    uniform_kl,
)
from gancourse.deep.train_gan import GANConfig  # noqa: E402
from gancourse.deep.train_r3gan import R3GANConfig, R3GANTrainer, logits_and_penalty, r3gan_preset  # noqa: E402
from gancourse.errors import TrainingDiverged  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = ["--batch-size", "8", "--g-width", "8", "--d-width", "8", "--z-dim", "8", "--group-size", "8",
        "--sample-every", "2", "--no-progress"]
R3_CLI = ["train", "r3gan", "--preset", "smoke", *TINY]


def tiny_config(**kw) -> R3GANConfig:
    return r3gan_preset(tier="smoke", **{**dict(steps=3, batch_size=8, g_width=8, d_width=8, z_dim=8, group_size=8,
                                               n_samples=4, sample_every=2), **kw})


def toy_images(n: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------------------------ networks
def test_a_fresh_residual_block_is_the_identity_and_learns_away_from_it():
    torch.manual_seed(0)
    block = ResidualBlock(16, n_blocks=4, expansion=2, group_size=8)
    assert torch.count_nonzero(block.project.weight) == 0  # fix-up: the branch's last layer starts at zero
    assert block.grouped.groups == 32 // 8  # grouped 3x3 over the expanded width
    x = torch.randn(3, 16, 8, 8)
    assert torch.equal(block(x), x)
    # the inner layers are live: the zero layer gets a gradient at once, so training moves the block off identity
    block(x).mul(torch.randn_like(x)).sum().backward()
    assert block.project.weight.grad.abs().sum() > 0
    with torch.no_grad():
        block.project.weight.normal_()
    assert not torch.allclose(block(x), x)


def test_fix_up_scales_the_inner_layers_by_the_number_of_blocks():
    torch.manual_seed(1)
    few, many = ResidualBlock(64, n_blocks=1), ResidualBlock(64, n_blocks=16)
    ratio = (few.expand.weight.std() / many.expand.weight.std()).item()
    assert ratio == pytest.approx(16 ** 0.25, rel=0.05)  # the gain L^(-1/4)


def test_residual_block_checks_its_groups():
    with pytest.raises(ValueError, match="group_size \\(6\\) must divide"):
        ResidualBlock(8, n_blocks=2, expansion=2, group_size=6)


@pytest.mark.parametrize("width, blocks", [(8, 1), (8, 2)])
def test_shapes_ranges_and_no_normalisation_layers(width, blocks):
    torch.manual_seed(0)
    G = R3GANGenerator(z_dim=8, width=width, blocks=blocks, group_size=8)
    D = R3GANDiscriminator(width=width, blocks=blocks, group_size=8)
    z = torch.randn(5, 8)
    x = G(z)
    assert x.shape == (5, 1, 32, 32) and D(x).shape == (5,)
    assert torch.equal(G.images(z), x.clamp(-1, 1))
    for net in (G, D):
        assert not any(isinstance(m, NORM_LAYERS) for m in net.modules())
        assert sum(isinstance(m, ResidualBlock) for m in net.modules()) == 4 * blocks
    assert stage_widths(width) == (2 * width, 2 * width, width, width)
    with pytest.raises(ValueError, match="shape \\(N, 8\\)"):
        G(torch.randn(5, 7))
    with pytest.raises(ValueError, match="image_size 32"):
        R3GANDiscriminator(image_size=64)


def test_d_output_of_a_sample_does_not_depend_on_the_rest_of_the_batch():
    # no batch statistics anywhere (unlike DCGAN's batch norm): a sample's logit is its own
    torch.manual_seed(0)
    D = R3GANDiscriminator(width=8, group_size=8)
    x = torch.randn(6, 1, 32, 32)
    assert torch.allclose(D(x)[:2], D(x[:2]), atol=1e-6)


def test_one_pass_penalty_equals_zero_centered_penalty():
    torch.manual_seed(0)
    D = R3GANDiscriminator(width=8, group_size=8).double()
    x = torch.randn(4, 1, 32, 32, dtype=torch.float64)
    logits, penalty = logits_and_penalty(D, x, 0.7)
    assert torch.allclose(logits.double(), D(x))
    assert penalty.item() == pytest.approx(zero_centered_penalty(D, x, 0.7).item(), rel=1e-10)
    # its parameter gradient (double backprop) matches autograd of the same penalty taken apart
    params = list(D.parameters())
    g1 = torch.autograd.grad(penalty, params, allow_unused=True)  # the last bias does not move the gradient
    g2 = torch.autograd.grad(zero_centered_penalty(D, x, 0.7), params, allow_unused=True)
    assert sum(a is not None for a in g1) > len(params) // 2
    for a, b in zip(g1, g2):
        assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, rtol=1e-8, atol=1e-12))


# ------------------------------------------------------------------------------------------ trainer
def test_config_checks():
    with pytest.raises(ValueError, match="gamma"):
        tiny_config(gamma=0.0)
    with pytest.raises(ValueError, match="ema is a decay"):
        tiny_config(ema=1.0)
    with pytest.raises(ValueError, match="group_size \\(5\\) must divide"):
        tiny_config(group_size=5)
    c = r3gan_preset(tier="lecture")
    assert (c.beta1, c.beta2) == (0.0, 0.99)  # the paper's Adam


def test_one_step_trains_d_on_rpgan_plus_r1_plus_r2(monkeypatch):
    """The D loss the trainer backpropagates is RpGAN + R1 (reals) + R2 (fakes), each with gamma."""
    seen = {}
    import gancourse.deep.train_r3gan as module

    def spy(D, x, gamma):
        logits, penalty = logits_and_penalty(D, x, gamma)
        seen.setdefault("calls", []).append((x.detach().clone(), gamma, penalty.item()))
        return logits, penalty

    monkeypatch.setattr(module, "logits_and_penalty", spy)
    trainer = R3GANTrainer(tiny_config(gamma=0.3), toy_images())
    trainer.train(steps=1, progress=False)
    (x_real, g1, r1), (x_fake, g2, r2) = seen["calls"]
    assert g1 == g2 == 0.3
    batch = trainer.images[trainer.batcher.perm[:8]]
    assert torch.equal(x_real, batch)  # R1 on the real minibatch
    assert not torch.equal(x_fake, batch)  # R2 on generated images
    h = trainer.history.values
    assert h["r1"][0] == pytest.approx(r1) and h["r2"][0] == pytest.approx(r2)
    assert h["d_loss"][0] > 0 and math.isfinite(h["g_loss"][0])


def test_ema_follows_g_and_is_off_at_zero():
    trainer = R3GANTrainer(tiny_config(ema=0.5), toy_images())
    trainer.train(steps=3, progress=False)
    p, p_ema = next(trainer.G.parameters()), next(trainer.G_ema.parameters())
    assert not torch.equal(p, p_ema) and trainer.sampler is trainer.G_ema
    off = R3GANTrainer(tiny_config(ema=0.0), toy_images())
    off.train(steps=2, progress=False)
    assert off.sampler is off.G


def test_k_steps_save_load_k_steps_equals_2k_steps(tmp_path):
    images = toy_images()
    straight = R3GANTrainer(tiny_config(steps=6), images)
    straight.train(progress=False)
    first = R3GANTrainer(tiny_config(steps=6), images)
    first.train(steps=3, checkpoint=tmp_path / "c.pt", progress=False)
    resumed = R3GANTrainer(tiny_config(steps=6), images).load(tmp_path / "c.pt")
    resumed.train(progress=False)
    a, b = straight.state_dict(), resumed.state_dict()
    for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "rng"):
        assert_same_state(a[key], b[key], key)
    assert torch.equal(straight.sample(8), resumed.sample(8))


def test_a_non_finite_loss_stops_training():
    trainer = R3GANTrainer(tiny_config(steps=4, log_every=1), toy_images())
    with torch.no_grad():
        trainer.D.to_logit.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged):
        trainer.train(progress=False)


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("r3gan") / "run"
    ok([*R3_CLI, "--steps", "3", "--out", out])
    return out


def test_help_shows_the_models_flags():
    rc, out, _ = cli(["train", "r3gan", "--help"])
    text = " ".join(out.split())
    assert rc == 0 and "--gamma" in text and "--group-size" in text and "--ema" in text
    assert "--channels" not in text and "--image-size" not in text
    rc, out, _ = cli(["train", "--help"])
    assert "R3GAN" in out


def test_an_r3gan_run_writes_every_file(run):
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["steps"]) == ("r3gan", "smoke", 3)
    report = metrics["report"]
    assert list(report) == ["fd_lenet", "classifier_score", "class_histogram_kl"]
    assert report["fd_lenet"]["floor"] < report["fd_lenet"]["ceiling"]
    with np.load(run / "samples.npz") as npz:
        images = npz["images"]
    assert images.shape == (1000, 1, 32, 32) and images.dtype == np.float32 and np.abs(images).max() <= 1
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 3 and state["kind"] == "r3gan" and state["run"]["model"] == "r3gan"
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0000002.png", "step-0000003.png"]


def test_n_steps_then_resume_to_2n_equals_2n_straight(tmp_path):
    half, straight = tmp_path / "half", tmp_path / "straight"
    ok([*R3_CLI, "--steps", "2", "--out", half])
    ok(["train", "r3gan", "--resume", half / "checkpoint.pt", "--steps", "4", "--no-progress"])
    ok([*R3_CLI, "--steps", "4", "--out", straight])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "rng"):
        assert_same_state(resumed[key], whole[key], key)
    with np.load(half / "samples.npz") as a, np.load(straight / "samples.npz") as b:
        assert np.array_equal(a["images"], b["images"])


def test_spec_fixes_the_data_fields():
    with pytest.raises(ValueError, match="channels cannot be set for this model"):
        R3GAN.config("smoke", channels=3)


# ------------------------------------------------------------------------------------------ stability grid
@pytest.mark.parametrize("fd, kl, classes, diverged, want", [
    (30.0, 0.02, 10, False, "ok"),
    (30.0, 0.02, 10, True, "diverged"),  # a non-finite loss, whatever the samples
    (float("nan"), 0.02, 10, False, "diverged"),
    (RULE.fd_diverged + 1, 0.02, 10, False, "diverged"),  # samples that are no longer digits
    (RULE.fd_diverged - 1, 0.02, 10, False, "ok"),
    (60.0, 0.9, 10, False, "collapsed"),  # a skewed class histogram
    (60.0, 0.1, RULE.min_classes - 1, False, "collapsed"),  # too few classes
    (60.0, 0.1, RULE.min_classes, False, "ok"),
])
def test_classify_follows_the_stated_rule(fd, kl, classes, diverged, want):
    assert classify(fd, kl, classes, diverged) == want


def test_classify_on_synthetic_class_histograms():
    rng = np.random.default_rng(0)
    balanced = rng.integers(0, 10, 500)
    three = rng.choice([1, 4, 7], 500)
    for labels, want in ((balanced, "ok"), (three, "collapsed")):
        hist = class_counts(labels) / len(labels)
        kl = uniform_kl(hist)
        present = int((hist >= RULE.class_share).sum())
        assert classify(25.0, kl, present) == want
    assert class_counts(three).sum() == 500 and np.count_nonzero(class_counts(three)) == 3
    assert uniform_kl(np.full(10, 0.1)) == pytest.approx(0.0, abs=1e-12)
    assert uniform_kl(np.eye(10)[3]) == pytest.approx(math.log(10))
    with pytest.raises(ValueError, match="class_share"):
        StabilityRule(class_share=1.5)


def test_count_outcomes_and_format():
    rows = [dict(recipe="dcgan", lr=1e-3, seed=s, outcome=o, fd_lenet=f, class_kl=0.1, classes=10, cpu_s=1.0)
            for s, (o, f) in enumerate([("ok", 40.0), ("collapsed", 90.0), ("diverged", math.inf)])]
    rows.append(dict(rows[0], recipe="r3gan"))
    assert count_outcomes(rows) == {"dcgan": {"ok": 1, "collapsed": 1, "diverged": 1},
                                    "r3gan": {"ok": 1, "collapsed": 0, "diverged": 0}}
    text = format_grid(rows)
    assert text.count("\n") == len(rows) + 1 and "diverged" in text and "inf" in text


def test_recipes_share_lr_seed_and_steps():
    dc, r3 = recipe_config("dcgan", "smoke", 3e-3, 2, 7), recipe_config("r3gan", "smoke", 3e-3, 2, 7)
    assert isinstance(dc, GANConfig) and dc.loss == "dcgan" and (dc.beta1, dc.beta2) == (0.5, 0.999)
    assert isinstance(r3, R3GANConfig) and (r3.beta1, r3.beta2) == (0.0, 0.99)
    for c in (dc, r3):
        assert (c.lr_g, c.lr_d, c.seed, c.steps) == (3e-3, 3e-3, 2, 7)
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_config("wgan", "smoke", 1e-3, 0, 5)
    small = recipe_config("r3gan", "lecture", 1e-3, 0, 9, g_width=8, d_width=8, lr_g=1.0)
    assert (small.g_width, small.d_width, small.lr_g) == (8, 8, 1e-3)  # the grid's lr wins over fields
    grid = grid_settings("lecture")
    assert set(grid) == {"lrs", "seeds", "steps", "fields"} and set(grid["fields"]) == {"dcgan", "r3gan"}
    for recipe, fields in grid["fields"].items():  # every grid config is valid
        recipe_config(recipe, "lecture", grid["lrs"][0], 0, grid["steps"], **fields)


def test_run_cell_reports_a_diverged_run(monkeypatch):
    from gancourse.deep.data import mnist5k
    from gancourse.deep.lenet import load_lenet
    import gancourse.deep.stability as stability

    held, _ = mnist5k("heldout")
    images, _ = mnist5k("train")

    def blow_up(self, *a, **k):
        raise TrainingDiverged(3, {"d_loss": 1.0})

    monkeypatch.setattr(stability.R3GANTrainer, "train", blow_up)
    row = run_cell("r3gan", 1e-3, 0, 5, "smoke", images[:64], held[:500], load_lenet())
    assert row["outcome"] == "diverged" and row["diverged_at"] == 3 and row["fd_lenet"] == math.inf
