"""``gancourse train``: the image models through the command line, their run folders, resume and Ctrl-C.

Every run is tiny (the smoke preset with a few steps and small widths, given as flags), and the runs that several
tests read are made once per module.
"""
from __future__ import annotations

import contextlib
import io
import json
import signal
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.cli import main  # noqa: E402
from gancourse.deep.checkpoint import load_checkpoint  # noqa: E402
from gancourse.deep.train_cyclegan import CycleGANTrainer, cyclegan_preset  # noqa: E402
from gancourse.deep.train_gan import GANTrainer, dcgan_preset, wgan_gp_preset  # noqa: E402
from gancourse.interrupt import DeferSigint  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

DCGAN = ["train", "dcgan", "--preset", "smoke", "--batch-size", "8", "--g-width", "8", "--d-width", "8",
         "--z-dim", "8", "--sample-every", "2", "--no-progress"]
WGAN = ["train", "wgan-gp", "--preset", "smoke", "--steps", "2", "--batch-size", "8", "--g-width", "8",
        "--d-width", "8", "--n-critic", "2", "--no-progress"]
CYCLEGAN = ["train", "cyclegan", "--preset", "smoke", "--steps", "4", "--sample-every", "2", "--no-progress"]


def cli(argv: list) -> tuple[int, str, str]:
    """``gancourse argv`` in this process: ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            rc = exc.code
        except KeyboardInterrupt:  # must not reach pytest, which would stop the whole session
            pytest.fail("KeyboardInterrupt escaped gancourse's main()")
    return rc, out.getvalue(), err.getvalue()


def ok(argv: list) -> str:
    rc, out, err = cli(argv)
    assert rc == 0, err
    return out


def assert_same_state(a, b, path: str = "") -> None:
    """Bit-exact equality of two checkpoint trees (tensors, dicts, lists, plain values)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same_state(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def interrupt_at(monkeypatch, trainer_class: type, step: int) -> None:
    """Deliver SIGINT to this process in the middle of training step ``step`` (before its update)."""
    real_step = trainer_class.train_step

    def train_step(self):
        if self.step == step - 1:
            signal.raise_signal(signal.SIGINT)
        return real_step(self)

    monkeypatch.setattr(trainer_class, "train_step", train_step)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One finished run folder per model (DCGAN for 3 steps), made through the command line."""
    root = tmp_path_factory.mktemp("runs")
    folders = {"dcgan": root / "dcgan", "wgan-gp": root / "wgan", "cyclegan": root / "cyclegan"}
    ok([*DCGAN, "--steps", "3", "--out", folders["dcgan"]])
    ok([*WGAN, "--out", folders["wgan-gp"]])
    ok([*CYCLEGAN, "--out", folders["cyclegan"]])
    return folders


# ------------------------------------------------------------------------------------------ the parser
def test_help_lists_the_models_and_each_models_generated_flags():
    rc, out, _ = cli(["train", "--help"])
    assert rc == 0 and all(name in out for name in ("dcgan", "wgan-gp", "cyclegan"))
    rc, out, _ = cli(["train", "dcgan", "--help"])
    text = " ".join(out.split())
    assert rc == 0
    for flag in ("--preset {smoke,lecture,full}", "--device {auto,cpu,cuda}", "--resume CKPT", "--out DIR",
                 "--g-width", "--lr-g", "--seed", "--checkpoint-every", "--no-amp"):
        assert flag in text, flag
    for absent in ("--loss", "--channels", "--image-size", "--gp-lambda", "--n-critic"):  # fixed, or unused by DCGAN
        assert absent not in text, absent
    steps = {tier: dcgan_preset(tier=tier).steps for tier in ("smoke", "lecture", "full")}
    assert f"(default: smoke {steps['smoke']}, lecture {steps['lecture']}, full {steps['full']})" in text
    rc, out, _ = cli(["train", "wgan-gp", "--preset", "lecture", "--help"])
    text = " ".join(out.split())
    assert f"generator iterations (default: {wgan_gp_preset(tier='lecture').steps})" in text
    assert "--gp-lambda" in text and "--n-critic" in text
    rc, out, _ = cli(["train", "cyclegan", "--help"])
    assert rc == 0 and "--lambda-cycle" in out and "--n-blocks" in out and "--z-dim" not in out


@pytest.mark.parametrize("preset", [dcgan_preset, wgan_gp_preset, cyclegan_preset])
def test_presets_by_tier_keep_smoke_working(preset):
    assert preset(True) == preset(tier="smoke") and preset() == preset(tier="full")
    lecture = preset(tier="lecture")
    assert preset(True).steps < lecture.steps < preset().steps and lecture.g_width <= preset().g_width
    assert preset(tier="lecture", steps=7).steps == 7
    with pytest.raises(ValueError, match="smoke=True contradicts tier='lecture'"):
        preset(True, tier="lecture")
    with pytest.raises(ValueError, match="unknown tier 'huge'; valid options are: 'smoke', 'lecture', 'full'"):
        preset(tier="huge")


@pytest.mark.parametrize("argv, message", [
    (["train", "gigagan"], "argument MODEL: invalid choice: 'gigagan'"),
    (["train", "dcgan", "--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (["train", "wgan-gp", "--critic-norm", "batch"], "argument --critic-norm: invalid choice: 'batch'"),
    (["train", "dcgan", "--gp-lambda", "5"], "unrecognized arguments: --gp-lambda 5"),
    (["train", "dcgan"], "gancourse train: error: choose the run's size with --preset (smoke, lecture, full)"),
    (["train", "dcgan", "--preset", "smoke", "--steps", "0"], "gancourse train: error: steps must be a positive"),
    (["train", "dcgan", "--preset", "smoke", "--threads", "0"], "gancourse train: error: --threads must be a posit"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, argv, message):
    rc, _, err = cli([*argv, "--out", tmp_path / "run"])
    assert rc == 2 and message in err, err
    assert not (tmp_path / "run").exists()


def test_device_cuda_is_refused_where_there_is_none(tmp_path, monkeypatch):
    import gancourse.deep.device as device

    monkeypatch.setattr(device, "device_available", lambda kind: kind == "cpu")
    rc, _, err = cli([*DCGAN, "--device", "cuda", "--out", tmp_path / "run"])
    assert rc == 2 and "--device cuda: torch reports no CUDA device here" in err, err


# ------------------------------------------------------------------------------------------ the run folder
@pytest.mark.parametrize("model, shapes", [
    ("dcgan", {"images": (1000, 1, 32, 32)}),
    ("wgan-gp", {"images": (1000, 1, 32, 32)}),
    ("cyclegan", {"images": (1000, 3, 32, 32), "inputs": (1000, 1, 32, 32), "targets": (1000, 3, 32, 32),
                  "labels": (1000,), "reverse_images": (1000, 3, 32, 32)}),
])
def test_a_run_writes_every_file(runs, model, shapes):
    import matplotlib.pyplot as plt

    folder = runs[model]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (metrics["model"], metrics["preset"], metrics["seed"]) == (model, "smoke", 0)
    assert metrics["steps"] == metrics["config"]["steps"] and metrics["device"] == "cpu"
    assert metrics["seconds"] > 0 and metrics["final_losses"]
    for name, row in metrics["report"].items():
        assert set(row) == {"floor", "trained", "ceiling", "better"}, name
        assert (row["floor"] > row["ceiling"]) == (row["better"] == "higher"), name  # real beats untrained
    with np.load(folder / "samples.npz") as npz:
        assert {k: npz[k].shape for k in npz.files} == shapes
        for k in npz.files:
            if k == "labels":
                assert npz[k].dtype == np.int64 and set(np.unique(npz[k])) <= set(range(10))
            else:
                assert npz[k].dtype == np.float32 and np.abs(npz[k]).max() <= 1, k
    assert metrics["samples"] == {k: {"shape": list(s), "dtype": "int64" if k == "labels" else "float32"}
                                  for k, s in shapes.items()}
    assert plt.imread(folder / "samples.png").ndim == 3
    every = metrics["config"]["sample_every"]
    steps = sorted({*range(every, metrics["steps"] + 1, every), metrics["steps"]})
    assert sorted(p.name for p in (folder / "snapshots").iterdir()) == [f"step-{s:07d}.png" for s in steps]
    state = load_checkpoint(folder / "checkpoint.pt")
    assert state["step"] == metrics["steps"] and state["run"]["model"] == model


def test_flags_override_the_preset_and_only_them(runs):
    config = json.loads((runs["wgan-gp"] / "metrics.json").read_text())["config"]
    preset = wgan_gp_preset(tier="smoke")
    given = {"steps": 2, "batch_size": 8, "g_width": 8, "d_width": 8, "n_critic": 2}
    assert {k: config[k] for k in given} == given
    assert all(config[k] == getattr(preset, k) for k in config if k not in given)
    assert config["loss"] == "wgan-gp" and config["gp_lambda"] == 10.0


# ------------------------------------------------------------------------------------------ refusals
def test_a_folder_holding_a_run_is_refused_and_left_alone(runs):
    folder = runs["dcgan"]
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    rc, _, err = cli([*DCGAN, "--steps", "3", "--out", folder])
    assert rc == 2, err
    assert f"--out {folder} already holds a run (checkpoint.pt, metrics.json); continue it with --resume " \
           f"{folder / 'checkpoint.pt'}, or choose another --out" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("inside, message", [
    (None, "exists and is not a folder"),
    ("samples.npz/", "samples.npz is a folder: give the name of a file to write"),
    ("snapshots", "snapshots is not a folder"),
])
def test_unwritable_run_folders_are_refused_before_training(tmp_path, inside, message):
    out = tmp_path / "run"
    if inside is None:
        out.write_text("mine")
    elif inside.endswith("/"):
        (out / inside).mkdir(parents=True)
    else:
        out.mkdir()
        (out / inside).write_text("mine")
    rc, _, err = cli([*DCGAN, "--steps", "2", "--out", out])
    assert rc == 2 and message in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["run", *([inside.rstrip("/")] if inside else [])])


def test_resume_refuses_flags_that_contradict_the_checkpoint(runs):
    ckpt = runs["dcgan"] / "checkpoint.pt"
    rc, _, err = cli(["train", "dcgan", "--resume", ckpt, "--lr-g", "0.1", "--seed", "3", "--preset", "full"])
    assert rc == 2, err
    assert "--preset full (the run was started with --preset smoke)" in err
    assert "--lr-g 0.1 (the checkpoint has --lr-g 0.0002)" in err and "--seed 3 (the checkpoint has --seed 0)" in err
    rc, _, err = cli(["train", "dcgan", "--resume", ckpt, "--g-width", "8", "--steps", "2"])  # same width: fine
    assert rc == 2 and "--steps 2 is below step 3" in err, err


def test_resume_refuses_another_models_checkpoint(runs, tmp_path):
    ckpt = runs["dcgan"] / "checkpoint.pt"
    rc, _, err = cli(["train", "wgan-gp", "--resume", ckpt])
    assert rc == 2 and f"holds a dcgan run, not wgan-gp; continue it with `gancourse train dcgan --resume {ckpt}`" \
        in err, err
    rc, _, err = cli(["train", "cyclegan", "--resume", ckpt])
    assert rc == 2 and "holds a dcgan run, not cyclegan" in err, err
    other = tmp_path / "other.pt"
    torch.save({"kind": "vae", "config": {}}, other)
    rc, _, err = cli(["train", "dcgan", "--resume", other])
    assert rc == 2 and "no model of `gancourse train` wrote it (its kind is 'vae'" in err, err


def test_resume_refuses_steps_that_would_change_a_schedule(runs):
    rc, _, err = cli(["train", "cyclegan", "--resume", runs["cyclegan"] / "checkpoint.pt", "--steps", "8"])
    assert rc == 2 and "--steps 8 would change the schedule" in err and "decays linearly to 0" in err, err


# ------------------------------------------------------------------------------------------ resume and Ctrl-C
def test_n_steps_then_resume_to_2n_equals_2n_straight(runs, tmp_path):
    half = tmp_path / "half"
    ok([*DCGAN, "--steps", "3", "--out", half])
    ok(["train", "dcgan", "--resume", half / "checkpoint.pt", "--steps", "6", "--no-progress"])
    straight = tmp_path / "straight"
    ok([*DCGAN, "--steps", "6", "--out", straight])
    resumed, whole = load_checkpoint(half / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    for key in ("step", "G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "rng"):
        assert_same_state(resumed[key], whole[key], key)
    with np.load(half / "samples.npz") as a, np.load(straight / "samples.npz") as b:
        assert np.array_equal(a["images"], b["images"])
    assert json.loads((half / "metrics.json").read_text())["report"] == \
        json.loads((straight / "metrics.json").read_text())["report"]


def test_ctrl_c_saves_a_whole_step_and_the_resume_is_exact(runs, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        interrupt_at(m, CycleGANTrainer, 3)
        rc, stdout, err = cli([*CYCLEGAN, "--out", out])
    assert rc == 130 and stdout == "", err
    assert f"interrupted at step 3 of 4; checkpoint saved to {out / 'checkpoint.pt'}" in err, err
    assert f"gancourse train cyclegan --resume {out / 'checkpoint.pt'} --no-progress" in err
    assert "Traceback" not in err and not (out / "metrics.json").exists()
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3

    ok(["train", "cyclegan", "--resume", out / "checkpoint.pt", "--no-progress"])
    resumed, whole = load_checkpoint(out / "checkpoint.pt"), load_checkpoint(runs["cyclegan"] / "checkpoint.pt")
    assert resumed.pop("run")["preset"] == whole.pop("run")["preset"] == "smoke"
    assert_same_state(resumed, whole)
    with np.load(out / "samples.npz") as a, np.load(runs["cyclegan"] / "samples.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in b.files)


def test_checkpoints_are_written_every_n_steps(tmp_path, monkeypatch):
    out, steps = tmp_path / "run", []
    with monkeypatch.context() as m:
        interrupt_at(m, GANTrainer, 5)
        real_save = torch.save
        m.setattr(torch, "save", lambda obj, fh: steps.append(obj["step"]) or real_save(obj, fh))
        rc, _, err = cli([*DCGAN, "--steps", "6", "--checkpoint-every", "2", "--out", out])
    assert rc == 130, err
    assert steps == [2, 4, 5]  # every 2 steps, then on Ctrl-C at a step boundary


def test_defer_sigint_waits_for_the_step_then_a_second_ctrl_c_interrupts():
    previous = signal.getsignal(signal.SIGINT)
    with DeferSigint() as stop:
        assert not stop()
        signal.raise_signal(signal.SIGINT)
        assert stop() and stop.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous
