"""Salimans et al. (2016) tricks in the DCGAN: virtual batch norm, minibatch discrimination, label smoothing."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from gancourse.deep.losses import d_loss_bce  # noqa: E402
from gancourse.deep.train_gan import GANConfig, GANTrainer, dcgan_preset  # noqa: E402
from gancourse.deep.tricks import MinibatchDiscrimination, VirtualBatchNorm2d  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(steps=4, batch_size=8, z_dim=8, g_width=8, d_width=8, image_size=16, log_every=1, sample_every=2,
            n_samples=8)
TRICKS = ["--label-smoothing", "0.9", "--minibatch-discrimination", "4", "--g-norm", "virtual"]
SMOKE = ["train", "dcgan", "--preset", "smoke", "--batch-size", "8", "--g-width", "8", "--d-width", "8",
         "--z-dim", "8", "--sample-every", "2", "--no-progress", *TRICKS]


def images(n: int = 32, c: int = 1, s: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def randn(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------------------------ virtual batch norm
def vbn(n_features: int = 3, n_reference: int = 4, seed: int = 0) -> VirtualBatchNorm2d:
    layer = VirtualBatchNorm2d(n_features, n_reference).double()
    with torch.no_grad():  # gains and biases away from 1 and 0, so that a wrong affine part shows
        layer.weight.copy_(1 + randn(n_features, seed=seed + 10))
        layer.bias.copy_(randn(n_features, seed=seed + 11))
    return layer


def test_vbn_keeps_the_shape_and_refuses_inputs_without_the_reference_rows():
    layer = vbn()
    assert layer(randn(4 + 5, 3, 2, 2)).shape == (9, 3, 2, 2)
    with pytest.raises(ValueError, match="reference batch, got 3 rows"):
        layer(randn(3, 3, 2, 2))
    with pytest.raises(ValueError, match=r"\(R \+ N, 3, H, W\)"):
        layer(randn(6, 2, 2, 2))


def test_an_examples_vbn_output_does_not_depend_on_the_rest_of_its_batch_unlike_bn():
    layer, ref = vbn(), randn(4, 3, 5, 5, seed=1)
    a, b, c = randn(1, 3, 5, 5, seed=2), randn(1, 3, 5, 5, seed=3), 3 * randn(1, 3, 5, 5, seed=4) + 2
    with_b = layer(torch.cat([ref, a, b]))[4]  # the row of a, batched with b
    with_c = layer(torch.cat([ref, a, c]))[4]  # ... and with c
    alone = layer(torch.cat([ref, a]))[4]
    torch.testing.assert_close(with_b, with_c, rtol=0, atol=1e-12)
    torch.testing.assert_close(with_b, alone, rtol=0, atol=1e-12)
    bn = nn.BatchNorm2d(3).double()  # batch norm: the same example comes out differently
    assert not torch.allclose(bn(torch.cat([a, b]))[0], bn(torch.cat([a, c]))[0])


def test_vbn_equals_the_hand_computation_with_the_reference_statistics():
    R, layer = 4, vbn()
    ref, x = randn(R, 3, 5, 5, seed=1), randn(2, 3, 5, 5, seed=2)
    out = layer(torch.cat([ref, x]))
    g, beta = layer.weight.detach(), layer.bias.detach()
    for i in range(2):
        for ch in range(3):
            mu_ref, s_ref = ref[:, ch].mean(), (ref[:, ch] ** 2).mean()
            mu_i, s_i = x[i, ch].mean(), (x[i, ch] ** 2).mean()
            mu = mu_i / (R + 1) + R / (R + 1) * mu_ref
            var = s_i / (R + 1) + R / (R + 1) * s_ref - mu**2
            want = g[ch] * (x[i, ch] - mu) / torch.sqrt(var + 1e-5) + beta[ch]
            torch.testing.assert_close(out[R + i, ch], want, rtol=1e-10, atol=1e-10)
    # the reference rows are batch-normalised with their own statistics (biased variance)
    torch.testing.assert_close(out[:R], F.batch_norm(ref, None, None, g, beta, training=True, eps=1e-5))


def test_the_virtual_bn_generator_maps_each_z_alone_through_the_fixed_reference_batch():
    torch.manual_seed(0)
    G = DCGANGenerator(8, 1, 8, 16, norm="virtual", n_reference=6)
    assert G.z_reference.shape == (6, 8) and "z_reference" in G.state_dict()
    assert sum(isinstance(m, VirtualBatchNorm2d) for m in G.net) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.net)
    z = torch.randn(5, 8)
    with torch.no_grad():
        out = G(z)
        assert out.shape == (5, 1, 16, 16)
        torch.testing.assert_close(G(z[:2]), out[:2], rtol=0, atol=1e-6)  # other rows do not matter
        torch.testing.assert_close(G.eval()(z), out, rtol=0, atol=1e-6)  # no train/eval difference
        G.z_reference.add_(1.0)  # ... but the reference batch does, through every layer's statistics
        assert not torch.allclose(G(z), out, atol=1e-3)


def test_the_generator_keeps_its_default_construction():
    torch.manual_seed(0)
    G = DCGANGenerator(8, 1, 8, 16)
    assert G.norm == "batch" and sum(isinstance(m, nn.BatchNorm2d) for m in G.net) == 2
    assert "z_reference" not in G.state_dict()
    with pytest.raises(ValueError, match="norm"):
        DCGANGenerator(8, 1, 8, 16, norm="layer")


# ------------------------------------------------------------------------------------------ minibatch discrimination
def test_minibatch_discrimination_shapes_and_the_hand_formula():
    layer = MinibatchDiscrimination(3, n_kernels=2, kernel_dim=2).double()
    with torch.no_grad():
        layer.T.copy_(randn(3, 2, 2, seed=5))
    f = randn(4, 3, seed=6)
    out = layer(f)
    assert out.shape == (4, 3 + 2) and layer.T.shape == (3, 2, 2)
    torch.testing.assert_close(out[:, :3], f, rtol=0, atol=0)  # the features pass through
    T = layer.T.detach()
    for i in range(4):
        for b in range(2):
            M_i = sum(f[i, a] * T[a, b] for a in range(3))  # (C,)
            o = sum(torch.exp(-(M_i - sum(f[j, a] * T[a, b] for a in range(3))).abs().sum()) for j in range(4))
            torch.testing.assert_close(out[i, 3 + b], o)


def test_a_collapsed_batch_gets_different_minibatch_features_from_a_varied_one():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(16, n_kernels=4)
    varied = torch.randn(8, 16)
    collapsed = varied[:1].repeat(8, 1)  # one sample, eight times
    o_varied, o_collapsed = layer(varied)[:, 16:], layer(collapsed)[:, 16:]
    torch.testing.assert_close(o_collapsed, torch.full((8, 4), 8.0))  # c_b = 1 for every pair
    assert (o_varied < 8 - 1e-3).all() and (o_varied >= 1).all()  # each sample is close to itself only
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        layer(torch.randn(8, 15))


def test_the_discriminator_with_minibatch_discrimination():
    torch.manual_seed(0)
    D = DCGANDiscriminator(1, 8, 16, minibatch_kernels=4)
    assert isinstance(D.minibatch, MinibatchDiscrimination)
    assert D.minibatch.T.shape == (16 * 4 * 4, 4, 5)  # at 16x16 the last feature map is (N, 16, 4, 4)
    assert D.head.in_features == 16 * 16 + 4
    x = images(6)
    assert D(x).shape == (6,)
    D.eval()
    same = x[:1].repeat(6, 1, 1, 1)  # identical images: every row's features are the same
    f = D.net(same).flatten(1)
    torch.testing.assert_close(D.minibatch(f)[:, -4:], torch.full((6, 4), 6.0))
    plain = DCGANDiscriminator(1, 8, 16)
    assert plain.minibatch is None and not any(k.startswith(("head", "minibatch")) for k in plain.state_dict())


# ------------------------------------------------------------------------------------------ one-sided label smoothing
def test_the_smoothed_bce_by_hand_and_at_one():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0])
    a = 0.9
    sig = torch.sigmoid
    want = -(a * torch.log(sig(real)) + (1 - a) * torch.log(1 - sig(real))).mean() - torch.log(1 - sig(fake)).mean()
    torch.testing.assert_close(d_loss_bce(real, fake, a), want)
    assert torch.equal(d_loss_bce(real, fake, 1.0), d_loss_bce(real, fake))
    r = real.clone().requires_grad_(True)
    d_loss_bce(r, fake, a).backward()
    torch.testing.assert_close(r.grad, (sig(real) - a) / 3)  # the optimum moves to sigmoid = a
    for bad in (0.0, 1.1, -0.5, float("nan")):
        with pytest.raises(ValueError, match="label_smoothing"):
            d_loss_bce(real, fake, bad)
    with pytest.raises(ValueError, match="real_logits is empty"):
        d_loss_bce(real[:0], fake, a)


# ------------------------------------------------------------------------------------------ config and trainer
@pytest.mark.parametrize("fields, message", [
    (dict(label_smoothing=0.0), "label_smoothing"),
    (dict(label_smoothing=1.5), r"in \(0, 1\]"),
    (dict(minibatch_discrimination=-1), "minibatch_discrimination must be an integer >= 0"),
    (dict(minibatch_discrimination=2.5), "minibatch_discrimination"),
    (dict(minibatch_discrimination=True), "minibatch_discrimination"),
    (dict(g_norm="layer"), "'batch', 'virtual'"),
    (dict(loss="wgan-gp", label_smoothing=0.9), "applies to the cross-entropy loss 'dcgan', not 'wgan-gp'"),
    (dict(loss="wgan-gp", minibatch_discrimination=4), "the gradient penalty is taken per sample"),
])
def test_bad_trick_values_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        GANConfig(**fields)


def test_the_defaults_are_the_plain_dcgan():
    c = GANConfig()
    assert (c.label_smoothing, c.minibatch_discrimination, c.g_norm) == (1.0, 0, "batch")
    assert dcgan_preset(tier="lecture").g_norm == "batch"
    tr = GANTrainer(GANConfig(**TINY), images())
    assert tr.D.minibatch is None and tr.G.norm == "batch"


def test_the_ablation_configs_change_one_trick_each():
    from gancourse.deep.runs.gan import ABLATION_STEPS, TRICKS, trick_config

    base = trick_config("baseline", "lecture")
    assert base == dcgan_preset(tier="lecture", steps=ABLATION_STEPS["lecture"])
    assert ABLATION_STEPS["lecture"] < dcgan_preset(tier="lecture").steps  # four runs share the lecture budget
    for trick, fields in TRICKS.items():
        changed = {k for k, v in vars(trick_config(trick, "lecture")).items() if getattr(base, k) != v}
        assert changed == set(fields), trick
    assert trick_config("label smoothing 0.9", "smoke").label_smoothing == 0.9
    with pytest.raises(ValueError, match="valid options are: 'baseline'"):
        trick_config("dropout", "smoke")


def test_wgan_gp_trains_with_a_virtual_bn_generator_and_refuses_the_d_only_tricks_as_flags(tmp_path):
    cfg = GANConfig(**{**TINY, "steps": 2}, loss="wgan-gp", n_critic=2, g_norm="virtual")
    tr = GANTrainer(cfg, images())
    history = tr.train(progress=False)
    assert tr.G.z_reference.shape == (8, 8) and np.isfinite(history["d_loss"]).all()
    rc, _, err = cli(["train", "wgan-gp", "--preset", "smoke", "--label-smoothing", "0.9", "--out", tmp_path])
    assert rc == 2 and "--label-smoothing" in err, err


def test_real_confidence_runs_d_as_training_does_and_leaves_it_alone():
    tr = GANTrainer(GANConfig(**TINY, minibatch_discrimination=4), images())
    before = {k: v.clone() for k, v in tr.D.state_dict().items()}
    conf = tr.real_confidence(images(20, seed=3))  # two batches of 8; the last 4 images are dropped
    assert conf.shape == (16,) and ((0 < conf) & (conf < 1)).all()
    assert_same_state(tr.D.state_dict(), before)  # the running statistics are untouched
    order = torch.randperm(20, generator=torch.Generator().manual_seed(0))  # shuffled: MNIST-5k is sorted
    with torch.no_grad():
        first = torch.sigmoid(tr.D.train()(images(20, seed=3)[order[:8]]))
    torch.testing.assert_close(conf[:8], first)  # D in training mode on the first random batch
    with pytest.raises(ValueError, match="at least one batch of 8"):
        tr.real_confidence(images(5))
    wgan = GANTrainer(GANConfig(**TINY, loss="wgan-gp"), images())
    with pytest.raises(ValueError, match="critic"):
        wgan.real_confidence(images())


def test_label_smoothing_keeps_d_below_its_target_on_real_images():
    # D alone, many steps on a fixed real/fake split it can separate: its output on real settles near a
    base = dict(TINY, steps=1)
    outs = {}
    for a in (1.0, 0.7):
        tr = GANTrainer(GANConfig(**base, label_smoothing=a, lr_d=2e-3), images())
        real, fake = images(8, seed=1), images(8, seed=2) * 0.2
        for _ in range(150):
            loss = d_loss_bce(tr.D(real), tr.D(fake), a)
            tr.opt_d.zero_grad()
            loss.backward()
            tr.opt_d.step()
        outs[a] = torch.sigmoid(tr.D(real)).mean().item()
    assert outs[1.0] > 0.95 and abs(outs[0.7] - 0.7) < 0.05, outs


# ------------------------------------------------------------------------------------------ the command
def test_the_command_trains_with_every_trick_and_resumes_exactly(tmp_path):
    half, straight = tmp_path / "half", tmp_path / "straight"
    ok([*SMOKE, "--steps", "3", "--out", half])
    ok(["train", "dcgan", "--resume", half / "checkpoint.pt", "--steps", "6", "--no-progress"])
    ok([*SMOKE, "--steps", "6", "--out", straight])
    metrics = json.loads((straight / "metrics.json").read_text())
    config = metrics["config"]
    assert (config["label_smoothing"], config["minibatch_discrimination"], config["g_norm"]) == (0.9, 4, "virtual")
    assert set(metrics["report"]) >= {"fd_lenet", "classifier_score", "class_histogram_kl"}
    with np.load(straight / "samples.npz") as npz:
        assert npz["images"].shape == (1000, 1, 32, 32) and npz["images"].dtype == np.float32
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    assert whole["G"]["z_reference"].shape == (8, 8) and "minibatch.T" in whole["D"]
    for key in ("step", "G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "rng"):
        assert_same_state(resumed[key], whole[key], key)
    with np.load(half / "samples.npz") as a, np.load(straight / "samples.npz") as b:
        assert np.array_equal(a["images"], b["images"])
    rc, _, err = cli(["train", "dcgan", "--resume", half / "checkpoint.pt", "--label-smoothing", "1.0"])
    assert rc == 2 and "--label-smoothing 1.0 (the checkpoint has --label-smoothing 0.9)" in err, err
