"""Tests for the ``gancourse`` command: ``toy`` and ``demo``, in-process and as a real command."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gancourse.cli import main
from gancourse.io import json_dumps
from gancourse.toy import ToyConfig, ToyGAN, plain_gan

# Tiny networks so that each run takes a fraction of a second.
TINY = ["--batch-size", "32", "--g-hidden", "16,16", "--d-hidden", "16,16", "--z-dim", "4", "--no-progress"]
RING = ["toy", "--data", "ring8", "--steps", "30", "--n-eval", "200", "--seed", "3", *TINY]


def run_json(capsys, argv) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def without_time(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "seconds"}


def exit_code(argv) -> int:
    """The exit status of ``gancourse argv``: argparse raises SystemExit, library errors are returned."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


# --- toy ---------------------------------------------------------------------------------------


def test_toy_json_has_metrics_and_is_deterministic(capsys):
    first = run_json(capsys, [*RING, "--json"])
    assert {"data", "seed", "modes", "hq", "reverse_kl", "counts", "steps", "seconds"} <= set(first)
    assert first["data"] == "ring8" and first["seed"] == 3 and first["steps"] == 30
    assert isinstance(first["modes"], int) and 0 <= first["modes"] <= 8
    assert 0.0 <= first["hq"] <= 1.0
    assert first["seconds"] >= 0
    second = run_json(capsys, [*RING, "--json"])
    assert without_time(first) == without_time(second)
    other = run_json(capsys, [*RING, "--json", "--seed", "4"])
    assert other["seed"] == 4


def test_toy_matches_the_library(capsys):
    result = run_json(capsys, [*RING, "--json"])
    cfg = ToyConfig(data="ring8", steps=30, n_eval=200, seed=3, batch_size=32, g_hidden=(16, 16),
                    d_hidden=(16, 16), z_dim=4)
    expected = json.loads(json_dumps(ToyGAN(cfg).run(progress=False)))  # strict JSON: inf -> null
    assert without_time(result) == {"data": "ring8", "seed": 3, **without_time(expected)}


@pytest.mark.parametrize("data, keys", [("gaussian", {"w1"}), ("two_moons", {"energy", "sliced_w1"})])
def test_toy_other_datasets(capsys, data, keys):
    argv = ["toy", "--data", data, "--steps", "10", "--n-eval", "200", *TINY, "--json"]
    result = run_json(capsys, argv)
    assert keys <= set(result) and result["steps"] == 10


def test_toy_table_output(capsys):
    assert main([*RING, "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ring8, seed 3: 5 steps in ")
    for label in ("modes", "HQ", "reverse KL"):
        assert f"\n  {label} " in out
    assert re.search(r"modes +\d of 8 ", out)  # the count is given out of the dataset's modes
    assert "(the data itself: 98.9%)" in out  # HQ beside what a perfect sampler scores
    assert "counts" not in out  # lists are left out of the table


def test_samples_out_default_n_eval(tmp_path, capsys):
    out = tmp_path / "sub" / "x.npy"  # parent folder is created
    argv = ["toy", "--data", "ring8", "--steps", "3", *TINY, "--json", "--samples-out", str(out)]
    result = run_json(capsys, argv)
    samples = np.load(out)
    assert samples.shape == (ToyConfig().n_eval, 2)
    assert samples.dtype == np.float64 and np.isfinite(samples).all()
    assert result["steps"] == 3


def test_samples_out_small_n_eval(tmp_path, capsys):
    out = tmp_path / "x.npy"
    run_json(capsys, [*RING, "--steps", "5", "--json", "--samples-out", str(out)])
    assert np.load(out).shape == (200, 2)


def test_flags_map_onto_config(tmp_path, capsys):
    ck = tmp_path / "c.npz"
    argv = ["toy", "--data", "two_moons", "--steps", "4", *TINY, "--loss", "hinge", "--penalty", "wgan-gp",
            "--gamma", "1", "--optimizer", "rmsprop", "--lr-g", "0.002", "--spectral-norm", "--n-critic", "2",
            "--ema", "0", "--dtype", "float64", "--checkpoint", str(ck), "--json"]
    run_json(capsys, argv)
    cfg = ToyGAN.load(ck).config
    assert cfg == ToyConfig(data="two_moons", steps=4, batch_size=32, g_hidden=(16, 16), d_hidden=(16, 16), z_dim=4,
                            loss="hinge", penalty="wgan-gp", gamma=1.0, optimizer="rmsprop", lr_g=0.002,
                            spectral_norm=True, n_critic=2, ema=0.0, dtype="float64")


def test_preset_plain(tmp_path, capsys):
    ck = tmp_path / "plain.npz"
    argv = ["toy", "--preset", "plain", "--data", "grid25", "--steps", "10", "--n-eval", "200", *TINY,
            "--json", "--checkpoint", str(ck)]
    result = run_json(capsys, argv)
    assert {"modes", "hq", "reverse_kl", "steps", "seconds"} <= set(result)
    assert result["data"] == "grid25" and result["steps"] == 10
    cfg = ToyGAN.load(ck).config
    assert cfg == plain_gan("grid25", steps=10, n_eval=200, batch_size=32, g_hidden=(16, 16), d_hidden=(16, 16),
                            z_dim=4)
    assert cfg.penalty == "none"
    # flags override the preset
    ck2 = tmp_path / "plain2.npz"
    run_json(capsys, [*argv[:-1], str(ck2), "--lr-g", "0.0005"])
    assert ToyGAN.load(ck2).config.lr_g == 0.0005


def test_checkpoint_then_resume_continues_exactly(tmp_path, capsys):
    # The schedule horizon (linear lr decay, instance-noise annealing) is config.steps, so a run extended
    # with --resume --steps only matches a longer uninterrupted run when nothing depends on the horizon.
    common = [*RING, "--lr-schedule", "constant", "--instance-noise", "0"]
    ck = tmp_path / "ck" / "run.npz"
    half = run_json(capsys, [*common, "--steps", "20", "--json", "--checkpoint", str(ck)])
    assert half["steps"] == 20 and ck.is_file()
    assert sorted(p.name for p in ck.parent.iterdir()) == ["run.npz"]
    resumed = run_json(capsys, ["toy", "--resume", str(ck), "--steps", "40", "--json", "--no-progress"])
    full = run_json(capsys, [*common, "--steps", "40", "--json"])
    assert resumed["steps"] == 40
    assert without_time(resumed) == without_time(full)


def test_resume_without_steps_uses_the_checkpoint_config(tmp_path, capsys):
    ck = tmp_path / "run.npz"
    full = run_json(capsys, [*RING, "--steps", "12", "--json"])
    gan = ToyGAN(ToyConfig(data="ring8", steps=12, n_eval=200, seed=3, batch_size=32, g_hidden=(16, 16),
                           d_hidden=(16, 16), z_dim=4))
    gan.train(6, progress=False)
    gan.save(ck)
    samples = tmp_path / "s.npy"
    resumed = run_json(capsys, ["toy", "--resume", str(ck), "--json", "--no-progress", "--samples-out", str(samples)])
    assert without_time(resumed) == without_time(full)
    assert np.load(samples).shape == (200, 2)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--loss", "nope"], r"argument --loss: invalid choice: 'nope'"),
        (["--data", "nope"], r"argument --data: invalid choice: 'nope'"),
        (["--g-hidden", "abc"], r"argument --g-hidden: expected comma-separated integers like 128,128, got 'abc'"),
        (["--d-hidden", "16,0"], r"argument --d-hidden: expected positive widths"),
        (["--steps", "ten"], r"argument --steps: invalid int value: 'ten'"),
        (["--lr-g", "0"], r"gancourse toy: error: lr_g must be a finite number > 0, got 0.0"),
        (["--lr-d", "-1"], r"lr_d must be a finite number > 0"),
        (["--label-smoothing", "2"], r"label_smoothing"),
        (["--penalty", "r1", "--gamma", "0"], r"penalty 'r1' needs a positive weight"),
        (["--penalty", "r1", "--minibatch-discrimination", "4"], r"minibatch discrimination"),
    ],
)
def test_bad_flags_exit_2_with_a_message(capsys, extra, message):
    import re

    assert exit_code([*RING, *extra]) == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.err), captured.err
    assert captured.out == ""


def test_missing_command_and_missing_checkpoint(tmp_path, capsys):
    assert exit_code([]) == 2
    assert "required" in capsys.readouterr().err
    assert exit_code(["toy", "--resume", str(tmp_path / "nope.npz"), "--no-progress"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_help_has_a_flag_for_every_config_field(capsys):
    import dataclasses

    assert exit_code(["toy", "--help"]) == 0
    out = capsys.readouterr().out
    flags = [f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(ToyConfig)]
    for flag in (*flags, "--preset", "--resume", "--checkpoint", "--samples-out", "--json"):
        assert flag in out, flag


# --- the real command --------------------------------------------------------------------------


def _command_env() -> dict:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    return env


def test_python_m_and_console_script_agree(capsys):
    argv = [*RING, "--json"]
    module = subprocess.run([sys.executable, "-m", "gancourse", *argv], capture_output=True, text=True,
                            env=_command_env(), timeout=120)
    assert module.returncode == 0, module.stderr
    from_module = json.loads(module.stdout)

    script = shutil.which("gancourse")
    assert script is not None, "the gancourse console script is not on PATH (pip install -e .)"
    cli = subprocess.run([script, *argv], capture_output=True, text=True, env=_command_env(), timeout=120)
    assert cli.returncode == 0, cli.stderr
    from_script = json.loads(cli.stdout)

    assert {"modes", "hq", "reverse_kl", "steps", "seconds"} <= set(from_module)
    assert without_time(from_module) == without_time(from_script)
    # and the same as in this process
    assert without_time(from_module) == without_time(run_json(capsys, argv))


def test_python_m_bad_flag_exit_status():
    bad = subprocess.run([sys.executable, "-m", "gancourse", *RING, "--lr-g", "0"], capture_output=True,
                         text=True, env=_command_env(), timeout=120)
    assert bad.returncode == 2
    assert "lr_g must be a finite number > 0" in bad.stderr
    assert "Traceback" not in bad.stderr


# --- demo --------------------------------------------------------------------------------------


def test_demo_writes_figures_and_prints_published_rows(tmp_path, capsys):
    assert main(["demo", "--steps", "40", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PacGAN" in out and "VEEGAN" in out
    assert "gancourse recipe (seed 0)" in out
    for name in ("samples.png", "losses.png", "training.gif", "metrics.json"):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "training.gif").read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"modes", "hq", "reverse_kl", "steps"} <= set(metrics)
    assert metrics["steps"] == 40 and metrics["data"] == "grid25"


def test_demo_data_and_preset_flags(tmp_path, capsys):
    assert main(["demo", "--data", "ring8", "--preset", "plain", "--steps", "5", "--no-gif", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Training the plain GAN on ring8" in out and "PacGAN" not in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"] == "ring8" and metrics["preset"] == "plain" and metrics["steps"] == 5
    assert not (tmp_path / "training.gif").exists()
    for bad in (["--data", "grid26"], ["--preset", "best"]):
        with pytest.raises(SystemExit) as exc:
            main(["demo", *bad, "--out", str(tmp_path / "never")])
        assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_version_is_the_packages(capsys):
    import tomllib
    from pathlib import Path

    expected = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gancourse {expected}"
