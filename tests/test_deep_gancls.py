"""GAN-CLS: captions measured from digits, the text encoder, the matching-aware discriminator and its loss,
the trainer's options, and ``gancourse train gancls`` (every file written, exact resume)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from test_train_command import assert_same_state, cli, ok  # noqa: E402

from gancourse.deep.captions import (  # noqa: E402
    DIGIT_WORDS,
    N_MEANINGS,
    TEMPLATES,
    VOCABULARY,
    AttributeThresholds,
    all_captions,
    box_area,
    caption,
    decode_meaning,
    ink_mass,
    meaning_code,
    measure_attributes,
    normalize,
    tilt_degrees,
)
from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.gancls import (  # noqa: E402
    MatchingAwareDiscriminator,
    TextConditionedGenerator,
    TextEncoder,
    d_loss_matching,
    interpolate_text,
    pretrain_text_encoder,
)
from gancourse.deep.runs.gancls import pair_agreement  # noqa: E402
from gancourse.deep.train_gancls import GANCLSConfig, GANCLSTrainer, gancls_preset, snapshot_layout  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(steps=2, batch_size=8, z_dim=4, g_width=4, d_width=4, embed_dim=4, text_hidden=8, text_dim=4,
            proj_dim=4, encoder_steps=2, n_samples=20, sample_every=1, log_every=1)
CLI = ["train", "gancls", "--preset", "smoke", "--batch-size", "8", "--z-dim", "4", "--g-width", "4",
       "--d-width", "4", "--embed-dim", "4", "--text-hidden", "8", "--text-dim", "4", "--proj-dim", "4",
       "--encoder-steps", "2", "--n-samples", "20", "--sample-every", "2", "--no-progress"]


def canvas(n: int = 1, size: int = 32) -> torch.Tensor:
    return -torch.ones(n, 1, size, size)  # black background


def line(angle_deg: float, width: float = 1.0, length: float = 20.0) -> torch.Tensor:
    """A white bar through the centre at ``angle_deg`` from the vertical (positive: leaning right)."""
    r, c = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    dr, dc = r - 15.5, c - 15.5
    a = np.deg2rad(angle_deg)
    along = -dr * np.cos(a) + dc * np.sin(a)  # distance along the bar (up = positive)
    across = dr * np.sin(a) + dc * np.cos(a)
    ink = (across.abs() <= width / 2) & (along.abs() <= length / 2)
    return torch.where(ink, 1.0, -1.0)[None, None]


def digits(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random blobby 'digits' of every class: images (n, 1, 32, 32) in [-1, 1], labels (n,)."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 8, 8, generator=gen) > 0.6).float()
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False) * 2 - 1
    return x, torch.arange(n) % 10


# ---------------------------------------------------------------------------------------- attributes
def test_a_thick_bar_has_more_ink_than_a_thin_one():
    thin, thick = line(0, width=1), line(0, width=6)  # 2 and 6 pixels wide
    assert float(ink_mass(thick)) > 2 * float(ink_mass(thin)) > 0
    assert float(ink_mass(canvas())) == 0.0 and float(ink_mass(torch.ones(1, 1, 32, 32))) == 1.0


def test_tilt_is_the_principal_axis_angle_from_the_vertical():
    tilts = tilt_degrees(torch.cat([line(0, 2), line(20, 2), line(-20, 2), line(45, 2), line(90, 2)]))
    assert tilts[0] < 1 and abs(tilts[3] - 45) < 2 and tilts[4] > 89
    assert abs(tilts[1] - 20) < 3 and abs(tilts[1] - tilts[2]) < 0.5  # leaning left or right: the same tilt


def test_a_slanted_line_is_classified_slanted_and_a_big_box_large():
    upright, slanted = line(2, 2), line(30, 2)
    medians = torch.tensor([[0.05, 15.0, 200.0]]).repeat(10, 1)  # (10, 3): thickness, tilt, box area
    words = AttributeThresholds(medians).attributes(torch.cat([upright, slanted]), torch.tensor([1, 1]))
    assert words[:, 1].tolist() == [0, 1]
    small, large = canvas(2)[:1].clone(), canvas(1)
    small[..., 10:16, 12:16] = 1  # a 6 x 4 box
    large[..., 4:28, 8:24] = 1  # 24 x 16
    assert box_area(torch.cat([small, large, canvas()])).tolist() == [24.0, 384.0, 0.0]
    assert AttributeThresholds(medians).attributes(torch.cat([small, large]), torch.tensor([3, 3]))[:, 2].tolist() \
        == [0, 1]


def test_thresholds_are_class_medians_that_split_each_class_in_halves():
    x, y = digits(200)
    th = AttributeThresholds.fit(x, y)
    values = measure_attributes(x)
    assert th.medians.shape == (10, 3)
    assert torch.allclose(th.medians[3], values[y == 3].median(dim=0).values)
    upper = th.attributes(x, y).float()
    for d in range(10):
        assert (upper[y == d].mean(0) <= 0.5).all()  # strictly above the median: at most half
    with pytest.raises(ValueError, match=r"every digit needs training images.*\[9\]"):
        AttributeThresholds.fit(x[y != 9], y[y != 9])


# ---------------------------------------------------------------------------------------- captions
def test_captions_put_the_same_words_in_different_orders():
    assert caption(7, (1, 0, 0)) == "a thick upright small seven"
    assert caption(0, (0, 1, 1), template=3) == "the zero is large, thin and slanted"
    positions = set()
    for t in range(len(TEMPLATES)):
        words = normalize(caption(4, (1, 1, 0), template=t))
        assert all(words.count(w) == 1 for w in ("four", "thick", "slanted", "small"))
        positions.add(tuple(words.index(w) for w in ("four", "thick", "slanted", "small")))
    assert len(positions) == len(TEMPLATES)  # no two templates put the four words at the same places
    with pytest.raises(ValueError, match="template must lie in 0..5"):
        caption(4, (1, 1, 0), template=6)
    with pytest.raises(ValueError, match="attributes must be 3 indicators"):
        caption(4, (1, 2, 0))


def test_meaning_codes_round_trip_and_every_caption_is_written_once():
    labels, bits = torch.tensor([0, 7, 9]), torch.tensor([[0, 0, 0], [1, 0, 1], [1, 1, 1]])
    codes = meaning_code(labels, bits)
    assert codes.tolist() == [0, 61, 79]
    back = decode_meaning(codes)
    assert torch.equal(back[0], labels) and torch.equal(back[1], bits)
    captions, codes = all_captions()
    assert len(set(captions)) == len(captions) == N_MEANINGS * len(TEMPLATES)
    assert captions[6 * 61] == "a thick upright large seven" and int(codes[6 * 61]) == 61


def test_tokenization_round_trip_with_padding():
    captions = ["a thick upright small seven", "the seven is small, thick and upright", "Zero:  SLANTED, large, thin"]
    tokens = VOCABULARY.encode(captions)
    assert tokens.dtype == torch.long and tokens.shape == (3, 7)
    assert (tokens[0, 5:] == 0).all() and (tokens[1] != 0).all()  # padded with index 0
    assert VOCABULARY.decode(tokens) == [" ".join(normalize(c)) for c in captions]
    assert VOCABULARY.decode(tokens)[2] == "zero slanted large thin"
    assert VOCABULARY.encode(captions[0], length=9).shape == (1, 9)
    with pytest.raises(ValueError, match="a caption has 7 words, more than length=5"):
        VOCABULARY.encode(captions, length=5)


def test_an_unknown_word_is_refused_with_the_vocabulary():
    with pytest.raises(ValueError, match=r"unknown word 'purple' in the caption 'a purple seven'; the vocabulary "
                                         r"has 21 words: a, and, .*zero"):
        VOCABULARY.encode(["a thin seven", "a purple seven"])
    with pytest.raises(ValueError, match="unknown word '<pad>'"):
        VOCABULARY.encode("a <pad> seven")
    with pytest.raises(ValueError, match="has no words"):
        VOCABULARY.encode(", ;")


# ---------------------------------------------------------------------------------------- networks
def test_encoder_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    enc = TextEncoder(len(VOCABULARY), embed_dim=8, hidden=16, text_dim=12)
    tokens = VOCABULARY.encode(["a thin upright small one", "one: slanted, large, thick", "the one is small, thin and upright"])
    h = enc(tokens)
    assert h.shape == (3, 12) and h.abs().max() < 1  # tanh
    # padding after the last word does not change the embedding
    assert torch.allclose(enc(VOCABULARY.encode(["a thin upright small one"], length=10)), h[:1], atol=1e-6)
    G = TextConditionedGenerator(z_dim=5, text_dim=12, proj_dim=6, width=8)
    D = MatchingAwareDiscriminator(text_dim=12, proj_dim=6, width=8)
    x = G(torch.randn(3, 5), h)
    assert x.shape == (3, 1, 32, 32) and x.abs().max() <= 1
    f = D.features(x)
    assert f.shape == (3, 32, 4, 4) and D.score(f, h).shape == D(x, h).shape == (3,)
    D.eval()
    assert torch.equal(D(x, h), D.score(D.features(x), h))
    assert not torch.allclose(D(x, h), D(x, h.flip(0)))  # D reads the text
    with pytest.raises(ValueError, match=r"h must have shape \(3, 12\)"):
        D(x, h[:, :4])
    with pytest.raises(ValueError, match=r"z must have shape \(N, 5\) and h \(N, 12\)"):
        G(torch.randn(3, 4), h)


def test_pretraining_teaches_the_encoder_to_read_every_template_then_freezes_it():
    torch.manual_seed(0)
    enc = TextEncoder(len(VOCABULARY))  # the lecture preset's sizes
    report = pretrain_text_encoder(enc, steps=100)
    assert min(report[k] for k in ("digit", "thickness", "slant", "size")) >= 0.95, report
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training


# ---------------------------------------------------------------------------------------- losses
def test_matching_aware_loss_by_hand_three_terms_and_two_without_wrong_text():
    gen = torch.Generator().manual_seed(0)
    l_r, l_w, l_f = (torch.randn(6, generator=gen, dtype=torch.float64) for _ in range(3))
    s_r, s_w, s_f = torch.sigmoid(l_r), torch.sigmoid(l_w), torch.sigmoid(l_f)
    by_hand = -(torch.log(s_r).mean() + (torch.log(1 - s_w).mean() + torch.log(1 - s_f).mean()) / 2)
    assert torch.allclose(d_loss_matching(l_r, l_f, l_w), by_hand)
    two_terms = -(torch.log(s_r).mean() + torch.log(1 - s_f).mean())
    assert torch.allclose(d_loss_matching(l_r, l_f), two_terms)
    # the wrong text pushes D(x, h_wrong) down: its gradient is sigmoid(l_w) / (2N)
    l_w = l_w.clone().requires_grad_(True)
    d_loss_matching(l_r, l_f, l_w).backward()
    assert torch.allclose(l_w.grad, s_w / 12)


def test_gan_int_interpolates_embeddings():
    h1, h2 = torch.ones(2, 3), -torch.ones(2, 3)
    assert torch.equal(interpolate_text(h1, h2), torch.zeros(2, 3))
    assert torch.equal(interpolate_text(h1, h2, 1.0), h1)
    steps = interpolate_text(h1[:1], h2[:1], torch.linspace(0, 1, 5)[:, None])  # (5, 3): h2 ... h1
    assert torch.allclose(steps[:, 0], torch.linspace(-1, 1, 5))


# ---------------------------------------------------------------------------------------- trainer
@pytest.mark.parametrize("field, value, message", [
    ("int_beta", 1.5, "int_beta must lie in"),
    ("wrong_text", "yes", "wrong_text must be True or False"),
    ("batch_size", 0, "batch_size"),
    ("encoder_steps", 0, "encoder_steps"),
])
def test_bad_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        gancls_preset(tier="smoke", **{field: value})


def test_presets_by_tier():
    smoke, lecture, full = (gancls_preset(tier=t) for t in ("smoke", "lecture", "full"))
    assert smoke.steps < lecture.steps < full.steps and lecture.g_width <= full.g_width
    assert all(c.wrong_text and c.int_beta == 0.5 and (c.lr_g, c.beta1) == (2e-4, 0.5) for c in (smoke, lecture, full))


def test_the_full_preset_takes_two_steps_on_the_cpu():
    x, y = digits(130)
    config = dataclasses.replace(gancls_preset(tier="full"), steps=2, encoder_steps=2, n_samples=20)
    trainer = GANCLSTrainer(config, x, y)
    trainer.train(progress=False)
    assert trainer.step == 2 and trainer.snapshots[-1][1].shape == (20, 1, 32, 32)
    assert trainer.D.features(x[:2]).shape == (2, 256, 4, 4)


def test_wrong_text_and_gan_int_change_the_losses_but_not_the_random_draws():
    x, y = digits(40)
    runs = {}
    for wrong, gan_int in ((True, True), (False, True), (True, False)):
        trainer = GANCLSTrainer(gancls_preset(tier="smoke", wrong_text=wrong, gan_int=gan_int, **TINY), x, y)
        trainer.train(progress=False)
        runs[wrong, gan_int] = trainer
    a, b, c = runs[True, True], runs[False, True], runs[True, False]
    assert set(a.history.values) == {"step", "d_loss", "g_loss", "d_real", "d_wrong", "d_fake"}
    assert "d_wrong" not in b.history.values
    for other in (b, c):
        assert torch.equal(a.generator.get_state(), other.generator.get_state())
        assert torch.equal(a.batcher.perm, other.batcher.perm)
        assert not torch.equal(a.G.net.net[0].weight, other.G.net.net[0].weight)
    assert torch.equal(a.encoder.out.weight, b.encoder.out.weight)  # the frozen encoder depends on the seed only


def test_trainer_captions_and_snapshots():
    x, y = digits(40)
    trainer = GANCLSTrainer(gancls_preset(tier="smoke", **TINY), x, y)
    assert trainer.caption_table.shape == (N_MEANINGS, len(TEMPLATES), 4)
    h = trainer.embed([caption(7, (1, 0, 1), 2)])
    assert torch.allclose(h, trainer.embed_meanings(torch.tensor([61]), torch.tensor([2])))
    codes, z_idx, thick = snapshot_layout(40)
    assert thick.tolist() == [0] * 10 + [1] * 10 + [0] * 10 + [1] * 10
    assert torch.equal(z_idx[:10], z_idx[10:20]) and not torch.equal(z_idx[:10], z_idx[20:30])
    assert [DIGIT_WORDS[int(d)] for d in decode_meaning(codes)[0][:3]] == ["zero", "one", "two"]
    with pytest.raises(ValueError, match=r"labels must have shape \(40,\)"):
        GANCLSTrainer(gancls_preset(tier="smoke", **TINY), x, y[:10])
    with pytest.raises(TypeError, match="GANCLSConfig"):
        GANCLSTrainer(dataclasses.asdict(gancls_preset(tier="smoke")), x, y)


def test_pair_agreement_counts_ties_as_half():
    assert pair_agreement(torch.tensor([2.0, 1.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 2.0, 0.0])) == 0.5
    assert pair_agreement(torch.tensor([2.0, 3.0]), torch.tensor([1.0, 1.0])) == 1.0


# ---------------------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gancls") / "run"
    ok([*CLI, "--steps", "4", "--out", out])
    return out


def test_a_run_writes_every_file(run):
    import matplotlib.pyplot as plt

    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["steps"]) == ("gancls", "smoke", 4)
    assert set(metrics["report"]) == {"caption digit agreement", "thickness follows the word",
                                      "slant follows the word", "size follows the word", "fd_lenet"}
    for name, row in metrics["report"].items():
        assert set(row) == {"floor", "trained", "ceiling", "better"}, name
    assert metrics["report"]["caption digit agreement"]["floor"] > 0.9  # the LeNet on real held-out digits
    assert all(metrics["report"][f"{a} follows the word"]["floor"] == 1.0 for a in ("thickness", "slant", "size"))
    with np.load(run / "samples.npz") as npz:
        assert set(npz.files) == {"images", "labels", "captions"}
        images, labels, captions = npz["images"], npz["labels"], npz["captions"]
    assert images.shape == (1000, 1, 32, 32) and images.dtype == np.float32 and np.abs(images).max() <= 1
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [100] * 10
    assert captions.shape == (1000,) and captions.dtype.kind == "U"
    assert all(DIGIT_WORDS[d] in normalize(str(c)) for c, d in zip(captions, labels))
    assert plt.imread(run / "samples.png").ndim == 3
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["kind"] == "gan-cls" and set(state) >= {"encoder", "G", "D", "opt_g", "opt_d", "generator"}


def test_n_steps_then_resume_to_2n_equals_2n_straight(run, tmp_path):
    half = tmp_path / "half"
    ok([*CLI, "--steps", "2", "--out", half])
    ok(["train", "gancls", "--resume", half / "checkpoint.pt", "--steps", "4", "--no-progress"])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(run / "checkpoint.pt")
    for key in ("step", "encoder", "G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "snapshots", "rng"):
        assert_same_state(resumed[key], whole[key], key)
    with np.load(half / "samples.npz") as a, np.load(run / "samples.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in b.files)


def test_the_command_refuses_a_bad_flag(tmp_path):
    rc, _, err = cli([*CLI, "--int-beta", "2", "--out", tmp_path / "run"])
    assert rc == 2 and "int_beta must lie in [0, 1]" in err, err
    rc, _, err = cli([*CLI, "--channels", "3", "--out", tmp_path / "run"])
    assert rc == 2 and "unrecognized arguments: --channels" in err, err
