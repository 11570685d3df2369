"""Regression tests for faults of the toy trainer, its checkpoints, ``gancourse toy`` and ``gancourse demo``.

Each section reproduces one reported fault; most sections are tables (dicts or ``parametrize`` lists), so a later
fault of the same kind is one more row: a damaged checkpoint in ``DAMAGES``, a bad output path in
``BAD_OUTPUTS``, a conflicting flag in ``CONFLICTS``, an absurd size in ``ABSURD_SIZES``.

Rules of the house: no timed assertions (a subprocess is waited on with a generous bound only so that a broken
build fails instead of hanging), no skips, and /dev/null is never written to (special files are FIFOs in
``tmp_path``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from gancourse.cli import main
from gancourse.io import atomic_write
from gancourse.toy import ToyConfig, ToyGAN
from gancourse.toy.checkpoint import load_checkpoint, save_checkpoint
from gan_testing import assert_tree_equal

# Tiny networks: a run takes a fraction of a second.
TINY = ["--batch-size", "32", "--g-hidden", "16,16", "--d-hidden", "16,16", "--z-dim", "4", "--n-eval", "200",
        "--no-progress"]
RING = ["toy", "--data", "ring8", "--seed", "3", *TINY]
SMALL = dict(batch_size=32, z_dim=4, g_hidden=(16, 16), d_hidden=(16, 16), n_eval=200)
WAIT_S = 120  # upper bound on waiting for a subprocess: a hang fails the test instead of blocking the run


def cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``gancourse argv`` in this process: ``(exit status, stdout, stderr)``; an escaping exception fails the test."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        rc = exc.code
    except KeyboardInterrupt:  # must not reach pytest, which would stop the whole session
        pytest.fail("KeyboardInterrupt escaped gancourse's main()")
    out, err = capsys.readouterr()
    return rc, out, err


def without_time(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "seconds"}


def command_env() -> dict:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    return env


def no_training(monkeypatch) -> None:
    """Make any training step fail loudly: for checks that must happen before training starts."""

    def refuse(self):
        raise AssertionError("training started before the command line was checked")

    monkeypatch.setattr(ToyGAN, "train_step", refuse)


def small_checkpoint(path: Path, steps: int = 4, **changes) -> Path:
    gan = ToyGAN(ToyConfig(data="ring8", steps=steps, **{**SMALL, **changes}))
    gan.train(progress=False)
    return gan.save(path)


# --- 1. divergence --------------------------------------------------------------------------------


def test_divergence_exits_2_with_a_message(capsys):
    argv = ["toy", "--steps", "50", "--loss", "lsgan", "--penalty", "none", "--optimizer", "sgd",
            "--lr-d", "1e3", "--lr-g", "1e3", *TINY]
    rc, out, err = cli(capsys, argv)
    assert rc == 2
    assert err.startswith("gancourse toy: error: training diverged at step "), err
    assert "learning rate" in err and out == ""


# --- 3. special files and symlinks ----------------------------------------------------------------


def test_atomic_write_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"not a regular file"):
        atomic_write(fifo, lambda fh: fh.write(b"x"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_atomic_write_refuses_a_folder(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match=r"is a folder"):
        atomic_write(tmp_path / "d", lambda fh: fh.write(b"x"))
    assert (tmp_path / "d").is_dir()


def test_atomic_write_through_a_symlink_updates_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "data.bin"
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    assert atomic_write(link, lambda fh: fh.write(b"new")) == link
    assert link.is_symlink() and target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.bin"
    dangling.symlink_to(tmp_path / "real" / "later.bin")
    atomic_write(dangling, lambda fh: fh.write(b"made"))
    assert dangling.is_symlink() and (tmp_path / "real" / "later.bin").read_bytes() == b"made"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["data.bin", "later.bin"]


def test_atomic_write_refuses_a_symlink_to_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    with pytest.raises(ValueError, match=r"not a regular file"):
        atomic_write(tmp_path / "link", lambda fh: fh.write(b"x"))
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode) and (tmp_path / "link").is_symlink()


def test_dev_null_is_refused_by_the_check_alone():
    """Only the read-only check runs on /dev/null here: nothing in this file ever writes to it."""
    from gancourse.io import check_output_path

    with pytest.raises(ValueError, match=r"/dev/null .*character device.*not a regular file"):
        check_output_path("/dev/null", what="--checkpoint")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("flag", ["--checkpoint", "--samples-out"])
def test_toy_refuses_a_fifo_as_output(tmp_path, capsys, monkeypatch, flag):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    no_training(monkeypatch)
    rc, out, err = cli(capsys, [*RING, "--steps", "3", flag, fifo])
    assert rc == 2 and out == ""
    assert f"gancourse toy: error: {flag} {fifo} exists and is a FIFO" in err, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_samples_out_writes_exactly_the_named_file(tmp_path, capsys):
    path = tmp_path / "samples.data"  # no .npy suffix: np.save must not add one
    rc, _, err = cli(capsys, [*RING, "--steps", "3", "--json", "--samples-out", path])
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.data"]
    with path.open("rb") as fh:
        assert np.load(fh).shape == (200, 2)


# --- 4. output paths are checked before training; write errors are clear -------------------------

BAD_OUTPUTS = {
    # name: (argv after RING, given tmp_path; the message expected on stderr)
    "checkpoint under a file": (lambda t: ["--checkpoint", t / "file.txt" / "ck.npz"],
                                r"--checkpoint .* is not a folder"),
    "samples under a file": (lambda t: ["--samples-out", t / "file.txt" / "x.npy"],
                             r"--samples-out .* is not a folder"),
    "checkpoint is a folder": (lambda t: ["--checkpoint", t / "folder"], r"--checkpoint .*folder.* is a folder"),
    "samples is a folder": (lambda t: ["--samples-out", t / "folder"], r"--samples-out .*folder.* is a folder"),
    "same file twice": (lambda t: ["--checkpoint", t / "x.npz", "--samples-out", t / "sub" / ".." / "x.npz"],
                        r"--samples-out and --checkpoint name the same file"),
    "same file via a symlink": (lambda t: ["--checkpoint", t / "x.npz", "--samples-out", t / "link.npz"],
                                r"--samples-out and --checkpoint name the same file"),
    "checkpoint-every without checkpoint": (lambda t: ["--checkpoint-every", "2"],
                                            r"--checkpoint-every needs --checkpoint"),
}


@pytest.mark.parametrize("name", list(BAD_OUTPUTS))
def test_bad_output_paths_are_refused_before_training(tmp_path, capsys, monkeypatch, name):
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.npz").symlink_to(tmp_path / "x.npz")
    extra, message = BAD_OUTPUTS[name]
    no_training(monkeypatch)
    rc, out, err = cli(capsys, [*RING, "--steps", "3", *extra(tmp_path)])
    assert rc == 2 and out == "", err
    import re

    assert re.search(message, err), err
    assert err.startswith("gancourse toy: error: ")


def test_samples_out_may_not_overwrite_the_resumed_checkpoint(tmp_path, capsys, monkeypatch):
    ck = small_checkpoint(tmp_path / "run.npz")
    before = ck.read_bytes()
    no_training(monkeypatch)
    rc, _, err = cli(capsys, ["toy", "--resume", ck, "--samples-out", ck, "--no-progress"])
    assert rc == 2 and "--samples-out and --resume name the same file" in err, err
    assert ck.read_bytes() == before


def test_folder_without_write_permission_is_refused_before_training(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:
        # root ignores permission bits; answer as os.access would for an ordinary user
        real_access = os.access

        def access(p, mode, **kw):
            return False if Path(p) == locked else real_access(p, mode, **kw)

        monkeypatch.setattr(os, "access", access)
    no_training(monkeypatch)
    try:
        rc, out, err = cli(capsys, [*RING, "--steps", "3", "--checkpoint", locked / "new" / "ck.npz"])
    finally:
        locked.chmod(0o755)
    assert rc == 2 and out == ""
    assert f"--checkpoint {locked / 'new' / 'ck.npz'}: no permission to write in {locked}" in err, err


def test_write_error_at_the_end_is_a_message(tmp_path, capsys, monkeypatch):
    def disk_full(fh, **arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    ck = tmp_path / "ck.npz"
    rc, out, err = cli(capsys, [*RING, "--steps", "3", "--checkpoint", ck])
    assert rc == 2 and out == ""
    assert f"gancourse toy: error: could not write the checkpoint to {ck}: No space left on device" in err, err
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_is_written_before_the_samples(tmp_path, capsys, monkeypatch):
    def disk_full(fh, arr, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    ck, samples = tmp_path / "ck.npz", tmp_path / "s.npy"
    rc, _, err = cli(capsys, [*RING, "--steps", "3", "--checkpoint", ck, "--samples-out", samples])
    assert rc == 2 and f"could not write the samples to {samples}: No space left on device" in err, err
    assert ToyGAN.load(ck).step == 3  # the run is not lost
    assert not samples.exists()


# --- 5. --checkpoint-every and Ctrl-C -------------------------------------------------------------


def test_checkpoint_every_saves_during_the_run(tmp_path, capsys, monkeypatch):
    saved: list[int] = []
    real_save = ToyGAN.save

    def recording_save(self, path):
        saved.append(self.step)
        return real_save(self, path)

    monkeypatch.setattr(ToyGAN, "save", recording_save)
    ck = tmp_path / "ck.npz"
    rc, _, err = cli(capsys, [*RING, "--steps", "10", "--checkpoint-every", "4", "--checkpoint", ck, "--json"])
    assert rc == 0, err
    assert saved == [4, 8, 10]
    assert ToyGAN.load(ck).step == 10


def _interrupt_during_step(monkeypatch, step: int) -> None:
    """Deliver SIGINT in the middle of training step ``step`` (after the D update, before the G update)."""
    real_g_step = ToyGAN.g_step

    def g_step(self):
        if self.step == step - 1:
            signal.raise_signal(signal.SIGINT)
        return real_g_step(self)

    monkeypatch.setattr(ToyGAN, "g_step", g_step)


@pytest.mark.parametrize("data", ["ring8", "grid25"])
def test_ctrl_c_mid_step_saves_a_whole_step_and_the_resume_is_exact(tmp_path, capsys, monkeypatch, data):
    """Items 5 and 7: the recipe's linear schedule, interrupted at step 8 of 20, resumed from the command line."""
    base = ["toy", "--data", data, "--seed", "1", *TINY, "--steps", "20"]
    ck = tmp_path / "ck.npz"
    with monkeypatch.context() as m:
        _interrupt_during_step(m, 8)
        rc, out, err = cli(capsys, [*base, "--checkpoint", ck, "--json"])
    assert rc == 130 and out == "", err
    assert f"interrupted at step 8 of 20; checkpoint saved to {ck}" in err, err
    assert f"gancourse toy --resume {ck}" in err
    assert "Traceback" not in err
    mid = ToyGAN.load(ck)
    assert mid.step == 8 and mid.config.steps == 20 and mid.config.lr_schedule == "linear"
    assert mid.history["step"] == []  # logged every 10 steps: nothing yet, and no half-logged step

    done = tmp_path / "done.npz"
    rc, out, err = cli(capsys, ["toy", "--resume", ck, "--json", "--no-progress", "--checkpoint", done])
    assert rc == 0, err
    resumed = json.loads(out)
    full_ck = tmp_path / "full.npz"
    rc, out, err = cli(capsys, [*base, "--json", "--checkpoint", full_ck])
    assert rc == 0, err
    assert without_time(resumed) == without_time(json.loads(out))
    assert_tree_equal(load_checkpoint(done), load_checkpoint(full_ck))


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_checkpoint_every_must_be_a_positive_integer(tmp_path, capsys, value):
    rc, _, err = cli(capsys, [*RING, "--checkpoint", tmp_path / "ck.npz", "--checkpoint-every", value])
    assert rc == 2 and f"argument --checkpoint-every: expected a positive integer, got '{value}'" in err, err


def test_help_explains_checkpoint_every_and_resume(capsys):
    rc, out, _ = cli(capsys, ["toy", "--help"])
    assert rc == 0
    text = " ".join(out.split())
    assert "--checkpoint-every N" in text and "Ctrl-C" in text
    assert "--steps is the planned total" in text


def test_ctrl_c_without_a_checkpoint_exits_130(capsys, monkeypatch):
    _interrupt_during_step(monkeypatch, 3)
    rc, out, err = cli(capsys, [*RING, "--steps", "10"])
    assert rc == 130 and out == ""
    assert "interrupted at step 3 of 10; nothing was saved (give --checkpoint FILE.npz" in err, err


def test_sigint_to_the_real_command_saves_a_checkpoint(tmp_path):
    ck = tmp_path / "ck.npz"
    argv = [sys.executable, "-m", "gancourse", *RING, "--steps", "100000000", "--checkpoint-every", "5",
            "--checkpoint", str(ck)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=command_env())
    try:
        deadline = time.monotonic() + WAIT_S
        while not ck.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ck.exists(), "the periodic checkpoint never appeared"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""
    assert f"checkpoint saved to {ck}" in err and f"gancourse toy --resume {ck}" in err, err
    gan = ToyGAN.load(ck)
    assert 5 <= gan.step < 100000000 and gan.config.steps == 100000000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]


# --- 7. a resumed run keeps its schedule ----------------------------------------------------------


def test_resume_may_not_stretch_a_linear_schedule(tmp_path, capsys):
    ck = tmp_path / "m.npz"
    rc, _, err = cli(capsys, [*RING, "--steps", "20", "--checkpoint", ck, "--json"])
    assert rc == 0, err
    before = ck.read_bytes()
    rc, out, err = cli(capsys, ["toy", "--resume", ck, "--steps", "40", "--no-progress", "--checkpoint", ck])
    assert rc == 2 and out == ""
    assert "gancourse toy: error: --steps 40 would change the schedule of the run saved in" in err, err
    assert "lr_schedule='linear'" in err and "planned for 20 steps" in err
    assert ck.read_bytes() == before


def test_extend_keeps_a_planned_schedule_unless_asked_to_retime():
    linear = ToyGAN(ToyConfig(steps=10, **SMALL))
    with pytest.raises(ValueError, match=r"planned for 10 steps \(lr_schedule='linear'"):
        linear.extend(20)
    linear.extend(10)  # the same total is no change
    linear.extend(20, retime=True)
    assert linear.config.steps == 20
    noise = ToyGAN(ToyConfig(steps=10, lr_schedule="constant", instance_noise=0.1, **SMALL))
    with pytest.raises(ValueError, match=r"instance_noise=0.1 is annealed"):
        noise.extend(20)
    constant = ToyGAN(ToyConfig(steps=10, lr_schedule="constant", **SMALL))
    constant.extend(20)
    assert constant.config.steps == 20


def test_resume_with_the_planned_total_is_allowed(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "m.npz", steps=12)
    rc, out, err = cli(capsys, ["toy", "--resume", ck, "--steps", "12", "--json", "--no-progress"])
    assert rc == 0, err
    assert json.loads(out)["steps"] == 12


# --- 8. --resume and the config flags -------------------------------------------------------------

CONFLICTS = {
    # name: (flags given with --resume, names the error must list)
    "lr and data": (["--lr-g", "5", "--data", "grid25"], ["--lr-g 5.0 (the checkpoint has --lr-g 0.002)",
                                                          "--data grid25 (the checkpoint has --data ring8)"]),
    "a boolean": (["--spectral-norm"], ["--spectral-norm (the checkpoint has --no-spectral-norm)"]),
    "widths": (["--g-hidden", "8,8"], ["--g-hidden 8,8 (the checkpoint has --g-hidden 16,16)"]),
    "preset": (["--preset", "plain"], ["--preset plain"]),
}


@pytest.mark.parametrize("name", list(CONFLICTS))
def test_resume_refuses_flags_that_contradict_the_checkpoint(tmp_path, capsys, monkeypatch, name):
    ck = small_checkpoint(tmp_path / "m.npz")
    flags, listed = CONFLICTS[name]
    no_training(monkeypatch)
    rc, out, err = cli(capsys, ["toy", "--resume", ck, "--no-progress", *flags])
    assert rc == 2 and out == ""
    assert "gancourse toy: error: --resume continues the run saved in" in err, err
    for item in listed:
        assert item in err, (item, err)


def test_resume_accepts_flags_equal_to_the_checkpoint(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "m.npz", steps=6)
    rc, out, err = cli(capsys, ["toy", "--resume", ck, "--no-progress", "--data", "ring8", "--g-hidden", "16,16",
                                "--json"])
    assert rc == 0, err
    assert json.loads(out)["steps"] == 6


# --- 9. damaged checkpoints -----------------------------------------------------------------------


def _rewrite(path: Path, change) -> None:
    tree = load_checkpoint(path)
    change(tree)
    save_checkpoint(path, tree)


def _flip_a_data_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


DAMAGES = {
    # name: (damage the checkpoint file at the given path, a piece of the expected message)
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "not a gancourse checkpoint"),
    "bit flip": (_flip_a_data_bit, "damaged"),
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    "npy file": (lambda p: p.write_bytes(_npy_bytes()), "not a gancourse checkpoint"),
    "text file": (lambda p: p.write_text("step = 4\n"), "not a gancourse checkpoint"),
    "missing key": (lambda p: _rewrite(p, lambda t: t.pop("rng")), "damaged: it has no 'rng' entry"),
    "missing G weight": (lambda p: _rewrite(p, lambda t: t["G"].popitem()),
                         "damaged: G"),
    "ema None": (lambda p: _rewrite(p, lambda t: t.__setitem__("ema", None)), "damaged: ema"),
    "optimizer state shape": (lambda p: _rewrite(p, _bad_adam_shape), "damaged: opt_g"),
    "optimizer state type": (lambda p: _rewrite(p, lambda t: t["opt_d"].__setitem__("state", [1, 2])), "damaged: opt_d"),
    "config field": (lambda p: _rewrite(p, lambda t: t["config"].__setitem__("loss", "nope")), "damaged: config"),
    "rng state": (lambda p: _rewrite(p, lambda t: t.__setitem__("rng", {"bit_generator": "PCG64"})), "damaged: rng"),
    "step": (lambda p: _rewrite(p, lambda t: t.__setitem__("step", "four")), "damaged: step"),
}


def _npy_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    return buf.getvalue()


def _bad_adam_shape(tree: dict) -> None:
    for buf in tree["opt_g"]["state"]["theta"]:
        tree["opt_g"]["state"]["theta"][buf] = np.zeros(3, dtype=np.float32)


@pytest.mark.parametrize("name", list(DAMAGES))
def test_damaged_checkpoint_gives_one_clear_error(tmp_path, capsys, name):
    ck = small_checkpoint(tmp_path / "m.npz", ema=0.99)
    damage, message = DAMAGES[name]
    damage(ck)
    with pytest.raises(ValueError) as info:
        ToyGAN.load(ck)
    assert type(info.value).__name__ == "CheckpointError"
    assert str(ck) in str(info.value) and message in str(info.value), str(info.value)
    rc, out, err = cli(capsys, ["toy", "--resume", ck, "--no-progress"])
    assert rc == 2 and out == ""
    assert err.startswith(f"gancourse toy: error: {ck}") and message in err, err


def test_any_bit_flip_loads_or_gives_the_clear_error(tmp_path):
    ck = small_checkpoint(tmp_path / "m.npz")
    good = ck.read_bytes()
    for i in range(0, len(good), max(1, len(good) // 150)):
        data = bytearray(good)
        data[i] ^= 0x04
        ck.write_bytes(bytes(data))
        try:
            ToyGAN.load(ck)
        except ValueError as exc:
            assert type(exc).__name__ == "CheckpointError", (i, repr(exc))


# --- 16. absurd sizes -----------------------------------------------------------------------------

ABSURD_SIZES = {
    "batch": (["--batch-size", "1000000000000"], "--batch-size 1000000000000"),
    "eval": (["--n-eval", "1000000000000"], "--n-eval 1000000000000"),
    "widths": (["--g-hidden", "100000000,100000000"], "--g-hidden 100000000,100000000"),
    "mbd": (["--batch-size", "2000000", "--penalty", "none", "--minibatch-discrimination", "8"], "--batch-size 2000000"),
}


@pytest.mark.parametrize("name", list(ABSURD_SIZES))
def test_absurd_sizes_are_refused_with_an_estimate(capsys, monkeypatch, name):
    flags, named = ABSURD_SIZES[name]
    no_training(monkeypatch)
    rc, out, err = cli(capsys, [*RING, "--steps", "1", *flags])
    assert rc == 2 and out == ""
    assert err.startswith("gancourse toy: error: this run needs at least "), err
    assert named in err and "iB" in err and "more than the " in err


def test_memory_estimate_grows_with_each_size():
    from gancourse.toy.config import memory_estimate

    base = memory_estimate(ToyConfig(**SMALL))
    assert set(base) == {"parameters", "training", "evaluation"}
    assert all(v > 0 for v in base.values())
    assert memory_estimate(ToyConfig(**{**SMALL, "g_hidden": (64, 64)}))["parameters"] > base["parameters"]
    assert memory_estimate(ToyConfig(**{**SMALL, "batch_size": 64}))["training"] > base["training"]
    assert memory_estimate(ToyConfig(**{**SMALL, "n_eval": 400}))["evaluation"] > base["evaluation"]


# --- 19. object arrays ----------------------------------------------------------------------------


def test_save_checkpoint_refuses_object_arrays(tmp_path):
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match=r"object array at 'a/b'"):
        save_checkpoint(path, {"a": {"b": np.array([1, "x"], dtype=object)}})
    assert list(tmp_path.iterdir()) == []


# --- 20. hygiene ----------------------------------------------------------------------------------


def test_temp_files_left_by_kill_9_are_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "run.npz"
    script = (
        "import os, signal, sys\n"
        "from gancourse.io import atomic_write\n"
        "def die(fh):\n"
        "    fh.write(b'half')\n"
        "    fh.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "atomic_write(sys.argv[1], die)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, timeout=WAIT_S)
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".run.npz.") and left[0].endswith(".tmp"), left
    earlier = time.time() - 2  # the next write comes later than the kill (file times may be coarse)
    os.utime(tmp_path / left[0], (earlier, earlier))
    # files that are not this helper's temporaries of this target, or are newer than the write, are kept
    keep = [".run.npz.ABCDEFGH.tmp", ".other.npz.abcd1234.tmp", "run.npz.abcd1234.tmp", ".run.npz.abc.tmp"]
    for name in keep:
        (tmp_path / name).write_bytes(b"")
    future = tmp_path / ".run.npz.zzzz9999.tmp"
    future.write_bytes(b"")
    later = time.time() + 3600
    os.utime(future, (later, later))
    save_checkpoint(target, {"x": np.arange(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, future.name, "run.npz"])


def test_demo_out_is_an_existing_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "figures"
    path.write_text("a file")
    no_training(monkeypatch)
    rc, out, err = cli(capsys, ["demo", "--steps", "5", "--out", path])
    assert rc == 2
    assert f"gancourse demo: error: --out {path} exists and is not a folder" in err, err
    assert path.read_text() == "a file"


def test_demo_short_run_draws_its_figures_without_warnings(tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, _, err = cli(capsys, ["demo", "--steps", "5", "--no-gif", "--out", tmp_path])
    assert rc == 0, err
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "No artists with labels" in m], messages
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.png", "metrics.json", "samples.png"]


# --- 21. config field types and step counts -------------------------------------------------------
# A NumPy integer is an integer (a seed drawn with ``rng.integers``, a count from ``np.arange``) and is stored as
# a plain int, so the run is the one the int gives; only True/False switch a trick on or off (``"no"`` is a
# non-empty string, hence truthy); a step count is a whole number, never truncated.

NUMPY_INTS = [("seed", np.int64(3)), ("steps", np.int32(7)), ("batch_size", np.int64(16)), ("n_critic", np.uint8(2)),
              ("eval_every", np.int16(0)), ("g_hidden", (np.int64(8), 8))]


@pytest.mark.parametrize("field, value", NUMPY_INTS, ids=[f for f, _ in NUMPY_INTS])
def test_config_takes_numpy_integers_as_plain_ints(field, value):
    cfg = ToyConfig(**{field: value})
    plain = tuple(int(v) for v in value) if isinstance(value, tuple) else int(value)
    assert cfg == ToyConfig(**{field: plain})
    got = getattr(cfg, field)
    assert all(type(v) is int for v in (got if isinstance(got, tuple) else (got,))), got
    json.dumps(cfg.to_dict())  # plain values: the checkpoint's metadata and --json need no conversion


def test_a_numpy_seed_trains_exactly_like_the_int_seed():
    runs = [ToyGAN(ToyConfig(data="ring8", seed=seed, steps=3, **SMALL)).run(progress=False)
            for seed in (np.int64(3), 3)]
    assert without_time(runs[0]) == without_time(runs[1])


@pytest.mark.parametrize("field", ["feature_matching", "spectral_norm"])
@pytest.mark.parametrize("value", ["no", "False", "yes", 0, 1, None, 1.0])
def test_config_switches_must_be_true_or_false(field, value):
    with pytest.raises(TypeError, match="^" + re.escape(f"{field} must be True or False, got {value!r}")):
        ToyConfig(**{field: value})


def test_config_takes_numpy_booleans_as_plain_bools():
    cfg = ToyConfig(feature_matching=np.bool_(True), spectral_norm=np.False_)
    assert cfg.feature_matching is True and cfg.spectral_norm is False


@pytest.mark.parametrize("field, value", [("ema", "0.9"), ("label_smoothing", None), ("beta1", True),
                                          ("momentum", [0.5])])
def test_config_numbers_must_be_numbers(field, value):
    with pytest.raises(TypeError, match=f"^{field} must be a number, got"):
        ToyConfig(**{field: value})


@pytest.mark.parametrize("steps", [3.7, 3.0, np.float64(2.0), "3", True])
def test_train_refuses_a_step_count_that_is_not_a_whole_number(steps):
    gan = ToyGAN(ToyConfig(data="ring8", steps=5, **SMALL))
    with pytest.raises(ValueError, match="^" + re.escape(f"steps must be an integer >= 0, got {steps!r}")):
        gan.train(steps, progress=False)
    assert gan.step == 0


def test_train_takes_a_numpy_integer_step_count():
    gan = ToyGAN(ToyConfig(data="ring8", steps=5, **SMALL))
    gan.train(np.int64(2), progress=False)
    assert gan.step == 2 and type(gan.step) is int


@pytest.mark.parametrize("n", [2.5, 0, -1, "4"])
def test_sample_refuses_a_count_that_is_not_a_positive_integer(n):
    gan = ToyGAN(ToyConfig(data="ring8", steps=5, **SMALL))
    with pytest.raises(ValueError, match="^" + re.escape(f"n must be a positive integer, got {n!r}")):
        gan.sample(n)


def test_output_folder_check_refuses_files_and_dangling_links(tmp_path):
    from gancourse.errors import OutputPathError
    from gancourse.io import check_output_folder

    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("file", "dangling"):
        with pytest.raises(OutputPathError, match=f"--out {tmp_path / name} exists and is not a folder; give a "
                                                  f"folder for the figures"):
            check_output_folder(tmp_path / name, ["metrics.json"], holds="the figures")
    (tmp_path / "run" / "metrics.json").mkdir(parents=True)  # a folder where a file must go
    with pytest.raises(OutputPathError, match="is a folder: give the name of a file to write"):
        check_output_folder(tmp_path / "run", ["metrics.json"])
    assert check_output_folder(tmp_path / "new" / "deep", ["a.png"]) == tmp_path / "new" / "deep"
    assert not (tmp_path / "new").exists()  # nothing is created
