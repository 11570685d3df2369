"""Training loops: configs and presets, exact resume from atomic checkpoints, CPU flags, the history pool."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.deep import checkpoint as ckpt_module  # noqa: E402
from gancourse.deep.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from gancourse.deep.latent import attribute_vector, interpolate_latents, slerp  # noqa: E402
from gancourse.deep.pool import ImagePool  # noqa: E402
from gancourse.deep.runtime import Batcher, LossHistory, autocast, eval_mode, use_autocast, use_compile  # noqa: E402
from gancourse.deep.train_cyclegan import (  # noqa: E402
    CycleGANConfig,
    CycleGANTrainer,
    cyclegan_preset,
    gray_to_rgb,
    linear_decay,
)
from gancourse.deep.train_gan import GANConfig, GANTrainer, dcgan_preset, wgan_gp_preset  # noqa: E402
from gancourse.errors import TrainingDiverged  # noqa: E402
from gancourse.viz.images import make_grid  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(batch_size=8, z_dim=4, image_size=8, g_width=4, d_width=4, log_every=3, sample_every=4, n_samples=4)
CYC = dict(batch_size=2, image_size=8, g_width=2, n_blocks=1, d_width=4, d_layers=1, pool_size=3, log_every=3,
           sample_every=4, n_samples=2, steps=6)


def images(n=40, c=1, s=8, seed=0):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def same_weights(m1, m2) -> bool:
    s1, s2 = m1.state_dict(), m2.state_dict()
    return s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


# ------------------------------------------------------------------------------------------ configs


def test_presets_follow_the_papers():
    d = dcgan_preset()
    assert (d.loss, d.lr_g, d.lr_d, d.beta1, d.beta2, d.n_critic) == ("dcgan", 2e-4, 2e-4, 0.5, 0.999, 1)
    w = wgan_gp_preset()
    assert (w.loss, w.lr_g, w.lr_d, w.beta1, w.beta2, w.n_critic, w.gp_lambda) == ("wgan-gp", 1e-4, 1e-4, 0.0, 0.9,
                                                                                     5, 10.0)
    c = cyclegan_preset()
    assert (c.lr, c.beta1, c.lambda_cycle, c.identity_fraction, c.pool_size) == (2e-4, 0.5, 10.0, 0.5, 50)
    for smoke, full in ((dcgan_preset(True), d), (wgan_gp_preset(True), w), (cyclegan_preset(True), c)):
        assert smoke.steps < full.steps and smoke.g_width < full.g_width
        assert full.image_size == 32
    assert dcgan_preset(True, steps=7).steps == 7


def test_configs_are_frozen_and_validated():
    cfg = GANConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        GANConfig(loss="hinge")
    with pytest.raises(ValueError, match="beta1"):
        GANConfig(beta1=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        GANConfig(batch_size=0)
    with pytest.raises(ValueError, match="pool_size"):
        CycleGANConfig(pool_size=-1)
    with pytest.raises(ValueError, match="image_size"):
        CycleGANConfig(image_size=30)


def test_trainer_checks_images_and_config():
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        GANTrainer(GANConfig(**TINY), images(c=3))
    with pytest.raises(TypeError, match="GANConfig"):
        GANTrainer(dict(TINY), images())
    with pytest.raises(ValueError, match="batch_size"):
        GANTrainer(GANConfig(**{**TINY, "batch_size": 64}), images(n=40))


def test_autocast_and_compile_are_off_on_cpu():
    cpu = torch.device("cpu")
    assert not use_autocast(cpu, True) and not use_compile(cpu, True)
    assert use_autocast(torch.device("cuda"), True) and not use_autocast(torch.device("cuda"), False)
    assert use_compile(torch.device("cuda"), True)
    tr = GANTrainer(GANConfig(**TINY, amp=True, compile=True), images())
    assert not tr.amp and not tr.compiled
    assert tr._G is tr.G and tr._D is tr.D  # no compiled wrapper
    ct = CycleGANTrainer(CycleGANConfig(**CYC, amp=True, compile=True), images(c=1), images(c=3))
    assert not ct.amp and not ct.compiled
    with autocast(cpu, False):
        assert not torch.is_autocast_enabled()


# ------------------------------------------------------------------------------------------ one step


@pytest.mark.parametrize("loss", ["dcgan", "wgan-gp"])
def test_one_step_is_finite_and_moves_both_players(loss):
    cfg = GANConfig(**TINY, loss=loss, n_critic=2 if loss == "wgan-gp" else 1)
    tr = GANTrainer(cfg, images())
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    d0 = [p.detach().clone() for p in tr.D.parameters()]
    tr.train(1, progress=False)
    assert tr.step == 1 and tr.snapshots == []  # snapshots every 4 steps and at config.steps
    last = tr.history.last()
    assert last and all(math.isfinite(v) for v in last.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters()))
    if loss == "wgan-gp":
        assert {"w_estimate", "gp", "grad_norm"} <= set(tr.history.values)
        assert tr.history.values["gp"][-1] >= 0
    tr.snapshot()
    assert len(tr.snapshots) == 1 and tr.snapshots[0][1].shape == (4, 1, 8, 8)


def test_cyclegan_step_is_finite_and_translates():
    a, b = images(c=1, seed=1), images(c=3, seed=2)
    tr = CycleGANTrainer(CycleGANConfig(**CYC), a, b)
    assert tr.a.shape == (40, 3, 8, 8)  # single-channel A repeated to three channels
    tr.train(2, progress=False)
    last = tr.history.last()
    assert all(math.isfinite(v) for v in last.values())
    assert last["g_loss"] == pytest.approx(last["adv_g"] + last["cycle"] + last["identity"], rel=1e-5)
    assert tr.translate_ab(a[:5]).shape == (5, 3, 8, 8)
    assert tr.translate_ba(b[:5]).shape == (5, 3, 8, 8)
    assert len(tr.pool_a) == 3  # four translated images went in; the pool keeps at most its capacity


def test_nan_images_raise_divergence_error_naming_the_step():
    x = images()
    x[:] = float("nan")
    tr = GANTrainer(GANConfig(**TINY), x)
    with pytest.raises(TrainingDiverged, match="step 1"):
        tr.train(3, progress=False)


def test_train_target_below_current_step_is_refused():
    tr = GANTrainer(GANConfig(**TINY), images())
    tr.train(2, progress=False)
    with pytest.raises(ValueError, match="below the current step"):
        tr.train(1, progress=False)
    with pytest.raises(ValueError, match=r"steps must be an integer >= 0, got 3\.5"):  # never truncated to 3
        tr.train(3.5, progress=False)
    assert tr.step == 2


# ------------------------------------------------------------------------------------------ resume


@pytest.mark.parametrize("loss", ["dcgan", "wgan-gp"])
def test_gan_resume_is_bit_identical(tmp_path, loss):
    cfg = GANConfig(**TINY, loss=loss, n_critic=2 if loss == "wgan-gp" else 1, steps=10)
    x = images(n=20)  # several epochs in 10 steps: the permutation state matters
    straight = GANTrainer(cfg, x)
    straight.train(10, progress=False)

    first = GANTrainer(cfg, x)
    first.train(5, progress=False)
    path = first.save(tmp_path / "run.pt")
    torch.rand(7)  # disturb the global generators between the runs
    np.random.rand(3)
    resumed = GANTrainer(cfg, x).load(path)
    assert resumed.step == 5
    resumed.train(10, progress=False)

    assert same_weights(straight.G, resumed.G) and same_weights(straight.D, resumed.D)
    assert straight.history.values == resumed.history.values
    assert [s for s, _ in straight.snapshots] == [s for s, _ in resumed.snapshots]
    assert torch.equal(straight.snapshots[-1][1], resumed.snapshots[-1][1])
    s1, s2 = straight.opt_g.state_dict()["state"], resumed.opt_g.state_dict()["state"]
    assert all(torch.equal(s1[k]["exp_avg_sq"], s2[k]["exp_avg_sq"]) for k in s1)


def test_cyclegan_resume_is_bit_identical(tmp_path):
    cfg = CycleGANConfig(**CYC)
    a, b = images(n=12, c=1, seed=1), images(n=12, c=3, seed=2)
    straight = CycleGANTrainer(cfg, a, b)
    straight.train(6, progress=False)
    first = CycleGANTrainer(cfg, a, b)
    first.train(3, progress=False)
    assert len(first.pool_a) == 3  # the pool is full: its contents and generator must be restored
    path = first.save(tmp_path / "cyc.pt")
    resumed = CycleGANTrainer(cfg, a, b).load(path)
    resumed.train(6, progress=False)
    for name in ("G_AB", "G_BA", "D_A", "D_B"):
        assert same_weights(getattr(straight, name), getattr(resumed, name)), name
    assert straight.history.values == resumed.history.values


def test_checkpoint_holds_each_declared_part_and_names_one_that_does_not_fit(tmp_path):
    tr = GANTrainer(GANConfig(**TINY), images())
    tr.train(2, progress=False)
    state = tr.state_dict()
    assert set(GANTrainer.STATE) <= set(state)
    assert state["fixed_z"].device.type == "cpu" and state["fixed_z"] is not tr.fixed_z  # a copy
    state["fixed_z"] = torch.zeros(3, 2)  # the wrong shape
    save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(ckpt_module.CheckpointError, match="'fixed_z' does not fit.*shape"):
        GANTrainer(GANConfig(**TINY), images()).load(tmp_path / "bad.pt")


def test_global_generators_are_restored(tmp_path):
    tr = GANTrainer(GANConfig(**TINY), images())
    path = tr.save(tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(3))
    GANTrainer(GANConfig(**TINY), images()).load(path)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])


def test_load_refuses_another_config_or_kind(tmp_path):
    tr = GANTrainer(GANConfig(**TINY), images())
    path = tr.save(tmp_path / "a.pt")
    GANTrainer(GANConfig(**{**TINY, "steps": 99, "log_every": 5}), images()).load(path)  # fine
    with pytest.raises(ValueError, match="lr_g"):
        GANTrainer(GANConfig(**TINY, lr_g=1e-3), images()).load(path)
    with pytest.raises(ValueError, match="not a CycleGANTrainer checkpoint"):
        CycleGANTrainer(CycleGANConfig(**CYC), images(), images(c=3)).load(path)
    with pytest.raises(FileNotFoundError):
        tr.load(tmp_path / "missing.pt")


def test_checkpoint_every_writes_during_training(tmp_path):
    tr = GANTrainer(GANConfig(**{**TINY, "checkpoint_every": 2}), images())
    saved = []
    real_save = tr.save
    tr.save = lambda p: saved.append(tr.step) or real_save(p)
    tr.train(5, checkpoint=tmp_path / "c.pt", progress=False)
    assert saved == [2, 4, 5]
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 5


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    save_checkpoint(path, {"x": torch.ones(3)})

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"x": torch.zeros(3)})
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(3))  # the old checkpoint is intact
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["state.pt"]  # no temporary file left
    with pytest.raises(TypeError, match="dict"):
        save_checkpoint(path, [1, 2])


# ------------------------------------------------------------------------------------------ pieces


def test_pool_fills_then_swaps_with_probability_half():
    gen = torch.Generator().manual_seed(0)
    pool = ImagePool(50, gen)
    assert pool.capacity == 50
    first = torch.arange(50.0).reshape(50, 1, 1, 1)
    out = pool.query(first)
    assert torch.equal(out, first) and len(pool) == 50  # not full yet: returned unchanged, all stored
    n_old, n_total = 0, 0
    for k in range(40):
        new = (1000.0 + 50 * k + torch.arange(50.0)).reshape(50, 1, 1, 1)  # every image distinct
        out = pool.query(new)
        n_old += int((out != new).sum())
        n_total += 50
        assert len(pool) == 50
    assert abs(n_old / n_total - 0.5) < 0.05
    stored = torch.stack(pool.images).flatten()
    assert (stored >= 1000).sum() > 40  # the pool now holds mostly recent images


def test_pool_zero_capacity_and_state(tmp_path):
    assert torch.equal(ImagePool(0).query(torch.ones(2, 1, 2, 2)), torch.ones(2, 1, 2, 2))
    pool = ImagePool(3, torch.Generator().manual_seed(1))
    pool.query(torch.randn(2, 1, 2, 2))
    other = ImagePool(3)
    other.load_state_dict(pool.state_dict())
    assert len(other) == 2 and torch.equal(other.images[1], pool.images[1])
    with pytest.raises(ValueError, match="capacity"):
        ImagePool(4).load_state_dict(pool.state_dict())
    with pytest.raises(ValueError, match="capacity"):
        ImagePool(-1)


def test_batcher_covers_each_epoch_without_repeats():
    gen = torch.Generator().manual_seed(0)
    b = Batcher(10, 3, gen, "cpu")
    epoch = torch.cat([b.next() for _ in range(3)])
    assert len(set(epoch.tolist())) == 9  # the last incomplete batch of 10 is dropped
    b.next()  # a new epoch starts
    state, gen_state = b.state_dict(), gen.get_state()
    ahead = [b.next() for _ in range(4)]  # crosses into a third epoch
    gen2 = torch.Generator()
    gen2.set_state(gen_state)
    b2 = Batcher(10, 3, gen2, "cpu")
    b2.load_state_dict(state)
    assert state["pos"] == 3
    assert all(torch.equal(x, b2.next()) for x in ahead)


def test_loss_history_flushes_and_detects_nan():
    h = LossHistory(("a", "b"))
    h.append(1, torch.tensor(1.0), torch.tensor(2.0))
    h.append(2, torch.tensor(3.0), torch.tensor(4.0))
    assert h.values["a"] == [] and h.flush() == {"a": 3.0, "b": 4.0}
    assert h.values == {"step": [1, 2], "a": [1.0, 3.0], "b": [2.0, 4.0]}
    h.append(3, torch.tensor(float("inf")), torch.tensor(0.0))
    with pytest.raises(TrainingDiverged, match="step 3.*a=3"):
        h.flush()


def test_loss_history_takes_plain_numbers_on_the_tensors_device():
    # a schedule's resolution or learning rate is a Python number; on a CUDA run it must join the CUDA losses
    # (torch.stack refuses mixed devices, which the "meta" device shows without a GPU)
    h = LossHistory(("loss", "resolution", "alpha"))
    h.append(1, torch.zeros((), device="meta"), 32, 0.5)
    assert h._pending[0][1].device.type == "meta"
    h.append(2, torch.zeros(()), 32, torch.ones((), device="meta"))  # a CPU tensor (a penalty switched off) too
    assert h._pending[1][1].device.type == "meta"
    h = LossHistory(("loss", "resolution", "alpha"))
    h.append(7, torch.tensor(1.5), 16, 0.25)
    assert h.flush() == {"loss": 1.5, "resolution": 16.0, "alpha": 0.25}
    with pytest.raises(ValueError, match="one scalar per name"):
        h.append(8, torch.tensor(1.0), 2.0)


@pytest.mark.parametrize("loss, keys", [("dcgan", {"d_loss", "g_loss", "d_real", "d_fake"}),
                                       ("wgan-gp", {"d_loss", "g_loss", "w_estimate", "gp", "grad_norm"})])
def test_history_keys_are_the_numpy_trainers(loss, keys):
    # one vocabulary: d_loss / g_loss as in gancourse.toy.ToyGAN.history
    from gancourse.toy import ToyGAN

    tr = GANTrainer(GANConfig(**TINY, loss=loss), images())
    tr.train(3, progress=False)
    assert set(tr.history.values) == {"step", *keys}
    assert {"step", "d_loss", "g_loss"} <= set(ToyGAN(data="ring8").history)


def test_cyclegan_history_keys():
    tr = CycleGANTrainer(CycleGANConfig(**CYC), images(c=1, seed=1), images(c=3, seed=2))
    tr.train(3, progress=False)
    assert set(tr.history.values) == {"step", "g_loss", "adv_g", "cycle", "identity", "d_loss_a", "d_loss_b", "lr"}


def test_old_history_keys_still_read_with_a_warning():
    h = LossHistory(("d_loss", "g_loss", "d_loss_a"))
    h.append(1, torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0))
    h.flush()
    for old, new in (("loss_d", "d_loss"), ("loss_g", "g_loss"), ("loss_d_a", "d_loss_a")):
        assert old in h.values
        with pytest.warns(DeprecationWarning, match=f"{old!r} is now {new!r}"):
            assert h.values[old] is h.values[new]
    assert "loss_d_b" not in h.values and "nope" not in h.values
    with pytest.raises(KeyError):
        h.values["loss_d_b"]
    assert set(h.state_dict()) == {"step", "d_loss", "g_loss", "d_loss_a"}  # checkpoints hold the new names only
    old_checkpoint = {"step": [1], "loss_d": [1.0], "loss_g": [2.0], "loss_d_a": [3.0]}
    h2 = LossHistory(("d_loss", "g_loss", "d_loss_a"))
    h2.load_state_dict(old_checkpoint)  # a checkpoint written before the renaming resumes
    assert h2.values == {"step": [1], "d_loss": [1.0], "g_loss": [2.0], "d_loss_a": [3.0]}


def test_eval_mode_restores_every_modules_own_mode_even_on_error():
    nn = torch.nn
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5))
    net.train()
    net[2].eval()  # a sub-module deliberately in eval mode keeps it
    other = nn.Linear(2, 2).eval()
    with eval_mode(net, other):
        assert not any(m.training for m in [*net.modules(), other])
    assert [m.training for m in net.modules()] == [True, True, True, False] and not other.training
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net):
        raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == [True, True, True, False]


def test_linear_decay_and_gray_to_rgb():
    assert [linear_decay(s, 10, 0.5) for s in (0, 4, 5, 7, 10)] == [1.0, 1.0, 1.0, 0.6, 0.0]
    x = torch.randn(2, 1, 4, 4)
    y = gray_to_rgb(x)
    assert y.shape == (2, 3, 4, 4) and torch.equal(y[:, 2], x[:, 0])
    with pytest.raises(ValueError, match="shape"):
        gray_to_rgb(torch.randn(2, 2, 4, 4))


def test_make_grid_layout_and_range():
    x = -torch.ones(5, 3, 4, 6)
    x[1] = 1.0
    g = make_grid(x, nrow=2, padding=1, pad_value=0.5)
    assert g.shape == (3 * 5 + 1, 2 * 7 + 1, 3)
    assert g[1:5, 1:7].max() == 0.0 and g[1:5, 8:14].min() == 1.0  # -1 -> 0, +1 -> 1
    assert g[0, 0, 0] == 0.5 and g[-1, -1, 0] == 0.5  # padding; the empty sixth tile stays padding
    assert make_grid(np.zeros((2, 1, 3, 3)), nrow=8).shape == (7, 12, 1)  # fewer images than nrow: one short row
    with pytest.raises(ValueError, match="shape"):
        make_grid(np.zeros((3, 3)))


def test_latent_walks_and_attribute_vector():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = interpolate_latents(z0, z1, n=5)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    assert torch.allclose(path.norm(dim=1), torch.ones(5))  # slerp keeps the norm of equal-norm codes
    lin = interpolate_latents(z0, z1, n=5, method="lerp")
    assert lin[2].norm() < 0.8  # lerp cuts through the middle
    assert torch.allclose(slerp(z0, z0, torch.tensor([0.3])), z0[None])
    z = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    v = attribute_vector(z, z[:, 1] * 2.0)
    assert v[1] > 1.5 and v[0].abs() < 0.5 and v[2].abs() < 0.5
    with pytest.raises(ValueError, match="method"):
        interpolate_latents(z0, z1, method="cubic")


def test_wgan_gp_diagnostics_and_layer_norm_critic():
    cfg = GANConfig(**{**TINY, "image_size": 16}, loss="wgan-gp", n_critic=2, critic_norm="layer", beta1=0.0,
                    beta2=0.9)
    tr = GANTrainer(cfg, images(s=16))
    assert any(isinstance(m, torch.nn.GroupNorm) for m in tr.D.modules())
    tr.train(2, progress=False)
    norms = tr.critic_grad_norms(images(n=12, s=16, seed=3), n=10)
    assert norms.shape == (10,) and (norms >= 0).all() and torch.isfinite(norms).all()
    real = images(n=16, s=16, seed=4)
    est = tr.critic_estimate(real)
    assert np.isfinite(est) and est == tr.critic_estimate(real)  # fixed seed: the same fresh samples
    assert tr.D.training and tr.G.training  # the diagnostics leave the training mode alone


def test_sample_is_reproducible_and_leaves_the_run_alone():
    tr = GANTrainer(GANConfig(**TINY), images())
    state = tr.generator.get_state()
    s1, s2 = tr.sample(6, seed=5), tr.sample(6, seed=5)
    assert s1.shape == (6, 1, 8, 8) and torch.equal(s1, s2)
    assert not torch.equal(s1, tr.sample(6, seed=6))
    assert torch.equal(state, tr.generator.get_state())
