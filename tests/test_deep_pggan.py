"""The Progressive GAN: growing networks and their fade-in, the growth schedule, the trainer (exact resume across
a phase boundary) and ``gancourse train pggan``."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.pggan import (  # noqa: E402
    GrowSchedule,
    PGDiscriminator,
    PGGenerator,
    blend,
    channels_at,
    downsample,
    resolutions,
    upsample,
)
from gancourse.deep.runs.pggan import PGGAN, to_size  # noqa: E402
from gancourse.deep.train_pggan import PGGANConfig, PGGANTrainer, pggan_preset  # noqa: E402
from test_train_command import assert_same_state, cli, ok  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

RES = (4, 8, 16, 32)
TINY = dict(steps=10, batch_size=8, g_width=4, d_width=4, width_max=8, z_dim=8, stable_images=(8, 8, 8),
            fade_images=(16, 16, 16), n_samples=4, sample_every=3, ema_half_life=40)
TINY_CLI = ["train", "pggan", "--preset", "smoke", "--batch-size", "8", "--g-width", "4", "--d-width", "4",
            "--width-max", "8", "--z-dim", "8", "--stable-images", "8,8,8", "--fade-images", "16,16,16",
            "--sample-every", "3", "--no-progress"]


def tiny_config(**kw) -> PGGANConfig:
    return pggan_preset(tier="smoke", **{**TINY, **kw})


def toy_images(n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def nets(seed: int = 0) -> tuple[PGGenerator, PGDiscriminator]:
    torch.manual_seed(seed)
    return PGGenerator(16, 1, 32, width=4, width_max=16), PGDiscriminator(1, 32, width=4, width_max=16)


# ------------------------------------------------------------------------------------------ networks
def test_shapes_and_channels_at_every_resolution():
    G, D = nets()
    z = torch.randn(8, 16)
    assert resolutions(32) == RES and resolutions(8) == (4, 8)
    assert [channels_at(r, 32, 4, 16) for r in RES] == [16, 16, 8, 4]  # width 4 at 32, doubling, capped at 16
    for r in RES:
        for alpha in (0.0, 0.3, 1.0):
            x = G(z, r, alpha)
            assert x.shape == (8, 1, r, r) and torch.isfinite(x).all()
            assert D(x, alpha).shape == (8,)
    assert G(z).shape == (8, 1, 32, 32)  # the final resolution by default
    assert [G.to_rgb[i].weight.shape[1] for i in range(4)] == [16, 16, 8, 4]
    assert [D.from_rgb[i].weight.shape[0] for i in range(4)] == [16, 16, 8, 4]
    assert D.blocks[0][0].weight.shape[1] == 16 + 1  # the minibatch-stddev channel enters the last block


def test_bad_resolutions_alphas_and_shapes_are_refused():
    G, D = nets()
    with pytest.raises(ValueError, match=r"resolution must be one of \(4, 8, 16, 32\), got 12"):
        G(torch.randn(2, 16), 12)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        G(torch.randn(2, 16), 8, 1.5)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 16\)"):
        G(torch.randn(2, 15), 8)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, r, r\) with r in \(4, 8, 16, 32\), got \(4, 1"):
        D(torch.zeros(4, 1, 12, 12))
    with pytest.raises(ValueError, match="image_size must be a power of two of at least 8, got 24"):
        resolutions(24)


@pytest.mark.parametrize("r", [8, 16, 32])
def test_at_alpha_zero_g_is_exactly_the_upsampled_lower_resolution_g(r):
    G, _ = nets()
    z = torch.randn(8, 16)
    with torch.no_grad():
        for i in range(4):  # the new layers are not zero: their output is there, weighted by alpha = 0
            G.to_rgb[i].bias.normal_()
        low = G(z, r // 2, 1.0)  # (8, 1, r/2, r/2)
        assert torch.equal(G(z, r, 0.0), upsample(low))
        assert not torch.equal(G(z, r, 1e-3), upsample(low))
        # in between, the blend of the two branches; at alpha = 1 the old toRGB plays no part
        k = RES.index(r)
        h = G(z, r, 0.5)
        G.to_rgb[k - 1].weight.mul_(3.0)
        assert not torch.allclose(G(z, r, 0.5), h) and torch.equal(G(z, r, 1.0), G(z, r, 1.0))
        high = G(z, r, 1.0)
        G.to_rgb[k - 1].weight.div_(3.0)
        assert torch.equal(G(z, r, 1.0), high)
        assert torch.allclose(h, 0.5 * upsample(low) + 0.5 * high, atol=1e-6)


@pytest.mark.parametrize("r", [8, 16, 32])
def test_at_alpha_zero_d_is_exactly_the_lower_resolution_d_on_the_pooled_image(r):
    _, D = nets()
    x = torch.rand(8, 1, r, r) * 2 - 1
    assert torch.equal(D(x, 0.0), D(downsample(x), 1.0))
    assert not torch.equal(D(x, 1e-3), D(downsample(x), 1.0))
    k = RES.index(r)
    before = D(x, 1.0)
    with torch.no_grad():
        D.from_rgb[k - 1].weight.mul_(3.0)  # the old fromRGB drops out at alpha = 1
    assert torch.equal(D(x, 1.0), before)


def test_blend_downsample_upsample():
    a, b = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    assert torch.equal(blend(a, b, 0.0), a) and torch.equal(blend(a, b, 1.0), b)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(downsample(x), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert torch.equal(upsample(downsample(x))[0, 0, :2, :2], torch.full((2, 2), 2.5))
    assert torch.equal(downsample(upsample(x)), x)


# ------------------------------------------------------------------------------------------ schedule
def test_schedule_maps_images_seen_to_resolution_and_alpha():
    s = GrowSchedule(32, stable=(100, 200, 300), fade=(40, 80, 160))
    assert s.growth_images == 100 + 40 + 200 + 80 + 300 + 160
    assert s(0) == (4, 1.0) and s(99) == (4, 1.0)
    assert s(100) == (8, 0.0) and s(110) == (8, 0.25) and s(140) == (8, 1.0) and s(339) == (8, 1.0)
    assert s(340) == (16, 0.0) and s(380) == (16, 0.5)
    assert s(720) == (32, 0.0) and s(800) == (32, 0.5) and s(880) == (32, 1.0) and s(10 ** 9) == (32, 1.0)
    assert s.boundaries() == [100, 140, 340, 420, 720, 880]
    seen = np.arange(0, 1000, 7)
    phases = [s(int(n)) for n in seen]
    assert phases == sorted(phases)  # monotone: the resolution never falls, alpha never falls within one
    assert phases[-1] == (32, 1.0)
    assert all(0.0 <= a <= 1.0 for _, a in phases)


def test_schedule_refuses_bad_phases():
    with pytest.raises(ValueError, match=r"3 stable phases \(at \(4, 8, 16\)\) and 3 fades \(into \(8, 16, 32\)\), "
                                         r"got 2 and 3"):
        GrowSchedule(32, (1, 2), (1, 2, 3))
    with pytest.raises(ValueError, match="fade images must be a positive integer"):
        GrowSchedule(32, (1, 2, 3), (1, 0, 3))
    with pytest.raises(ValueError, match="images_seen must be >= 0"):
        GrowSchedule(32, (1, 2, 3), (1, 2, 3))(-1)


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("field, value, message", [
    ("loss", "hinge", "unknown loss 'hinge'; valid options are: 'nonsaturating', 'wgan-gp'"),
    ("steps", 8, r"steps \* batch_size \(8 \* 8 = 64 images\) must reach the end of growing \(72 images"),
    ("stable_images", (8, 8), "3 stable phases"),
    ("batch_size", 6, r"batch_size \(6\) must be divisible by mbstd_group \(4\)"),
    ("drift", -1.0, "drift"),
    ("ema_half_life", -1, "ema_half_life"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**{field: value})


def test_presets_by_tier():
    smoke, lecture, full = (pggan_preset(tier=t) for t in ("smoke", "lecture", "full"))
    assert pggan_preset(True) == smoke and pggan_preset() == full
    assert smoke.steps < lecture.steps < full.steps and lecture.g_width <= full.g_width
    for c in (smoke, lecture, full):  # every preset grows to 32 and trains there
        s = c.schedule()
        assert s(c.steps * c.batch_size) == (32, 1.0) and c.steps * c.batch_size > s.growth_images
    assert full.lr_g == 1e-3 and all((c.beta1, c.beta2) == (0.0, 0.99) for c in (lecture, full))  # the paper's Adam
    assert pggan_preset(tier="lecture", loss="wgan-gp").loss == "wgan-gp"


# ------------------------------------------------------------------------------------------ trainer
def test_each_step_trains_at_the_schedules_resolution_and_grows_to_32():
    trainer = PGGANTrainer(tiny_config(), toy_images())
    untouched = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    trainer.train(steps=2, progress=False)  # 16 images: still at 4x4
    for name, w in trainer.G.state_dict().items():  # the layers of 8..32 have not been used yet
        grown = name.startswith(("blocks.1", "blocks.2", "blocks.3", "to_rgb.1", "to_rgb.2", "to_rgb.3"))
        assert torch.equal(w, untouched[name]) == grown, name
    trainer.train(progress=False)
    h = trainer.history.values
    assert h["images_seen"] == [8.0 * t for t in range(1, 11)]
    s = trainer.grow
    assert [(r, a) for r, a in zip(h["resolution"], h["alpha"])] == [s(8 * t) for t in range(10)]
    assert (h["resolution"][-1], h["alpha"][-1]) == (32.0, 1.0) and trainer.phase() == (32, 1.0)
    assert [x.shape[-1] for _, x in trainer.snapshots] == [8, 16, 32, 32]  # taken at steps 3, 6, 9, 10


def test_real_batches_are_pooled_to_the_resolution_and_faded_like_g():
    images = toy_images()
    trainer = PGGANTrainer(tiny_config(), images)
    idx = torch.tensor([0, 5, 7])
    assert torch.equal(trainer.real_batch(idx, 32, 1.0), images[idx])
    x16 = downsample(images[idx])
    assert torch.equal(trainer.real_batch(idx, 16, 1.0), x16)
    assert torch.equal(trainer.real_batch(idx, 16, 0.0), upsample(downsample(x16)))
    assert torch.allclose(trainer.real_batch(idx, 16, 0.25), 0.75 * upsample(downsample(x16)) + 0.25 * x16)


def test_the_first_d_loss_is_bce_plus_drift_and_the_average_moves_by_one_minus_beta():
    images = toy_images()
    config = tiny_config(drift=0.5)
    trainer, replay = PGGANTrainer(config, images), PGGANTrainer(config, images)
    trainer.train_step()
    trainer.history.flush()
    real = replay.real_batch(replay.batcher.next(), 4, 1.0)
    z = torch.randn(config.batch_size, config.z_dim, generator=replay.generator)
    with torch.no_grad():
        l_real, l_fake = replay.D(real).double(), replay.D(replay.G(z, 4)).double()
    hand = -torch.log(torch.sigmoid(l_real)).mean() - torch.log(1 - torch.sigmoid(l_fake)).mean() \
        + 0.5 * l_real.square().mean()
    assert trainer.history.values["d_loss"][0] == pytest.approx(hand.item(), rel=1e-5)
    beta = config.ema_beta
    assert beta == pytest.approx(0.5 ** (8 / 40))
    for p_ema, p, p0 in zip(trainer.G_ema.parameters(), trainer.G.parameters(), replay.G.parameters()):
        assert torch.allclose(p_ema, beta * p0 + (1 - beta) * p, atol=1e-6)


def test_the_first_wgan_gp_loss_is_the_critic_gap_plus_penalty_plus_drift():
    images = toy_images()
    config = tiny_config(loss="wgan-gp")
    trainer, replay = PGGANTrainer(config, images), PGGANTrainer(config, images)
    trainer.train(progress=False)
    h = trainer.history.values
    assert all(np.isfinite(h[k]).all() for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    real = replay.real_batch(replay.batcher.next(), 4, 1.0)
    z = torch.randn(config.batch_size, config.z_dim, generator=replay.generator)
    fake = replay.G(z, 4).detach()
    eps = torch.rand(config.batch_size, generator=replay.generator)  # the interpolation coefficients
    xhat = (eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(replay.D(xhat).sum(), xhat)
    gp = 10.0 * (g.flatten(1).norm(dim=1) - 1).square().mean()
    with torch.no_grad():
        l_real, l_fake = replay.D(real), replay.D(fake)
    hand = l_fake.mean() - l_real.mean() + gp + 1e-3 * l_real.square().mean()
    assert h["d_loss"][0] == pytest.approx(hand.item(), rel=1e-4)
    assert h["d_real"][0] == pytest.approx(l_real.mean().item(), rel=1e-5)  # scores, not probabilities


def test_samples_are_clipped_and_reproducible():
    trainer = PGGANTrainer(tiny_config(), toy_images())
    trainer.train(progress=False)
    x = trainer.sample(6)
    assert x.shape == (6, 1, 32, 32) and x.abs().max() <= 1 and torch.equal(x, trainer.sample(6))
    assert trainer.sample(3, resolution=8).shape == (3, 1, 8, 8)
    assert not torch.equal(x, trainer.generate(torch.randn(6, 8, generator=torch.Generator().manual_seed(1234)),
                                               ema=False))  # the average is not the last weights


def test_k_steps_save_load_k_steps_equals_2k_steps_across_a_phase_boundary(tmp_path):
    images = toy_images()
    config = tiny_config()
    s = config.schedule()
    assert s(3 * 8) == (8, 1.0) and s(4 * 8) == (16, 0.0) and s(5 * 8) == (16, 0.5)  # 16 fades in from step 4
    straight = PGGANTrainer(config, images)
    straight.train(steps=6, progress=False)
    half = PGGANTrainer(config, images)
    half.train(steps=3, checkpoint=tmp_path / "c.pt", progress=False)
    resumed = PGGANTrainer(config, images).load(tmp_path / "c.pt")
    assert resumed.step == 3 and resumed.phase() == (8, 1.0)
    resumed.train(steps=6, progress=False)
    a, b = resumed.state_dict(), straight.state_dict()
    for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "rng"):
        assert_same_state(a[key], b[key], key)


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pggan") / "run"
    ok([*TINY_CLI, "--steps", "10", "--out", out])
    return out


def test_help_shows_the_models_flags():
    rc, out, _ = cli(["train", "pggan", "--help"])
    text = " ".join(out.split())
    assert rc == 0 and "--loss {nonsaturating,wgan-gp}" in text and "--stable-images W,W,..." in text
    assert "--fade-images" in text and "--ema-half-life" in text and "--image-size" not in text
    rc, out, _ = cli(["train", "--help"])
    assert "Progressive GAN" in " ".join(out.split())


def test_a_pggan_run_writes_every_file(run):
    import matplotlib.pyplot as plt

    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["steps"]) == ("pggan", "smoke", 10)
    assert metrics["final_losses"]["images_seen"] == 80 and metrics["final_losses"]["resolution"] == 32
    assert metrics["seconds"] > 0
    report = metrics["report"]
    assert list(report) == ["fd_lenet", "classifier_score", "class_histogram_kl"]
    assert report["fd_lenet"]["floor"] < report["fd_lenet"]["ceiling"]
    with np.load(run / "samples.npz") as npz:
        images = npz["images"]
    assert images.shape == (1000, 1, 32, 32) and images.dtype == np.float32 and np.abs(images).max() <= 1
    pngs = sorted((run / "snapshots").iterdir())
    assert [p.name for p in pngs] == ["step-0000003.png", "step-0000006.png", "step-0000009.png",
                                      "step-0000010.png"]
    shapes = {plt.imread(p).shape for p in pngs}  # 8x8, 16x16 and 32x32 snapshots, all shown at 32x32
    assert len(shapes) == 1
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["step"] == 10 and state["kind"] == "pggan"
    assert [x.shape[-1] for _, x in state["snapshots"]] == [8, 16, 32, 32]


def test_snapshot_grids_are_upsampled_to_32():
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    assert torch.equal(to_size(x, 4)[0, 0], torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))
    assert to_size(x, 2) is x


def test_n_steps_then_resume_to_2n_equals_2n_straight_from_the_command(tmp_path, run):
    half = tmp_path / "half"
    ok([*TINY_CLI, "--steps", "10", "--out", half])  # 10 steps reach alpha = 1 at 32; the resume goes on there
    ok(["train", "pggan", "--resume", half / "checkpoint.pt", "--steps", "14", "--no-progress"])
    straight = tmp_path / "straight"
    ok([*TINY_CLI, "--steps", "14", "--out", straight])
    a, b = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "rng"):
        assert_same_state(a[key], b[key], key)
    with np.load(half / "samples.npz") as x, np.load(straight / "samples.npz") as y:
        assert np.array_equal(x["images"], y["images"])


def test_resume_refuses_a_changed_schedule(run):
    rc, _, err = cli(["train", "pggan", "--resume", run / "checkpoint.pt", "--fade-images", "8,8,8"])
    assert rc == 2 and "--fade-images 8,8,8 (the checkpoint has --fade-images 16,16,16)" in err, err


def test_spec_config_fixes_the_data_fields():
    with pytest.raises(ValueError, match="image_size cannot be set for this model"):
        PGGAN.config("smoke", image_size=64)
    assert dataclasses.asdict(PGGAN.config("lecture"))["image_size"] == 32
