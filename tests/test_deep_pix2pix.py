"""pix2pix: the U-Net and its skips, the PatchGAN on pairs, the losses, the three-variant trainer, the command."""
from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_train_command import assert_same_state, cli, ok  # noqa: E402

from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.paired import INPUT_CHANNELS, PAIRED_TASKS, block_means, edge_map, paired_task  # noqa: E402
from gancourse.deep.pix2pix import PatchGAN, UNetGenerator, patch_receptive_field, seeded_dropout  # noqa: E402
from gancourse.deep.runs.registry import get_spec  # noqa: E402
from gancourse.deep.train_pix2pix import (  # noqa: E402
    VARIANTS,
    Pix2PixTrainer,
    l1_loss,
    pix2pix_d_loss,
    pix2pix_g_loss,
    pix2pix_preset,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SMOKE = ["train", "pix2pix", "--preset", "smoke", "--steps", "2", "--batch-size", "4", "--g-width", "4",
         "--d-width", "4", "--sample-every", "1", "--no-progress"]


def images(n, c, seed, size=32):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------------------------ the U-Net
@pytest.mark.parametrize("c_in, c_out, depth, size", [(1, 1, 5, 32), (3, 1, 5, 32), (1, 2, 3, 16), (1, 1, 4, 32)])
def test_unet_maps_an_image_to_an_image_of_the_same_size(c_in, c_out, depth, size):
    torch.manual_seed(0)
    G = UNetGenerator(c_in, c_out, width=4, depth=depth, n_dropout=min(2, depth - 1))
    y = G(images(3, c_in, 0, size))
    assert y.shape == (3, c_out, size, size)
    assert y.abs().max() <= 1  # tanh
    widths = [G.down[i][-1].num_features if isinstance(G.down[i][-1], torch.nn.BatchNorm2d)
              else G.down[i][-1].out_channels for i in range(depth)]
    assert widths == [4 * min(2 ** i, 8) for i in range(depth)]


def test_unet_bottleneck_is_1x1_at_32_and_shapes_are_checked():
    G = UNetGenerator(1, 1, width=4, depth=5)
    h = images(2, 1, 0)
    for layer in G.down:
        h = layer(h)
    assert h.shape == (2, 32, 1, 1)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, H, W\) with H and W divisible by 32"):
        G(images(2, 1, 0, size=16))
    with pytest.raises(ValueError, match="n_dropout must be at most depth - 1 = 4"):
        UNetGenerator(1, 1, 4, depth=5, n_dropout=5)
    with pytest.raises(ValueError, match=r"p_dropout must lie in \[0, 1\)"):
        UNetGenerator(1, 1, 4, p_dropout=1.0)


def _zero_skip_half(G: UNetGenerator, j: int) -> None:
    """Zero the weights by which decoder layer ``j`` reads the skip half of its input (the encoder's features)."""
    conv = G.up[j][1]  # ConvTranspose2d, weight (C_in, C_out, 4, 4); input channels [c:] are the skip
    with torch.no_grad():
        conv.weight[conv.weight.shape[0] // 2:] = 0


def test_unet_skips_carry_information_past_the_bottleneck():
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, width=4, depth=5, n_dropout=0).eval()
    x = images(4, 1, 1)
    # altering only the skip path (the outermost skip's weights) changes the output
    G_no_skip = copy.deepcopy(G)
    _zero_skip_half(G_no_skip, len(G.up) - 1)
    assert (G(x) - G_no_skip(x)).abs().max() > 1e-3
    # cut the path through the bottleneck: the output still follows the input, through the skips alone
    cut = copy.deepcopy(G)
    with torch.no_grad():
        cut.up[0][1].weight.zero_()
    x2 = images(4, 1, 2)
    assert (cut(x) - cut(x2)).abs().max() > 1e-2
    # ... whereas with every skip cut as well, nothing of the input reaches the output
    for j in range(1, len(cut.up)):
        _zero_skip_half(cut, j)
    assert torch.equal(cut(x), cut(x2))


def test_dropout_is_the_noise_seeded_and_switchable():
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, width=4, depth=5, n_dropout=2).eval()
    x = images(2, 1, 3)
    assert torch.equal(G(x), G(x))  # eval mode: no dropout by default
    a = G(x, torch.Generator().manual_seed(1), dropout=True)
    b = G(x, torch.Generator().manual_seed(1), dropout=True)
    c = G(x, torch.Generator().manual_seed(2), dropout=True)
    assert torch.equal(a, b) and not torch.equal(a, c)
    h = torch.ones(1000, 8, 2, 2)
    d = seeded_dropout(h, 0.5, torch.Generator().manual_seed(0))
    assert set(d.unique().tolist()) == {0.0, 2.0} and abs(d.mean().item() - 1.0) < 0.02  # E[output] = h


# ------------------------------------------------------------------------------------------ the PatchGAN
@pytest.mark.parametrize("n_layers, side", [(1, 14), (2, 6), (3, 2)])
def test_patchgan_returns_a_map_of_logits_on_the_pair(n_layers, side):
    torch.manual_seed(0)
    D = PatchGAN(3, 1, width=4, n_layers=n_layers)
    x, y = images(2, 3, 0), images(2, 1, 1)
    assert D(x, y).shape == (2, 1, side, side)
    # it sees both halves of the pair
    D.eval()
    assert not torch.equal(D(x, y), D(x, images(2, 1, 2))) and not torch.equal(D(x, y), D(images(2, 3, 3), y))
    with pytest.raises(ValueError, match=r"y must have shape \(2, 1, 32, 32\) to pair with x"):
        D(x, images(3, 1, 1))


@pytest.mark.parametrize("n_layers", [1, 2])
def test_patchgan_receptive_field_is_the_patch_each_logit_sees(n_layers):
    torch.manual_seed(0)
    D = PatchGAN(1, 1, width=4, n_layers=n_layers).eval()  # eval: batch norm does not mix positions
    size = 64
    x, y = images(1, 1, 0, size).requires_grad_(), images(1, 1, 1, size).requires_grad_()
    logits = D(x, y)
    i = logits.shape[-1] // 2
    logits[0, 0, i, i].backward()
    support = (x.grad[0, 0].abs() + y.grad[0, 0].abs()) > 0  # (size, size): the pixels this logit reads
    rows, cols = support.any(1).nonzero(), support.any(0).nonzero()
    rf = patch_receptive_field(n_layers)
    assert rows.max() - rows.min() + 1 == rf and cols.max() - cols.min() + 1 == rf
    assert rf == {1: 16, 2: 34}[n_layers]


# ------------------------------------------------------------------------------------------ the losses
def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_generator_loss_is_adversarial_plus_lambda_l1():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])  # (1, 1, 2, 2): four patches
    y = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    out = torch.tensor([[[[0.5, -1.0], [-0.5, 0.25]]]])
    adv_hand = sum(softplus(-v) for v in (0.0, 2.0, -1.0, 3.0)) / 4  # -E log sigmoid(D(x, G(x)))
    l1_hand = (0.5 + 0.0 + 1.0 + 0.25) / 4
    total, adv, l1 = pix2pix_g_loss(logits, y, out, 100.0)
    assert math.isclose(adv.item(), adv_hand, rel_tol=1e-6) and math.isclose(l1.item(), l1_hand, rel_tol=1e-6)
    assert math.isclose(total.item(), adv_hand + 100 * l1_hand, rel_tol=1e-6)
    total, adv, _ = pix2pix_g_loss(None, y, out, 100.0)  # L1 only
    assert adv.item() == 0 and math.isclose(total.item(), 100 * l1_hand, rel_tol=1e-6)
    total, _, l1 = pix2pix_g_loss(logits, y, out, 0.0)  # cGAN only: the L1 is still measured
    assert math.isclose(total.item(), adv_hand, rel_tol=1e-6) and math.isclose(l1.item(), l1_hand, rel_tol=1e-6)
    assert l1_loss(y, out).item() == pytest.approx(l1_hand)
    with pytest.raises(ValueError, match=r"output must have the target's shape \(1, 1, 2, 2\)"):
        l1_loss(y, out[..., :1])


def test_discriminator_loss_is_halved_bce_on_pairs():
    real = torch.tensor([1.0, -0.5, 2.0])
    fake = torch.tensor([-2.0, 0.5])
    hand = 0.5 * (sum(softplus(-v) for v in (1.0, -0.5, 2.0)) / 3 + sum(softplus(v) for v in (-2.0, 0.5)) / 2)
    assert pix2pix_d_loss(real, fake).item() == pytest.approx(hand, rel=1e-6)


# ------------------------------------------------------------------------------------------ data and config
def test_edge_map_is_binary_and_marks_where_the_digit_changes():
    x = -torch.ones(1, 1, 10, 10)
    x[0, 0, 2:8, 2:8] = 1.0  # a white 6x6 square
    e = edge_map(x)[0, 0]
    assert set(e.unique().tolist()) == {-1.0, 1.0}
    ring = torch.zeros(10, 10, dtype=torch.bool)
    ring[1:9, 1:9] = True
    ring[3:7, 3:7] = False  # a 3x3 gradient marks the pixels next to the border, on either side
    assert torch.equal(e > 0, ring)


def test_block_means_keep_each_blocks_mean_and_lose_what_is_inside():
    x = torch.arange(16.0).reshape(1, 1, 4, 4) / 8 - 1
    b = block_means(x, 2)
    assert b.shape == x.shape
    assert torch.equal(b[0, 0, :2, :2], torch.full((2, 2), x[0, 0, :2, :2].mean().item()))
    moved = x.clone()
    moved[0, 0, 0, :2] = moved[0, 0, 0, :2].flip(0)  # two pixels swap places inside a block: the input cannot tell
    assert torch.equal(block_means(moved, 2), b)
    with pytest.raises(ValueError, match=r"divisible by 3"):
        block_means(x, 3)


@pytest.mark.parametrize("task", PAIRED_TASKS)
def test_paired_tasks_pair_each_digit_with_its_input(task):
    held = paired_task(task, "heldout")
    assert held.inputs.shape == (1000, INPUT_CHANNELS[task], 32, 32) and held.targets.shape == (1000, 1, 32, 32)
    assert held.labels.shape == (1000,) and torch.bincount(held.labels).tolist() == [100] * 10
    assert held.inputs.abs().max() <= 1 and held.targets.abs().max() <= 1


@pytest.mark.parametrize("field, value, message", [
    ("task", "sketch", "unknown task 'sketch'; valid options are: 'lowres', 'edges', 'colour'"),
    ("n_dropout", 5, r"n_dropout must be an integer in \[0, g_depth - 1 = 4\]"),
    ("p_dropout", 1.0, r"p_dropout must lie in \[0, 1\)"),
    ("l1_lambda", 0.0, "l1_lambda must be a finite number > 0"),
    ("image_size", 48, "image_size must be divisible by 2\\^g_depth = 32"),
    ("g_width", 0, "g_width must be a positive integer"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        pix2pix_preset(tier="smoke", **{field: value})


def test_presets_use_the_papers_objective_and_optimiser():
    for tier in ("smoke", "lecture", "full"):
        c = pix2pix_preset(tier=tier)
        assert (c.l1_lambda, c.lr, c.beta1, c.beta2) == (100.0, 2e-4, 0.5, 0.999)
    assert pix2pix_preset(True) == pix2pix_preset(tier="smoke") and pix2pix_preset() == pix2pix_preset(tier="full")
    assert pix2pix_preset(tier="smoke").steps < pix2pix_preset(tier="lecture").steps < pix2pix_preset().steps


@pytest.mark.parametrize("tier", ["lecture", "full"])
def test_lecture_and_full_presets_build_and_take_a_step(tier):
    c = dataclasses.replace(pix2pix_preset(tier=tier), steps=1)
    t = Pix2PixTrainer(c, images(c.batch_size, 1, 0), images(c.batch_size, 1, 1), "cpu")
    t.train(progress=False)
    with torch.no_grad():
        assert t.D["l1_cgan"](t.inputs[:2], t.targets[:2]).shape == (2, 1, 14, 14)  # 16x16 patches
    out = t.translate(t.inputs[:2])
    assert out.shape == (2, 1, 32, 32) and torch.isfinite(out).all()


# ------------------------------------------------------------------------------------------ the trainer
def small_trainer(steps=2, task="edges"):
    c = pix2pix_preset(tier="smoke", steps=steps, batch_size=4, g_width=4, d_width=4, sample_every=1, task=task)
    n = 16
    return Pix2PixTrainer(c, images(n, c.in_channels, 0), images(n, 1, 1), "cpu")


def test_the_three_variants_start_equal_and_part_with_their_objectives():
    t = small_trainer()
    assert set(t.G) == set(VARIANTS) and set(t.D) == {"cgan", "l1_cgan"}
    g = [t.G[v].state_dict() for v in VARIANTS]
    for other in g[1:]:
        assert_same_state(g[0], other)
    assert_same_state(t.D["cgan"].state_dict(), t.D["l1_cgan"].state_dict())
    assert all(t.G[v] is not t.G["l1"] for v in ("cgan", "l1_cgan"))  # copies, not one shared network
    before = t.batcher.pos
    t.train(progress=False)
    assert t.batcher.pos == before + 2 * 4  # one minibatch per step, shared by the variants
    w = {v: t.G[v].down[0][0].weight for v in VARIANTS}
    assert not torch.equal(w["l1"], w["cgan"]) and not torch.equal(w["cgan"], w["l1_cgan"])
    assert set(t.history.values) >= {"l1_l1", "cgan_adv", "cgan_d", "l1_cgan_adv", "l1_cgan_l1", "l1_cgan_d"}
    assert [s for s, _ in t.snapshots] == [1, 2] and set(t.snapshots[0][1]) == set(VARIANTS)
    assert t.translate(t.inputs[:3], "cgan").shape == (3, 1, 32, 32)


def test_trainer_refuses_unpaired_or_misshapen_data():
    c = pix2pix_preset(tier="smoke", batch_size=4, g_width=4, d_width=4)
    with pytest.raises(ValueError, match="inputs and targets must hold the same number of pairs, got 8 and 6"):
        Pix2PixTrainer(c, images(8, 1, 0), images(6, 1, 1))
    with pytest.raises(ValueError, match=r"inputs must have shape \(N, 1, 32, 32\), got \(8, 3, 32, 32\)"):
        Pix2PixTrainer(c, images(8, 3, 0), images(8, 1, 1))
    with pytest.raises(ValueError, match=r"targets must lie in \[-1, 1\]"):
        Pix2PixTrainer(c, images(8, 1, 0), images(8, 1, 1) * 3)


def test_k_steps_save_load_k_steps_equals_2k_steps(tmp_path):
    straight = small_trainer(steps=4)
    straight.train(progress=False)
    half = small_trainer(steps=4)
    half.train(steps=2, progress=False)
    half.save(tmp_path / "half.pt")
    resumed = small_trainer(steps=4).load(tmp_path / "half.pt")
    resumed.train(progress=False)
    a, b = resumed.state_dict(), straight.state_dict()
    for key in ("step", "G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "snapshots", "rng"):
        assert_same_state(a[key], b[key], key)


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pix2pix") / "run"
    ok([*SMOKE, "--out", out])
    return out


def test_cli_smoke_run_writes_every_file(run):
    for name in ("checkpoint.pt", "metrics.json", "samples.npz", "samples.png", "snapshots/step-0000001.png",
                 "snapshots/step-0000002.png"):
        assert (run / name).is_file(), name
    record = json.loads((run / "metrics.json").read_text())
    assert record["model"] == "pix2pix" and record["steps"] == 2 and record["config"]["l1_lambda"] == 100.0
    rows = {f"{m} ({v})" for m in ("FD-LeNet", "mean L1", "label kept") for v in ("L1", "cGAN", "L1 + cGAN")}
    assert set(record["report"]) == rows
    for name, row in record["report"].items():
        assert set(row) == {"floor", "trained", "ceiling", "better"} and all(
            math.isfinite(row[k]) for k in ("floor", "trained", "ceiling")), name
    assert record["report"]["mean L1 (L1)"]["floor"] == 0 and record["report"]["FD-LeNet (cGAN)"]["floor"] == 0
    with np.load(run / "samples.npz") as npz:
        assert set(npz.files) == {"images", "images_l1", "images_cgan", "inputs", "targets", "labels"}
        for key in ("images", "images_l1", "images_cgan", "inputs", "targets"):
            assert npz[key].shape == (1000, 1, 32, 32) and npz[key].dtype == np.float32, key
            assert np.abs(npz[key]).max() <= 1, key
        assert npz["labels"].dtype == np.int64 and npz["labels"].shape == (1000,)
        held = paired_task("lowres", "heldout")
        assert np.array_equal(npz["targets"], held.targets.numpy()) and np.array_equal(npz["labels"], held.labels)


def test_cli_help_shows_the_models_flags():
    rc, out, _ = cli(["train", "pix2pix", "--help"])
    text = " ".join(out.split())
    assert rc == 0
    for flag in ("--l1-lambda", "--task {lowres,edges,colour}", "--n-dropout", "--d-layers", "--g-depth"):
        assert flag in text, flag
    for absent in ("--channels", "--image-size"):
        assert absent not in text, absent
    assert get_spec("pix2pix").kind == Pix2PixTrainer.KIND


def test_cli_resume_to_2n_equals_2n_straight(run, tmp_path):
    half = tmp_path / "half"
    ok([*SMOKE, "--steps", "1", "--out", half])
    ok(["train", "pix2pix", "--resume", half / "checkpoint.pt", "--steps", "2", "--no-progress"])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(run / "checkpoint.pt")
    assert resumed.pop("run")["preset"] == whole.pop("run")["preset"] == "smoke"
    assert_same_state(resumed, whole)
    with np.load(half / "samples.npz") as a, np.load(run / "samples.npz") as b:
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key
