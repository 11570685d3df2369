"""BigGAN in miniature: hierarchical class-conditional batch norm, the networks, spectral norm by flag, the
orthogonal regulariser, truncation with resampling, the moving average, the trainer, and ``gancourse train
biggan`` (every file written, exact resume)."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from gancourse.deep.biggan import (  # noqa: E402
    BigGANDiscriminator,
    BigGANGenerator,
    HierarchicalBatchNorm2d,
    apply_spectral_norm,
    has_spectral_norm,
    n_blocks_for,
    orthogonal_penalty,
    orthogonal_regularization,
    regularized_weights,
    truncated_normal,
)
from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.runs.biggan import BIGGAN, TRUNCATIONS, truncation_rows  # noqa: E402
from gancourse.deep.runs.cgan import eval_labels  # noqa: E402
from gancourse.deep.runtime import update_ema  # noqa: E402
from gancourse.deep.train_biggan import BigGANConfig, BigGANTrainer, biggan_preset  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = ["--batch-size", "8", "--g-width", "4", "--d-width", "4", "--z-dim", "8", "--shared-dim", "4",
        "--sample-every", "2", "--ema-start", "2", "--no-progress"]
BIGGAN_CLI = ["train", "biggan", "--preset", "smoke", *TINY]
MAIN_ROWS = ("label accuracy", "worst class accuracy", "fd_lenet")


def tiny_config(**kw) -> BigGANConfig:
    return biggan_preset(tier="smoke", **{**dict(steps=3, batch_size=8, g_width=4, d_width=4, z_dim=8, shared_dim=4,
                                                 n_samples=2, sample_every=2, ema_start=1), **kw})


def toy_data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 32, 32, generator=gen) * 2 - 1, torch.arange(n) % 10


# ------------------------------------------------------------------------------------------ layers
def test_hierarchical_batch_norm_is_batch_norm_times_one_plus_a_linear_map_plus_another():
    torch.manual_seed(0)
    layer = HierarchicalBatchNorm2d(3, cond_dim=5)
    x, c = torch.randn(6, 3, 4, 4) * 2 + 1, torch.randn(6, 5)
    hand = F.batch_norm(x, None, None, training=True, eps=layer.bn.eps)
    gamma, beta = 1 + c @ layer.gain.weight.t(), c @ layer.bias.weight.t()  # (6, 5) @ (5, 3) -> (6, 3)
    assert torch.allclose(layer(x, c), hand * gamma[:, :, None, None] + beta[:, :, None, None], atol=1e-5)
    with torch.no_grad():  # with zero maps it is a plain batch norm
        layer.gain.weight.zero_()
        layer.bias.weight.zero_()
    assert torch.allclose(layer(x, c), hand, atol=1e-5)
    with pytest.raises(ValueError, match=r"the condition must have shape \(N, 5\), got \(6, 4\)"):
        layer(x, torch.randn(6, 4))


def test_shapes_of_the_generator_and_both_discriminators():
    torch.manual_seed(0)
    G = BigGANGenerator(z_dim=16, n_classes=10, shared_dim=4, channels=1, width=8, image_size=32)
    z, y = torch.randn(5, 16), torch.tensor([0, 1, 2, 9, 9])
    x = G(z, y)
    assert x.shape == (5, 1, 32, 32) and x.abs().max() <= 1
    assert len(G.blocks) == 3 and G.chunk == 4 and G.linear.in_features == 4  # 16 = 4 chunks of 4
    assert [b.conv2.out_channels for b in G.blocks] == [16, 8, 8] and G.linear.out_features == 32 * 16
    assert all(b.bn1.cond_dim == 4 + 4 for b in G.blocks)  # [e(y), z_i]
    assert BigGANGenerator(15, 10, 4, 3, 8, 64)(torch.randn(2, 15), y[:2]).shape == (2, 3, 64, 64)
    for kind in ("projection", "concat"):
        D = BigGANDiscriminator(1, 10, width=8, image_size=32, kind=kind)
        assert D(x, y).shape == (5,) and D.phi(x, y).shape == (5, 32) and D.feature_dim == 32
        assert D.blocks[0].conv1.in_channels == (1 if kind == "projection" else 11)
        assert (D.embed is None) == (kind == "concat")
    with pytest.raises(ValueError, match="z_dim must split into 4 equal chunks"):
        BigGANGenerator(z_dim=10)
    with pytest.raises(ValueError, match="image_size must be a power of two of at least 8"):
        n_blocks_for(24)
    with pytest.raises(ValueError, match="unknown discriminator 'aux'; valid options are: 'projection', 'concat'"):
        BigGANDiscriminator(kind="aux")


def test_hierarchical_latents_a_chunk_reaches_only_its_blocks_batch_norms():
    torch.manual_seed(0)
    G = BigGANGenerator(z_dim=16, n_classes=10, shared_dim=4, channels=1, width=4, image_size=32)
    z, y = torch.randn(3, 16), torch.tensor([1, 5, 7])

    def affines(z):
        conds = G.conditions(z, y)
        return [torch.cat([*b.bn1.affine(c), *b.bn2.affine(c)], dim=1) for b, c in zip(G.blocks, conds)]

    base = affines(z)
    for k in range(1, 4):  # chunk k conditions block k - 1 and no other
        z2 = z.clone()
        z2[:, 4 * k: 4 * (k + 1)] += 1.0
        changed = [not torch.allclose(a, b) for a, b in zip(base, affines(z2))]
        assert changed == [i == k - 1 for i in range(3)], k
    z0 = z.clone()
    z0[:, :4] += 1.0  # chunk 0 goes to the input layer only: every block's affine is unchanged, the image not
    assert all(torch.equal(a, b) for a, b in zip(base, affines(z0)))
    assert not torch.allclose(G(z, y), G(z0, y))
    # the class reaches every block through the one shared embedding
    y2 = torch.tensor([2, 5, 7])
    conds, conds2 = G.conditions(z, y), G.conditions(z, y2)
    assert all(not torch.equal(a[0], b[0]) and torch.equal(a[1:], b[1:]) for a, b in zip(conds, conds2))
    assert all(torch.equal(c[:, :4], G.shared(y)) for c in conds)


def test_projection_logit_is_psi_plus_the_class_inner_product_and_concat_reads_planes():
    torch.manual_seed(0)
    D = BigGANDiscriminator(1, 10, width=4, image_size=32, kind="projection")
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.tensor([3, 3, 7, 0])
    with torch.no_grad():
        h = D.phi(x).double()
        hand = h @ D.psi.weight.double()[0] + D.psi.bias.double()[0] + (D.embed.weight.double()[y] * h).sum(1)
        assert torch.allclose(D(x, y).double(), hand, atol=1e-5)
        C = BigGANDiscriminator(1, 10, width=4, image_size=32, kind="concat")
        a, b = C(x, y), C(x, torch.tensor([3, 4, 7, 1]))
        assert a[0] == b[0] and a[2] == b[2] and a[1] != b[1] and a[3] != b[3]


def test_spectral_norm_on_every_weight_or_none():
    torch.manual_seed(0)
    G, D = BigGANGenerator(16, 10, 4, 1, 4, 32), BigGANDiscriminator(1, 10, 4, 32)
    layers = [m for net in (G, D) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear,
                                                                           torch.nn.Embedding))]
    assert not any(has_spectral_norm(m) for m in layers)
    apply_spectral_norm(G, skip=(G.shared,))
    apply_spectral_norm(D)
    assert all(has_spectral_norm(m) for m in layers if m is not G.shared) and not has_spectral_norm(G.shared)
    # after enough power iterations the largest singular value of a normalised weight is 1
    conv = D.blocks[1].conv1
    for _ in range(50):
        conv(torch.randn(2, conv.in_channels, 8, 8))
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert sigma == pytest.approx(1.0, abs=1e-3)


def test_the_trainer_applies_spectral_norm_by_flag():
    images, labels = toy_data()
    for sn in (True, False):
        t = BigGANTrainer(tiny_config(spectral_norm=sn), images, labels)
        convs = [m for net in (t.G, t.D, t.G_ema) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) > 10 and all(has_spectral_norm(m) == sn for m in convs)
        assert has_spectral_norm(t.D.embed) == sn and not has_spectral_norm(t.G.shared)


# ------------------------------------------------------------------------------------------ the regulariser
def test_orthogonal_penalty_against_a_direct_computation_and_its_gradient():
    torch.manual_seed(0)
    w = torch.randn(6, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    m = w.detach().reshape(6, -1)  # (6, 27): rows are the filters
    direct = sum((m[i] @ m[j]) ** 2 for i in range(6) for j in range(6) if i != j)
    beta = 1e-4
    r = orthogonal_penalty(w, beta)
    assert r.item() == pytest.approx(beta * direct.item(), rel=1e-12)
    # the paper's form W^T W with the filters as columns gives the same number
    wt = m.t()  # (27, 6)
    assert r.item() == pytest.approx(beta * ((wt.t() @ wt) * (1 - torch.eye(6, dtype=torch.float64))).square().sum()
                                     .item(), rel=1e-12)
    (g,) = torch.autograd.grad(r, w)
    off = (m @ m.t()) * (1 - torch.eye(6, dtype=torch.float64))
    assert torch.allclose(g.reshape(6, -1), 4 * beta * off @ m, rtol=1e-10)  # the closed form
    assert torch.autograd.gradcheck(lambda v: orthogonal_penalty(v, 0.3), (w,))
    # zero exactly for orthogonal rows of any norms; the norms themselves are free
    q, _ = torch.linalg.qr(torch.randn(27, 6, dtype=torch.float64))
    scaled = (q.t() * torch.tensor([1.0, 2, 3, 4, 5, 6], dtype=torch.float64)[:, None]).reshape(6, 3, 3, 3)
    assert orthogonal_penalty(scaled, 1.0).item() == pytest.approx(0.0, abs=1e-20)
    with pytest.raises(ValueError, match="beta"):
        orthogonal_penalty(w, -1.0)


def test_orthogonal_regularization_sums_over_gs_weights_but_the_shared_embedding():
    torch.manual_seed(0)
    G = BigGANGenerator(16, 10, 4, 1, 4, 32)
    ws = regularized_weights(G)
    assert all(w.ndim >= 2 for w in ws) and not any(w is G.shared.weight for w in ws)
    assert any(w is G.blocks[0].bn1.gain.weight for w in ws) and any(w is G.linear.weight for w in ws)
    assert len(ws) == sum(1 for p in G.parameters() if p.ndim >= 2) - 1
    total = orthogonal_regularization(G, 0.5)
    assert total.item() == pytest.approx(sum(orthogonal_penalty(w, 0.5).item() for w in ws), rel=1e-6)
    apply_spectral_norm(G, skip=(G.shared,))  # under spectral norm: the unnormalised parameters
    originals = [m.parametrizations.weight.original for m in G.modules() if has_spectral_norm(m)]
    ws = regularized_weights(G)
    assert all(any(w is o for o in originals) for w in ws) and len(ws) == len(originals)


# ------------------------------------------------------------------------------------------ truncation
def _truncated_cdf(x: np.ndarray, t: float) -> np.ndarray:
    phi = lambda v: 0.5 * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))  # noqa: E731
    return (phi(x) - phi(-t)) / (phi(t) - phi(-t))


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0])
def test_truncated_normal_stays_within_the_threshold_with_the_normals_shape_inside(t):
    z = truncated_normal((200, 100), t, torch.Generator().manual_seed(0))
    assert z.shape == (200, 100) and z.abs().max() <= t
    x = np.sort(z.flatten().double().numpy())
    ks = np.abs(np.arange(1, len(x) + 1) / len(x) - _truncated_cdf(x, t)).max()
    assert ks < 0.015  # 20,000 values: Kolmogorov-Smirnov's 1% critical value is 0.0115
    clipped = torch.randn(200, 100, generator=torch.Generator().manual_seed(0)).clamp(-t, t)
    x = np.sort(clipped.flatten().double().numpy())  # clipping piles mass on +-t: far from the truncated law
    assert np.abs(np.arange(1, len(x) + 1) / len(x) - _truncated_cdf(x, t)).max() > 0.02  # >= P(z > 2) = 0.023


def test_truncated_normal_without_a_threshold_is_the_normal_and_refuses_bad_ones():
    a = truncated_normal((3, 4), None, torch.Generator().manual_seed(1))
    assert torch.equal(a, torch.randn(3, 4, generator=torch.Generator().manual_seed(1)))
    b = truncated_normal((3, 4), 100.0, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # nothing to redraw: the same values
    with pytest.raises(ValueError, match="threshold"):
        truncated_normal((3,), -1.0)
    with pytest.raises(ValueError, match="too small"):
        truncated_normal((1000,), 1e-6, max_rounds=3)


def test_update_ema_moves_parameters_and_copies_buffers():
    torch.manual_seed(0)
    net, ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        net.weight.fill_(2.0)
        net.running_mean.fill_(5.0)
    update_ema(ema, net, 0.75)
    assert torch.allclose(ema.weight, torch.full((3,), 0.75 * 1 + 0.25 * 2))
    assert torch.equal(ema.running_mean, net.running_mean)
    update_ema(ema, net, 0.0)
    assert torch.equal(ema.weight, net.weight)


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("field, value, message", [
    ("discriminator", "aux", "unknown discriminator 'aux'; valid options are: 'projection', 'concat'"),
    ("spectral_norm", "yes", "spectral_norm must be True or False"),
    ("ortho_weight", -1e-4, "ortho_weight"),
    ("ema_decay", 1.0, "ema_decay must lie in \\[0, 1\\)"),
    ("d_steps", 0, "d_steps must be a positive integer"),
    ("z_dim", 30, "z_dim must be a multiple of 4"),
    ("n_classes", 1, "n_classes must be at least 2"),
    ("image_size", 24, "image_size must be a power of two"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        BigGANConfig(**{field: value})


def test_presets_by_tier():
    smoke, lecture, full = (biggan_preset(tier=t) for t in ("smoke", "lecture", "full"))
    assert biggan_preset(True) == smoke and biggan_preset() == full
    assert smoke.steps < lecture.steps < full.steps and lecture.g_width < full.g_width
    assert all(c.discriminator == "projection" and c.spectral_norm and c.ortho_weight == 1e-4
               for c in (smoke, lecture, full))
    assert full.d_steps == 2 and full.beta1 == 0 and full.batch_size > lecture.batch_size
    assert biggan_preset(tier="lecture", batch_size=256).batch_size == 256


# ------------------------------------------------------------------------------------------ trainer
def test_the_first_losses_are_hinge_and_the_ortho_term():
    images, labels = toy_data()
    config = tiny_config(d_steps=1)
    trainer, replay = BigGANTrainer(config, images, labels), BigGANTrainer(config, images, labels)
    ortho0 = orthogonal_regularization(replay.G, config.ortho_weight).item()
    trainer.train_step()
    trainer.history.flush()
    idx = replay.batcher.next()
    z = torch.randn(config.batch_size, config.z_dim, generator=replay.generator)
    y_fake = torch.randint(config.n_classes, (config.batch_size,), generator=replay.generator)
    with torch.no_grad():
        fake = replay.G(z, y_fake)
        s_real, s_fake = replay.D(images[idx], labels[idx]).double(), replay.D(fake, y_fake).double()
    hand = torch.relu(1 - s_real).mean() + torch.relu(1 + s_fake).mean()
    h = trainer.history.values
    assert h["d_loss"][0] == pytest.approx(hand.item(), rel=1e-5)
    assert h["d_real"][0] == pytest.approx(s_real.mean().item(), rel=1e-5)
    assert h["ortho"][0] == pytest.approx(ortho0, rel=1e-5) and ortho0 > 0
    off = BigGANTrainer(tiny_config(ortho_weight=0.0), images, labels)
    off.train_step()
    assert off.history.flush()["ortho"] == 0.0


def test_the_average_copies_g_until_ema_start_then_lags():
    images, labels = toy_data()
    trainer = BigGANTrainer(tiny_config(ema_start=1, ema_decay=0.9), images, labels)
    trainer.train_step()
    assert all(torch.equal(a, b) for a, b in zip(trainer.G_ema.parameters(), trainer.G.parameters()))
    before = [p.clone() for p in trainer.G_ema.parameters()]
    trainer.train_step()
    for old, new, g in zip(before, trainer.G_ema.parameters(), trainer.G.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * g, atol=1e-6)
    assert trainer.sampler is trainer.G_ema
    plain = BigGANTrainer(tiny_config(ema_decay=0.0), images, labels)
    assert plain.sampler is plain.G


def test_sampling_with_a_seed_and_a_truncation():
    images, labels = toy_data()
    trainer = BigGANTrainer(tiny_config(), images, labels)
    x = trainer.sample(torch.tensor([3, 3, 4]))
    assert x.shape == (3, 1, 32, 32) and torch.equal(x, trainer.sample([3, 3, 4]))
    assert not torch.equal(x, trainer.sample([3, 3, 4], seed=5))
    assert not torch.equal(x, trainer.sample([3, 3, 4], truncation=0.5))
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        trainer.sample(torch.tensor([3, 10]))


def test_k_steps_save_load_k_steps_equals_2k_steps(tmp_path):
    images, labels = toy_data()
    config = tiny_config(steps=4, d_steps=2)
    straight = BigGANTrainer(config, images, labels)
    straight.train(progress=False)
    half = BigGANTrainer(config, images, labels)
    half.train(steps=2, checkpoint=tmp_path / "c.pt", progress=False)
    torch.manual_seed(123)  # the global generator is saved and restored too
    resumed = BigGANTrainer(config, images, labels).load(tmp_path / "c.pt")
    resumed.train(progress=False)
    a, b = resumed.state_dict(), straight.state_dict()
    for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z"):
        assert_same_state(a[key], b[key], key)
    assert any(k.endswith("_u") for k in a["D"])  # spectral norm's power-iteration vectors are in it


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("biggan") / "run"
    ok([*BIGGAN_CLI, "--steps", "3", "--out", out])
    return out


def test_help_shows_the_models_flags():
    rc, out, _ = cli(["train", "biggan", "--help"])
    text = " ".join(out.split())
    assert rc == 0 and "--discriminator {projection,concat}" in text and "--spectral-norm, --no-spectral-norm" in text
    assert "--ortho-weight" in text and "--batch-size" in text and "--n-classes" not in text
    rc, out, _ = cli(["train", "--help"])
    assert "BigGAN in miniature" in " ".join(out.split())


def test_a_biggan_run_writes_every_file_with_the_truncation_curve(run):
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["steps"]) == ("biggan", "smoke", 3)
    report = metrics["report"]
    curve = [name for t in TRUNCATIONS for name in truncation_rows(t)]
    assert list(report) == ["label accuracy", "worst class accuracy", "fd_lenet", *curve]
    assert "label accuracy (truncation 0.5)" in report and "fd_lenet (truncation 2)" in report
    for name in (*MAIN_ROWS, *curve):
        row = report[name]
        beats = row["floor"] > row["trained"] if row["better"] == "higher" else row["floor"] < row["trained"]
        assert beats and np.isfinite(row["trained"]), name  # 3 steps are far from real digits
    assert report["label accuracy"]["floor"] > 0.9
    with np.load(run / "samples.npz") as npz:
        images, labels = npz["images"], npz["labels"]
    assert images.shape == (1000, 1, 32, 32) and images.dtype == np.float32 and np.abs(images).max() <= 1
    assert np.array_equal(labels, eval_labels().numpy())
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0000002.png", "step-0000003.png"]
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 3 and state["kind"] == "biggan" and "G_ema" in state


def test_ablation_flags_run_from_the_command(tmp_path):
    out = tmp_path / "run"
    ok([*BIGGAN_CLI, "--steps", "2", "--discriminator", "concat", "--no-spectral-norm", "--ortho-weight", "0",
        "--out", out])
    state = load_checkpoint(out / "checkpoint.pt")
    c = state["config"]
    assert c["discriminator"] == "concat" and c["spectral_norm"] is False and c["ortho_weight"] == 0
    assert state["D"]["blocks.0.conv1.weight"].shape[1] == 1 + 10 and "embed.weight" not in state["D"]
    assert not any("parametrizations" in k for k in (*state["G"], *state["D"]))


def test_n_steps_then_resume_to_2n_equals_2n_straight(tmp_path):
    half, straight = tmp_path / "half", tmp_path / "straight"
    ok([*BIGGAN_CLI, "--steps", "2", "--out", half])
    ok(["train", "biggan", "--resume", half / "checkpoint.pt", "--steps", "4", "--no-progress"])
    ok([*BIGGAN_CLI, "--steps", "4", "--out", straight])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "rng"):
        assert_same_state(resumed[key], whole[key], key)
    assert json.loads((half / "metrics.json").read_text())["report"] == \
        json.loads((straight / "metrics.json").read_text())["report"]


def test_spec_config_fixes_the_data_fields():
    with pytest.raises(ValueError, match="n_classes cannot be set for this model"):
        BIGGAN.config("smoke", n_classes=5)
    assert dataclasses.asdict(BIGGAN.config("lecture"))["n_classes"] == 10
