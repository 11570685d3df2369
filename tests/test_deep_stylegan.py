"""The small StyleGAN: mapping network, AdaIN, modulated convolution, noise, truncation, style mixing, perceptual
path length, the trainer (exact resume) and ``gancourse train stylegan``."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.path_length import (  # noqa: E402
    lerp,
    normalized_feature_distance,
    path_lengths,
    perceptual_path_length,
    slerp,
)
from gancourse.deep.runs.registry import MODELS, get_spec  # noqa: E402
from gancourse.deep.runs.stylegan import PSIS, STYLEGAN, sweep_table  # noqa: E402
from gancourse.deep.stylegan import (  # noqa: E402
    AdaIN,
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    StyleDiscriminator,
    StyleGenerator,
    coarse_middle_fine,
    instance_norm,
    mix_styles,
    truncate,
)
from gancourse.deep.train_stylegan import StyleGANConfig, StyleGANTrainer, stylegan_preset  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = ["--batch-size", "8", "--g-width", "4", "--d-width", "4", "--z-dim", "8", "--w-dim", "8",
        "--mapping-layers", "2", "--n-samples", "8", "--sample-every", "2", "--no-progress"]
STYLEGAN_CLI = ["train", "stylegan", "--preset", "smoke", *TINY]


def tiny_config(**kw) -> StyleGANConfig:
    return stylegan_preset(tier="smoke", **{**dict(steps=4, batch_size=8, g_width=4, d_width=4, z_dim=8, w_dim=8,
                                                   mapping_layers=2, n_samples=4, sample_every=2, r1_every=2), **kw})


def toy_images(n: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def tiny_generator(synthesis: str = "modulated", seed: int = 0, noise_weight: float = 0.0) -> StyleGenerator:
    torch.manual_seed(seed)
    G = StyleGenerator(z_dim=8, w_dim=8, mapping_layers=2, width=4, synthesis=synthesis)
    with torch.no_grad():
        for layer in G.layers:
            layer.noise.weight.fill_(noise_weight)
    return G


# ------------------------------------------------------------------------------------------ layers
@pytest.mark.parametrize("synthesis, resolutions", [("adain", [4, 4, 8, 8, 16, 16, 32, 32]),
                                                    ("modulated", [4, 8, 8, 16, 16, 32, 32, 32])])
def test_shapes_of_the_generator_and_discriminator(synthesis, resolutions):
    G = tiny_generator(synthesis)
    assert G.num_ws == 8 and G.resolutions == resolutions
    z = torch.randn(8, 8)
    assert G.mapping(z).shape == (8, 8) and G.ws(z).shape == (8, 8, 8)
    x = G(z)
    assert x.shape == (8, 1, 32, 32) and torch.isfinite(x).all()
    assert G.synthesis(torch.randn(8, 8, 8)).shape == (8, 1, 32, 32)  # W+: one w per layer
    with pytest.raises(ValueError, match=r"ws must have shape \(N, 8, 8\), got \(6, 7, 8\)"):
        G.synthesis(torch.randn(6, 7, 8))
    assert StyleDiscriminator(1, width=4)(x).shape == (8,)
    groups = coarse_middle_fine(G.resolutions)
    assert sorted(sum(groups.values(), [])) == list(range(8))
    assert all(G.resolutions[i] <= 8 for i in groups["coarse"]) and all(G.resolutions[i] == 32 for i in groups["fine"])
    with pytest.raises(ValueError, match="unknown synthesis 'spade'; valid options are: 'adain', 'modulated'"):
        StyleGenerator(synthesis="spade")


def test_mapping_network_sees_only_the_direction_of_z_and_learns_slower():
    torch.manual_seed(0)
    f = MappingNetwork(8, 6, n_layers=3, lr_mul=0.01)
    z = torch.randn(5, 8)
    assert torch.allclose(f(z), f(3.0 * z), atol=1e-5)  # pixel norm first
    assert not torch.allclose(f(z), f(z + 1.0), atol=1e-3)
    layer = f.layers[0]
    assert layer.lr_mul == 0.01 and layer.weight.std() > 10  # stored as N(0, 1) / lr_mul


def test_modulated_conv_equals_a_conv_per_image_with_its_own_weights():
    torch.manual_seed(0)
    for demodulate in (True, False):
        for up in (False, True):
            conv = ModulatedConv2d(3, 5, 3, w_dim=4, demodulate=demodulate, up=up)
            with torch.no_grad():
                conv.affine.weight.normal_()  # styles that differ between images
            x, w = torch.randn(4, 3, 6, 6), torch.randn(4, 4)
            s = conv.affine(w)  # (N, I)
            out = conv(x, w)
            for i in range(4):
                weight = conv.scale * conv.weight * s[i][None, :, None, None]  # (O, I, k, k)
                if demodulate:
                    weight = weight / torch.sqrt(weight.square().sum(dim=(1, 2, 3), keepdim=True) + conv.eps)
                xi = x[i: i + 1]
                if up:
                    xi = F.interpolate(xi, scale_factor=2, mode="bilinear", align_corners=False)
                assert torch.allclose(out[i: i + 1], F.conv2d(xi, weight, padding=1), atol=1e-5)
            assert out.shape == (4, 5, 12 if up else 6, 12 if up else 6)


def test_demodulated_outputs_have_unit_std_per_channel_for_unit_variance_inputs():
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 6, 3, w_dim=4, demodulate=True)
    with torch.no_grad():
        conv.affine.weight.normal_(0, 3)  # wildly different styles per image and channel
        conv.weight.mul_(torch.rand(6, 1, 1, 1) * 10)  # and output channels of very different scale
    x, w = torch.randn(8, 16, 40, 40), torch.randn(8, 4)
    out = conv(x, w)[:, :, 1:-1, 1:-1]  # away from the zero padding
    std = out.std(dim=(2, 3))  # (N, O): per image and output channel
    assert torch.allclose(std, torch.ones_like(std), atol=0.12), std
    plain = ModulatedConv2d(16, 6, 3, w_dim=4, demodulate=False)
    plain.load_state_dict(conv.state_dict())
    assert (plain(x, w).std(dim=(2, 3)) - 1).abs().max() > 1  # without demodulation the scale is the style's


def test_adain_normalises_each_channel_then_applies_the_style():
    torch.manual_seed(0)
    layer = AdaIN(3, w_dim=5)
    x = torch.randn(4, 3, 8, 8) * torch.tensor([0.1, 5.0, 2.0])[None, :, None, None] + 7.0
    w = torch.randn(4, 5)
    y_s, y_b = layer.scale(w), layer.shift(w)  # (N, C)
    mu, sigma = x.mean(dim=(2, 3), keepdim=True), x.std(dim=(2, 3), unbiased=False, keepdim=True)
    hand = y_s[:, :, None, None] * (x - mu) / sigma + y_b[:, :, None, None]
    assert torch.allclose(layer(x, w), hand, atol=1e-4)
    # the input's own per-channel statistics are gone: rescaling and shifting x changes nothing
    assert torch.allclose(layer(3 * x - 2, w), layer(x, w), atol=1e-4)
    # with a style (1, 0) the output is the instance-normalised input: mean 0, std 1 per image and channel
    with torch.no_grad():
        layer.scale.weight.zero_()
        layer.shift.weight.zero_()
    out = layer(x, w)
    assert torch.allclose(out.mean(dim=(2, 3)), torch.zeros(4, 3), atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), torch.ones(4, 3), atol=1e-4)
    assert torch.allclose(out, instance_norm(x), atol=1e-5)


@pytest.mark.parametrize("synthesis", ["adain", "modulated"])
def test_noise_changes_the_image_only_when_it_is_resampled(synthesis):
    G = tiny_generator(synthesis, noise_weight=0.3).eval()
    ws = G.ws(torch.randn(3, 8))
    a = G.synthesis(ws, generator=torch.Generator().manual_seed(1))
    b = G.synthesis(ws, generator=torch.Generator().manual_seed(1))
    c = G.synthesis(ws, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, c, atol=1e-4)  # fixed noise: same image; resampled: not
    assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    maps = [torch.randn(3, 1, r, r) for r in G.noise_resolutions]
    assert len(maps) == G.num_noise == (8 if synthesis == "adain" else 7)
    assert torch.equal(G.synthesis(ws, noise=maps), G.synthesis(ws, noise=[m.clone() for m in maps]))
    # with the noise scales at 0 (as at initialisation) noise has no effect at all
    G0 = tiny_generator(synthesis, noise_weight=0.0)
    assert torch.equal(G0.synthesis(ws, generator=torch.Generator().manual_seed(1)),
                       G0.synthesis(ws, noise_mode="none"))
    with pytest.raises(ValueError, match="unknown noise_mode 'fresh'"):
        G.synthesis(ws, noise_mode="fresh")


def test_noise_injection_scales_one_map_per_channel():
    layer = NoiseInjection(3, resolution=4)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.0, 1.0, -2.0]))
    x, n = torch.zeros(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
    out = layer(x, noise=n)
    assert torch.equal(out[:, 0], torch.zeros(2, 4, 4)) and torch.equal(out[:, 1], n[:, 0])
    assert torch.equal(out[:, 2], -2 * n[:, 0])
    with pytest.raises(ValueError, match=r"noise must have shape \(N, 1, 4, 4\)"):
        layer(x, noise=torch.randn(2, 3, 4, 4))


def test_truncation_psi_0_gives_w_avg_and_psi_1_the_identity():
    G = tiny_generator()
    with torch.no_grad():
        G.w_avg.copy_(torch.randn(8))
    z = torch.randn(5, 8)
    ws0 = G.ws(z, psi=0.0)
    assert torch.allclose(ws0, G.w_avg.expand(5, 8, 8), atol=1e-6)
    assert torch.equal(G.ws(z, psi=1.0), G.broadcast(G.mapping(z)))
    w = G.mapping(z)
    assert torch.allclose(truncate(w, G.w_avg, 0.5), (w + G.w_avg) / 2, atol=1e-6)
    # with a cutoff only the first styles are truncated
    cut = truncate(G.broadcast(w), G.w_avg, 0.0, cutoff=3)
    assert torch.allclose(cut[:, :3], G.w_avg.expand(5, 3, 8)) and torch.equal(cut[:, 3:], G.broadcast(w)[:, 3:])
    # G(z, psi=0) draws the same image for every z (fixed noise)
    x = G(z, psi=0.0, noise_mode="const")
    assert torch.allclose(x, x[:1].expand_as(x), atol=1e-5)
    G.update_w_avg(torch.ones(4, 8), beta=0.75)
    assert torch.allclose(G.w_avg, 0.75 * ws0[0, 0] + 0.25)


def test_style_mixing_takes_the_first_latent_before_the_crossover():
    G = tiny_generator()
    ws1, ws2 = G.ws(torch.randn(3, 8)), G.ws(torch.randn(3, 8))
    for k in range(G.num_ws + 1):
        mixed = mix_styles(ws1, ws2, k)
        assert torch.equal(mixed[:, :k], ws1[:, :k]) and torch.equal(mixed[:, k:], ws2[:, k:])
    assert torch.equal(G.synthesis(mix_styles(ws1, ws2, G.num_ws), noise_mode="const"),
                       G.synthesis(ws1, noise_mode="const"))
    with pytest.raises(ValueError, match="crossover must lie in 0..8, got 9"):
        mix_styles(ws1, ws2, 9)


def test_the_trainer_mixes_styles_with_the_configured_probability():
    images = toy_images()
    always = StyleGANTrainer(tiny_config(mixing_prob=1.0), images)
    ws = always._styles(4)
    differs = [not torch.equal(ws[:, 0], ws[:, l]) for l in range(1, 8)]
    k = differs.index(True) + 1  # the crossover: layers before it share the first latent's w
    assert all(differs[k - 1:]) and not any(differs[: k - 1])
    never = StyleGANTrainer(tiny_config(mixing_prob=0.0), images)
    ws = never._styles(4)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


# ------------------------------------------------------------------------------------------ path length
def test_slerp_walks_the_great_circle_at_constant_speed():
    torch.manual_seed(0)
    a, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    ua, ub = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    assert torch.allclose(slerp(a, b, torch.zeros(4)), ua) and torch.allclose(slerp(a, b, torch.ones(4)), ub)
    theta = torch.arccos((ua * ub).sum(1))
    for t in (0.2, 0.7):
        p = slerp(a, b, torch.full((4,), t))
        assert torch.allclose(p.norm(dim=1), torch.ones(4, dtype=torch.float64))
        assert torch.allclose(torch.arccos((p * ua).sum(1).clamp(-1, 1)), t * theta, atol=1e-6)
    assert torch.allclose(lerp(a, b, torch.full((4,), 0.25)), 0.75 * a + 0.25 * b)


def test_normalized_feature_distance():
    f = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert torch.allclose(normalized_feature_distance(f, 2 * f), torch.zeros(2))
    assert torch.allclose(normalized_feature_distance(f[1:], torch.tensor([[0.0, 5.0]])), torch.tensor([2.0]))


class FlatFeatures(torch.nn.Module):
    def features(self, x):
        return x.flatten(1) + 2.0  # positive, so that the normalised distance is smooth


@pytest.mark.parametrize("space", ["z", "w"])
def test_path_length_divides_a_squared_distance_by_eps_squared(space):
    G = tiny_generator(noise_weight=0.2)
    net = FlatFeatures()
    small = path_lengths(G, net, space, n=20, eps=1e-4, seed=3)
    large = path_lengths(G, net, space, n=20, eps=1e-3, seed=3)
    assert small.shape == (20,) and (small > 0).all()
    assert np.allclose(small, large, rtol=0.05)  # d grows as eps^2, so d / eps^2 hardly depends on eps
    assert perceptual_path_length(G, net, space, n=20, seed=3) == perceptual_path_length(G, net, space, n=20, seed=3)
    # a generator whose output does not depend on its styles has path length 0
    flat = tiny_generator(noise_weight=0.2)
    with torch.no_grad():
        for p in flat.parameters():
            p.zero_()
    assert np.allclose(path_lengths(flat, net, space, n=5), 0.0)


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("field, value, message", [
    ("synthesis", "spade", "unknown synthesis 'spade'; valid options are: 'adain', 'modulated'"),
    ("mixing_prob", 1.5, "mixing_prob must lie in \\[0, 1\\]"),
    ("w_avg_beta", -0.1, "w_avg_beta must lie in \\[0, 1\\]"),
    ("r1_every", 0, "r1_every must be a positive integer"),
    ("image_size", 64, "image_size must be 32"),
    ("lr", 0.0, "lr"),
    ("batch_size", 6, "batch_size \\(6\\) must be divisible by the minibatch standard deviation's group \\(4\\)"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        StyleGANConfig(**{field: value})


def test_presets_by_tier():
    smoke, lecture, full = (stylegan_preset(tier=t) for t in ("smoke", "lecture", "full"))
    assert stylegan_preset(True) == smoke and stylegan_preset() == full
    assert smoke.steps < lecture.steps < full.steps and lecture.g_width <= full.g_width
    assert all(c.synthesis == "modulated" and c.mapping_lr_mul == 0.01 for c in (smoke, lecture, full))
    assert stylegan_preset(tier="lecture", synthesis="adain").synthesis == "adain"


# ------------------------------------------------------------------------------------------ trainer
def test_the_first_d_loss_is_logistic_and_r1_is_applied_lazily():
    images = toy_images()
    trainer = StyleGANTrainer(tiny_config(r1_every=2, r1_gamma=1.0), images)
    trainer.train(steps=3, progress=False)
    h = trainer.history.values
    assert len(h["d_loss"]) == 3 and all(math.isfinite(v) for v in h["d_loss"])
    assert h["r1"][0] > 0 and h["r1"][1] == h["r1"][0] and h["r1"][2] != h["r1"][1]  # steps 0 and 2 only
    assert 0 < h["d_real"][0] < 1 and 0 < h["d_fake"][0] < 1


def test_g_ema_follows_g():
    images = toy_images()
    copy_g = StyleGANTrainer(tiny_config(ema_images=0), images)
    copy_g.train(steps=2, progress=False)
    assert_same_state(copy_g.G_ema.state_dict(), copy_g.G.state_dict())
    averaged = StyleGANTrainer(tiny_config(ema_images=1000), images)
    before = averaged.G_ema.const.detach().clone()
    averaged.train(steps=2, progress=False)
    moved, full = (averaged.G_ema.const - before).abs().max(), (averaged.G.const - before).abs().max()
    assert 0 < moved < full  # the average lags behind G
    assert torch.equal(averaged.G_ema.w_avg, averaged.G.w_avg) and averaged.G.w_avg.abs().sum() > 0


def test_k_steps_save_load_k_steps_equals_2k_steps(tmp_path):
    images = toy_images()
    config = tiny_config(steps=6, mixing_prob=0.5)
    straight = StyleGANTrainer(config, images)
    straight.train(progress=False)
    first = StyleGANTrainer(config, images)
    first.train(steps=3, checkpoint=tmp_path / "c.pt", progress=False)
    resumed = StyleGANTrainer(config, images).load(tmp_path / "c.pt")
    resumed.train(progress=False)
    a, b = resumed.state_dict(), straight.state_dict()
    for key in StyleGANTrainer.STATE + ("step", "rng"):
        assert_same_state(a[key], b[key], key)
    assert torch.equal(resumed.sample(6), straight.sample(6))


def test_samples_are_clamped_and_seeded():
    trainer = StyleGANTrainer(tiny_config(), toy_images())
    x = trainer.sample(5)
    assert x.shape == (5, 1, 32, 32) and x.abs().max() <= 1 and torch.equal(x, trainer.sample(5))
    assert not torch.equal(x, trainer.sample(5, seed=7))
    assert torch.allclose(trainer.truncated_ws(torch.randn(3, 8), psi=0.0),
                          trainer.G_ema.w_avg.expand(3, 8, 8))


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stylegan") / "run"
    ok([*STYLEGAN_CLI, "--steps", "3", "--out", out])
    return out


def test_registry_and_help():
    assert "stylegan" in MODELS and "Karras et al. 2019" in MODELS["stylegan"].summary
    assert get_spec("stylegan").kind == StyleGANTrainer.KIND
    rc, out, _ = cli(["train", "stylegan", "--help"])
    text = " ".join(out.split())
    assert rc == 0 and "--synthesis {adain,modulated}" in text and "--mixing-prob" in text
    assert "--channels" not in text and "--image-size" not in text


def test_a_stylegan_run_writes_every_file(run):
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["steps"]) == ("stylegan", "smoke", 3)
    report = metrics["report"]
    for name in ("fd_lenet", "classifier_score", "class_histogram_kl", "mean confidence", "ppl_z", "ppl_w"):
        assert name in report, name
    for psi in PSIS:
        for name in ("fd_lenet", "class_kl", "confidence"):
            assert f"{name} psi={psi:g}" in report
    table = sweep_table(report)
    assert table["psi"] == list(PSIS) and len(table["fd_lenet"]) == 5
    assert all(0 <= v <= math.log(10) + 1e-9 for v in table["class_histogram_kl"])
    assert all(0 < v <= 1 for v in table["mean_confidence"])
    assert report["class_kl psi=1"]["floor"] == report["class_histogram_kl"]["floor"]
    assert report["ppl_w"]["floor"] is None and report["ppl_w"]["trained"] > 0
    assert report["fd_lenet"]["floor"] < report["fd_lenet"]["ceiling"]
    with np.load(run / "samples.npz") as npz:
        assert npz.files == ["images"]
        images = npz["images"]
    assert images.shape == (1000, 1, 32, 32) and images.dtype == np.float32 and np.abs(images).max() <= 1
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0000002.png", "step-0000003.png"]
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 3 and state["kind"] == "stylegan" and "G_ema" in state


def test_n_steps_then_resume_to_2n_equals_2n_straight(tmp_path):
    half, straight = tmp_path / "half", tmp_path / "straight"
    ok([*STYLEGAN_CLI, "--steps", "2", "--out", half])
    ok(["train", "stylegan", "--resume", half / "checkpoint.pt", "--steps", "4", "--no-progress"])
    ok([*STYLEGAN_CLI, "--steps", "4", "--out", straight])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "rng"):
        assert_same_state(resumed[key], whole[key], key)
    with np.load(half / "samples.npz") as a, np.load(straight / "samples.npz") as b:
        assert np.array_equal(a["images"], b["images"])


def test_the_adain_variant_runs_from_the_command(tmp_path):
    out = tmp_path / "run"
    ok([*STYLEGAN_CLI, "--steps", "2", "--synthesis", "adain", "--out", out])
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["config"]["synthesis"] == "adain" and any(".adain." in k for k in state["G"])


def test_spec_config_fixes_the_data_fields():
    with pytest.raises(ValueError, match="channels cannot be set for this model"):
        STYLEGAN.config("smoke", channels=3)
    assert dataclasses.asdict(STYLEGAN.config("lecture"))["image_size"] == 32
