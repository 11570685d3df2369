"""Regression tests for reported faults in the image track (LeNet, IDX, checkpoints, trainers) and the dynamics CLI.

One section per area; each test names the fault it reproduces. To add a case, add a row to the
parametrized table of its section (``CHECKPOINT_FAULTS``, ``IDX_FAULTS``, ``BAD_DYNAMICS_FLAGS``, ...)
or a test below the section's header. Files under ``data/`` are never modified: corruption tests work
on copies in ``tmp_path``.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.cli import main  # noqa: E402
from gancourse.deep import lenet as L  # noqa: E402
from gancourse.deep.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from gancourse.deep.idx import ChecksumError, IdxFormatError, load_mnist_idx, parse_idx  # noqa: E402
from gancourse.deep.train_cyclegan import CycleGANConfig, CycleGANTrainer  # noqa: E402
from gancourse.deep.train_gan import GANConfig, GANTrainer  # noqa: E402
from gancourse.dynamics import DiracGAN, Method, analyze, simulate, xy_game  # noqa: E402
from gancourse.errors import DivergenceError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:30db3a21df75bf7ae03dc38a520205b2ae72b8e77abe95266b120aae83f79054\n"
    "size 471181\n"
)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ============================================================================ item 2: the committed LeNet


@pytest.fixture
def lenet_copy(tmp_path, monkeypatch):
    """Copies of the committed weights and record in tmp_path, with ``load_lenet`` pointed at them."""
    weights, info = tmp_path / "lenet_mnist5k.pt", tmp_path / "lenet_mnist5k.json"
    shutil.copyfile(L.LENET_PATH, weights)
    shutil.copyfile(L.LENET_INFO_PATH, info)
    monkeypatch.setattr(L, "LENET_PATH", weights)
    monkeypatch.setattr(L, "LENET_INFO_PATH", info)
    monkeypatch.setattr(L, "_CACHE", {})
    return weights, info


def test_lenet_intact_copy_loads(lenet_copy):
    model = L.load_lenet()
    assert not model.training and all(torch.isfinite(p).all() for p in model.parameters())


def test_lenet_bit_flipped_copy_is_refused_naming_file_and_remedies(lenet_copy):
    weights, _ = lenet_copy
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit inside a weight tensor: torch itself loads this silently
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError) as exc:
        L.load_lenet()
    msg = str(exc.value)
    assert str(weights) in msg and "SHA-256" in msg
    assert "scripts/train_lenet.py" in msg and "git checkout" in msg


def test_lenet_git_lfs_pointer_is_recognised(lenet_copy):
    weights, _ = lenet_copy
    weights.write_text(LFS_POINTER)
    with pytest.raises(ValueError, match="git-lfs pointer") as exc:
        L.load_lenet()
    assert "git lfs pull" in str(exc.value) and str(weights) in str(exc.value)


def test_lenet_all_nan_weights_are_refused_even_with_a_matching_record(lenet_copy):
    weights, info = lenet_copy
    state = {k: torch.full_like(v, float("nan")) for k, v in L.LeNet().state_dict().items()}
    torch.save(state, weights)
    with pytest.raises(ValueError, match="SHA-256"):  # against the committed record: a hash mismatch
        L.load_lenet()
    record = json.loads(info.read_text())
    info.write_text(json.dumps({**record, "sha256": sha256_bytes(weights.read_bytes())}))
    L._CACHE.clear()
    with pytest.raises(ValueError, match="NaN") as exc:  # a record that agrees does not make NaN weights usable
        L.load_lenet()
    assert str(weights) in str(exc.value) and "scripts/train_lenet.py" in str(exc.value)


def test_lenet_path_parameter_checks_against_the_committed_record(tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copyfile(L.LENET_PATH, copy)
    model = L.load_lenet(path=copy)
    assert model is not L.load_lenet()  # cached per file, not shared with the committed weights
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="flipped.pt"):
        L.load_lenet(path=flipped)


# ============================================================================ item 12: IDX files


def idx_bytes(sizes: tuple[int, ...], payload: bytes = b"") -> bytes:
    """An unsigned-byte IDX file: magic 0x000008<d>, the sizes as big-endian uint32, then ``payload``."""
    return bytes([0, 0, 8, len(sizes)]) + b"".join(s.to_bytes(4, "big") for s in sizes) + payload


def write_mnist(folder: Path, n: int = 5, images_name: str = "images.idx", labels_name: str = "labels.idx",
                compress: bool = False) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    imgs = idx_bytes((n, 4, 4), rng.integers(0, 256, n * 16, dtype=np.uint8).tobytes())
    labs = idx_bytes((n,), np.arange(n, dtype=np.uint8).tobytes())
    ip, lp = folder / images_name, folder / labels_name
    ip.write_bytes(gzip.compress(imgs) if compress else imgs)
    lp.write_bytes(gzip.compress(labs) if compress else labs)
    return ip, lp


def test_idx_corrupted_gzip_is_a_clear_error(tmp_path):
    ip, lp = write_mnist(tmp_path, images_name="images.gz", compress=True)
    data = bytearray(ip.read_bytes())
    data[10] ^= 0xFF  # the first byte of the deflate stream: zlib.error "invalid block type"
    ip.write_bytes(bytes(data))
    with pytest.raises(IdxFormatError, match="gzip") as exc:
        load_mnist_idx(ip, lp)
    assert str(ip) in str(exc.value)


def test_idx_header_sizes_past_int64_are_a_clear_error(tmp_path):
    # 2**31 * 2**31 * 4 = 2**64 wraps to 0 in int64, which "matches" a file that is only a header
    ip = tmp_path / "huge.idx"
    ip.write_bytes(idx_bytes((2**31, 2**31, 4), b""))
    _, lp = write_mnist(tmp_path)
    with pytest.raises(IdxFormatError, match="truncated") as exc:
        load_mnist_idx(ip, lp)
    assert str(ip) in str(exc.value) and str(2**64 + 16) in str(exc.value)  # header + 2**64 bytes
    with pytest.raises(IdxFormatError):
        parse_idx(idx_bytes((2**32 - 1, 2**32 - 1, 2**32 - 1), b""), ndim=3)


@pytest.mark.parametrize("mangle", [lambda h: h + "\n", lambda h: h.upper(), lambda h: f"  {h.upper()}\r\n"],
                         ids=["trailing-newline", "upper-case", "spaces-and-crlf"])
def test_idx_expected_hash_is_stripped_and_lower_cased(tmp_path, mangle):
    ip, lp = write_mnist(tmp_path)
    expected = {"images": mangle(sha256_bytes(ip.read_bytes())), "labels": mangle(sha256_bytes(lp.read_bytes()))}
    images, labels = load_mnist_idx(ip, lp, sha256=expected)
    assert images.shape == (5, 4, 4) and labels.tolist() == [0, 1, 2, 3, 4]


def test_idx_hash_mismatch_shows_both_hashes_on_their_own_lines(tmp_path):
    ip, lp = write_mnist(tmp_path)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as exc:
        load_mnist_idx(ip, lp, sha256={"images": wrong + "\n"})
    msg = str(exc.value)
    assert str(ip) in msg
    assert re.search(rf"expected:\s+{wrong}\n", msg) and re.search(rf"got:\s+{sha256_bytes(ip.read_bytes())}", msg)


def test_idx_malformed_expected_hash_says_what_a_hash_looks_like(tmp_path):
    ip, lp = write_mnist(tmp_path)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        load_mnist_idx(ip, lp, sha256={"images": "abc123"})


@pytest.mark.parametrize("suffix", [".GZ", ".Gz"])
def test_idx_upper_case_gz_suffix_is_decompressed(tmp_path, suffix):
    ip, lp = write_mnist(tmp_path, images_name="images" + suffix, labels_name="labels" + suffix, compress=True)
    images, labels = load_mnist_idx(ip, lp)
    assert images.shape == (5, 4, 4) and len(labels) == 5


@pytest.mark.parametrize("with_hash", [False, True])
def test_idx_directory_as_path_is_a_clear_value_error(tmp_path, with_hash):
    _, lp = write_mnist(tmp_path)
    folder = tmp_path / "mnist"
    folder.mkdir()
    sha = {"images": "0" * 64} if with_hash else None
    with pytest.raises(ValueError, match="folder") as exc:
        load_mnist_idx(folder, lp, sha256=sha)
    assert str(folder) in str(exc.value)


# ============================================================================ item 14: torch checkpoints

TINY = dict(batch_size=8, z_dim=4, image_size=8, g_width=4, d_width=4, log_every=3, sample_every=4, n_samples=4)
CYC = dict(batch_size=2, image_size=8, g_width=2, n_blocks=1, d_width=4, d_layers=1, pool_size=3, log_every=3,
           sample_every=4, n_samples=2, steps=6)


def images(n=40, c=1, s=8, seed=0):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _lfs(path: Path) -> None:
    path.write_text(LFS_POINTER)


def _toy_npz(path: Path) -> None:
    from gancourse.toy.checkpoint import save_checkpoint as save_toy

    save_toy(path, {"step": 3, "params": {"w": np.zeros((2, 2))}})


def _plain_npz(path: Path) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, version=np.zeros(3))


def _truncated(path: Path) -> None:
    save_checkpoint(path, GANTrainer(GANConfig(**TINY), images()).state_dict())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x80\x02not a checkpoint" * 8)


def _text(path: Path) -> None:
    path.write_text("hello\n")


def _tensor(path: Path) -> None:
    torch.save(torch.zeros(3), path)


#: (id, how to make the bad file, words the error must contain)
CHECKPOINT_FAULTS = [
    ("empty", _empty, "empty"),
    ("git-lfs-pointer", _lfs, "git-lfs pointer"),
    ("toy-npz", _toy_npz, ".npz"),
    ("plain-npz", _plain_npz, ".npz"),
    ("truncated", _truncated, "damaged"),
    ("garbage", _garbage, "damaged"),
    ("text", _text, "damaged"),
    ("not-a-dict", _tensor, "Tensor"),
]


@pytest.mark.parametrize("make,words", [c[1:] for c in CHECKPOINT_FAULTS], ids=[c[0] for c in CHECKPOINT_FAULTS])
def test_bad_checkpoint_files_give_one_clear_error(tmp_path, make, words):
    path = tmp_path / "run.pt"
    make(path)
    for load in (load_checkpoint, GANTrainer(GANConfig(**TINY), images()).load):
        with pytest.raises(ValueError) as exc:
            load(path)
        msg = str(exc.value)
        assert "not a gancourse image checkpoint" in msg and words in msg and str(path) in msg, msg
        assert "weights_only=False" not in msg  # never advise the unsafe load


@pytest.mark.parametrize("key", ["opt_g", "config", "history"])
def test_checkpoint_missing_key_is_named(tmp_path, key):
    tr = GANTrainer(GANConfig(**TINY), images())
    state = tr.state_dict()
    del state[key]
    path = tmp_path / "partial.pt"
    save_checkpoint(path, state)
    with pytest.raises(ValueError, match=f"'{key}'") as exc:
        GANTrainer(GANConfig(**TINY), images()).load(path)
    assert "not a gancourse image checkpoint" in str(exc.value)


def test_checkpoint_damaged_inside_is_named(tmp_path):
    tr = GANTrainer(GANConfig(**TINY), images())
    state = tr.state_dict()
    state["batcher"] = {"pos": 0}  # the permutation is missing
    path = tmp_path / "inner.pt"
    save_checkpoint(path, state)
    with pytest.raises(ValueError, match="damaged") as exc:
        GANTrainer(GANConfig(**TINY), images()).load(path)
    assert "perm" in str(exc.value)


def test_checkpoint_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        load_checkpoint(tmp_path)


# ============================================================================ item 15: trainer input checks


@pytest.mark.parametrize("scale", [255.0, 1.5])
def test_gan_trainer_refuses_images_outside_minus_one_one(scale):
    x = (images() + 1) / 2 * scale  # [0, scale]
    with pytest.raises(ValueError, match=r"\[-1, 1\]") as exc:
        GANTrainer(GANConfig(**TINY), x)
    assert "127.5" in str(exc.value)


def test_cyclegan_trainer_refuses_images_outside_minus_one_one():
    with pytest.raises(ValueError, match=r"b .*\[-1, 1\]"):
        CycleGANTrainer(CycleGANConfig(**CYC), images(c=1), images(c=3) * 255)
    with pytest.raises(ValueError, match=r"a .*\[-1, 1\]"):
        CycleGANTrainer(CycleGANConfig(**CYC), images(c=1) * 255, images(c=3))


def test_gan_trainer_refuses_nan_images_before_training():
    x = images()
    x[3, 0, 2, 2] = float("nan")
    tr = GANTrainer(GANConfig(**TINY), x)
    with pytest.raises(ValueError, match="NaN") as exc:
        tr.train(2, progress=False)
    assert isinstance(exc.value, DivergenceError)  # still caught by code that catches divergence
    assert "smaller learning rate" not in str(exc.value) and "image 3" in str(exc.value)
    assert tr.step == 0


def test_cyclegan_trainer_refuses_nan_images_before_training():
    b = images(c=3)
    b[0] = float("inf")
    tr = CycleGANTrainer(CycleGANConfig(**CYC), images(c=1), b)
    with pytest.raises(ValueError, match="NaN/inf"):
        tr.train(1, progress=False)


@pytest.mark.parametrize("other", [lambda x: images(seed=9), lambda x: x[:30], lambda x: x.flip(0)],
                         ids=["other-contents", "fewer-images", "other-order"])
def test_gan_resume_on_a_different_dataset_is_refused(tmp_path, other):
    x = images()
    tr = GANTrainer(GANConfig(**TINY), x)
    tr.train(2, progress=False)
    path = tr.save(tmp_path / "run.pt")
    GANTrainer(GANConfig(**TINY), x.clone()).load(path)  # the same images (another tensor): fine
    with pytest.raises(ValueError, match="different dataset") as exc:
        GANTrainer(GANConfig(**TINY), other(x)).load(path)
    assert str(path) in str(exc.value)


def test_cyclegan_resume_on_a_different_dataset_is_refused(tmp_path):
    a, b = images(n=12, c=1, seed=1), images(n=12, c=3, seed=2)
    tr = CycleGANTrainer(CycleGANConfig(**CYC), a, b)
    path = tr.save(tmp_path / "cyc.pt")
    CycleGANTrainer(CycleGANConfig(**CYC), a, b).load(path)
    with pytest.raises(ValueError, match="different dataset.*b:"):
        CycleGANTrainer(CycleGANConfig(**CYC), a, images(n=12, c=3, seed=3)).load(path)


def test_old_checkpoint_without_fingerprint_resumes_with_a_warning(tmp_path):
    x = images()
    tr = GANTrainer(GANConfig(**TINY), x)
    tr.train(2, progress=False)
    state = tr.state_dict()
    state.pop("data_fingerprint", None)
    path = tmp_path / "old.pt"
    save_checkpoint(path, state)
    with pytest.warns(UserWarning, match="fingerprint"):
        resumed = GANTrainer(GANConfig(**TINY), x).load(path)
    assert resumed.step == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GANTrainer(GANConfig(**TINY), x).load(tr.save(tmp_path / "new.pt"))  # a new checkpoint: no warning


# ============================================================================ item 17: the dynamics command


def test_dynamics_progress_flag_writes_a_bar_to_stderr(capsys):
    assert main(["dynamics", "--steps", "300", "--progress"]) == 0
    out = capsys.readouterr()
    assert "simulat" in out.err and "verdict:" in out.out and "simulat" not in out.out.split("simulated:")[0]


def test_dynamics_progress_by_default_only_for_long_runs(capsys, monkeypatch):
    from gancourse.dynamics import integrators

    monkeypatch.setattr(integrators, "LONG_RUN_STEPS", 200)
    assert main(["dynamics", "--steps", "150"]) == 0
    assert "simulat" not in capsys.readouterr().err
    assert main(["dynamics", "--steps", "300"]) == 0
    assert "simulat" in capsys.readouterr().err
    assert main(["dynamics", "--steps", "300", "--no-progress"]) == 0
    assert "simulat" not in capsys.readouterr().err
    assert main(["dynamics", "--steps", "300", "--json"]) == 0  # the bar goes to stderr: JSON stays clean
    out = capsys.readouterr()
    assert json.loads(out.out)["steps"] == 300 and "simulat" in out.err


def test_simulate_reports_progress_in_steps():
    done: list[int] = []
    traj = simulate(xy_game(), Method("altgd", h=0.1), [1.0, 1.0], 25_001, progress=done.append)  # bounded
    assert sum(done) == 25_001 and len(done) >= 3 and len(traj.distance) == 25_002
    done.clear()
    simulate(xy_game(), Method("simgd", h=100.0), [1.0, 1.0], 50, progress=done.append)  # blows up early
    assert sum(done) == 50


def test_dynamics_huge_step_size_prints_short_numbers(capsys):
    assert main(["dynamics", "--eta", "1e300"]) == 0
    text = capsys.readouterr().out
    assert not re.search(r"\d{20}", text), text
    assert "5e+299" in text
    assert main(["dynamics", "--eta", "1e300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spectral_radius"] == pytest.approx(5e299, rel=1e-6)  # JSON stays numeric
    assert main(["dynamics", "--eta", "1e60", "--table", "--steps", "5"]) == 0
    assert not re.search(r"\d{20}", capsys.readouterr().out)
    # so large that RK4 overflows float64 at the equilibrium: a sentence, not "J contains 2 NaN/inf value(s)"
    assert main(["dynamics", "--eta", "1e300", "--table", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "overflows float64" in err and "smaller h" in err


def test_dynamics_ordinary_numbers_keep_their_format(capsys):
    assert main(["dynamics"]) == 0
    text = capsys.readouterr().out
    assert "+1.000000-0.050000i" in text and "spectral radius of F_h': 1.001249 (closed form 1.001249)" in text


#: (flags, words of the error)
BAD_DYNAMICS_FLAGS = [
    (["--game", "xy", "--gamma", "-5"], "gamma must be a finite number > 0"),
    (["--gamma", "0"], "gamma must be a finite number > 0"),
    (["--gamma", "nan"], "gamma must be a finite number > 0"),
    (["--sigma", "-1"], "sigma must be a finite number > 0"),
    (["--game", "xy", "--sigma", "0"], "sigma must be a finite number > 0"),
    (["--beta", "2"], "beta must lie in (-1, 1)"),
    (["--h", "-0.1"], "step size h must be a finite number > 0"),
    (["--h", "inf"], "step size h must be a finite number > 0"),
    (["--table", "--gamma", "-1"], "gamma must be a finite number > 0"),
]


@pytest.mark.parametrize("argv,msg", BAD_DYNAMICS_FLAGS, ids=[" ".join(a) for a, _ in BAD_DYNAMICS_FLAGS])
def test_dynamics_refuses_parameters_outside_their_range(capsys, argv, msg):
    assert main(["dynamics", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_dynamics_default_explains_why_verdict_and_simulation_disagree(capsys):
    assert main(["dynamics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "verdict: diverges" in lines and any(ln.startswith("simulated: cycles") for ln in lines)
    notes = [ln for ln in lines if ln.startswith("note: ")]
    assert len(notes) == 1
    assert "unstable" in notes[0] and "nonlinear" in notes[0] and "bounded" in notes[0]


# the note's logic lives in gancourse.dynamics.analysis: tested on the library directly
@pytest.mark.parametrize(
    "game,method,steps,words",
    [
        (DiracGAN(), Method("simgd", h=0.1), 1000, ["unstable", "bounded", "too short"]),
        (DiracGAN(), Method("simgd", h=0.1), 20_000, ["unstable", "bounded", "limit cycle"]),
        (DiracGAN(), Method("extragradient", h=0.1), 1000, ["converges", "slowly", "longer run"]),
        (DiracGAN("gan", "r1"), Method("optimistic", h=1.0), 100, ["local", "start closer"]),
        (xy_game(), Method("flow", h=1.0), 3000, ["exact flow", "damp"]),
    ],
    ids=["gan-simgd-short", "gan-simgd-long", "gan-extragradient", "r1-optimistic-h1", "xy-flow-rk4"],
)
def test_analysis_note_explains_disagreement(game, method, steps, words):
    a = analyze(game, method, steps=steps)
    assert a.verdict != a.simulated_verdict
    assert "\n" not in a.note
    for w in words:
        assert w in a.note, (w, a.note)


@pytest.mark.parametrize("game,method", [(DiracGAN("gan", "r1"), Method("simgd", h=0.1)),
                                         (xy_game(), Method("simgd", h=0.1)),
                                         (xy_game(), Method("altgd", h=0.5))])
def test_analysis_note_is_empty_when_they_agree(game, method):
    a = analyze(game, method, steps=1000)
    assert a.verdict == a.simulated_verdict and a.note == ""


def test_verdict_note_function_directly():
    from gancourse.dynamics.analysis import verdict_note

    assert verdict_note("converges", "converges", 0.5, 100, 1.0, 1e-9) == ""
    assert verdict_note("does not converge", "cycles", 0.9, 100, 1.0, 1.0) == ""
    note = verdict_note("diverges", "cycles", 1.5, 100, 1.0, 2.0)
    assert "unstable" in note and "limit cycle" in note
    note = verdict_note("cycles", "converges", 1.0, 100, 1.0, 1e-9)
    assert "decides nothing" in note
    note = verdict_note("diverges", "converges", 1.5, 100, 1.0, 1e-9)
    assert "contracting" in note
