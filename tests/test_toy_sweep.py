"""Sweeps of toy GAN runs in worker processes: seed lists, bit-identical parallel results, errors, Ctrl-C, the table."""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from gancourse.toy import ToyGAN, plain_gan, recommended
from gancourse.toy.sweep import (
    MAX_SEEDS,
    WORKER_ENV,
    SweepError,
    _blas_threads,
    _context,
    _environment,
    format_sweep,
    parse_seeds,
    seed_configs,
    sweep,
)

TINY = recommended("grid25", steps=30, n_eval=200, g_hidden=(16, 16), d_hidden=(16, 16))
#: diverges to inf within a few steps
DIVERGES = plain_gan("grid25", steps=30, n_eval=200, g_hidden=(16, 16), d_hidden=(16, 16), optimizer="sgd",
                     lr_g=1e3, lr_d=1e3)


def _metrics(result: dict) -> dict:
    """A result without the wall-clock time and the samples (compared separately)."""
    return {k: v for k, v in result.items() if k not in ("seconds", "samples")}


# --- seeds -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, seeds", [
    ("0-4", [0, 1, 2, 3, 4]), ("0,2,5-6", [0, 2, 5, 6]), ("7", [7]), (" 3 , 1 - 2 ", [3, 1, 2]), ("5-5", [5]),
])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, problem", [
    ("", r"no seeds given"), ("  ", r"no seeds given"), ("4-0", r"runs backwards \(did you mean 0-4\?\)"),
    ("a", r"'a' is not a seed or a range"), ("1.5", r"not a seed"), ("2-", r"not a seed"),
    ("-1", r"'-1' has a negative seed"), ("0--2", r"negative"), ("0,,1", r"an empty item"), ("1,", r"empty item"),
])
def test_parse_seeds_names_the_problem_and_the_accepted_forms(text, problem):
    with pytest.raises(ValueError, match=problem) as info:
        parse_seeds(text)
    assert "write seeds as N, A-B" in str(info.value) and "'0,2,5-6'" in str(info.value)


def test_parse_seeds_refuses_duplicates_huge_ranges_and_non_text():
    with pytest.raises(ValueError, match=r"seeds '0-3,2,3': 2, 3 listed more than once"):
        parse_seeds("0-3,2,3")
    with pytest.raises(ValueError, match=rf"more than {MAX_SEEDS} seeds"):
        parse_seeds("0-1000000000")
    with pytest.raises(TypeError, match=r"as text such as '0-4', got int"):
        parse_seeds(3)


def test_seed_configs_changes_only_the_seed():
    cfgs = seed_configs(TINY, parse_seeds("2,0"))
    assert [c.seed for c in cfgs] == [2, 0] and all(c.replace(seed=0) == TINY for c in cfgs)
    with pytest.raises(TypeError, match="config must be a ToyConfig"):
        seed_configs({"data": "grid25"}, [0])


# --- results ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_parallel_results_are_bit_identical_to_sequential_and_direct_runs_in_order(start_method):
    configs = [TINY.replace(seed=1), TINY.replace(data="ring8", steps=40), TINY.replace(seed=0, steps=20)]
    direct = [{"data": c.data, "seed": c.seed, **ToyGAN(c).run(progress=False)} for c in configs]
    one = sweep(configs, jobs=1, samples=True)
    two = sweep(configs, jobs=2, samples=True, start_method=start_method)
    assert multiprocessing.active_children() == []
    assert [_metrics(r) for r in one] == [_metrics(r) for r in two] == [_metrics(r) for r in direct]
    assert [(r["data"], r["seed"], r["steps"]) for r in two] == [("grid25", 1, 30), ("ring8", 0, 40), ("grid25", 0, 20)]
    for c, a, b in zip(configs, one, two):
        assert a["samples"].shape == (c.n_eval, 2) and a["samples"].dtype == np.float64
        assert np.array_equal(a["samples"], b["samples"])
    trained = ToyGAN(configs[0])  # the samples are those of the trained generator that the metrics measured
    trained.train(progress=False)
    assert np.array_equal(two[0]["samples"], trained.sample(configs[0].n_eval))
    assert "samples" not in sweep(configs[:1], jobs=1)[0]


def test_workers_use_one_blas_thread():
    """Workers start with one BLAS thread (besides ``threadpool_limits(config.threads)`` around each run)."""
    before = {k: os.environ.get(k) for k in WORKER_ENV}
    with ProcessPoolExecutor(2, mp_context=_context(None)) as ex:
        with _environment(WORKER_ENV):  # as sweep() starts its workers
            threads = [f.result() for f in [ex.submit(_blas_threads) for _ in range(2)]]
    assert threads and all(n == 1 for pools in threads for _, n in pools), threads
    assert {k: os.environ.get(k) for k in WORKER_ENV} == before  # the parent's environment is back


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failed_run_keeps_the_others_and_is_recorded_or_raised(jobs):
    configs = [TINY, DIVERGES, TINY.replace(seed=1)]
    results = sweep(configs, jobs=jobs, on_error="record")
    good = [_metrics(r) for r in sweep([configs[0], configs[2]], jobs=1)]
    assert [_metrics(results[0]), _metrics(results[2])] == good
    bad = results[1]
    assert bad["error_type"] == "TrainingDiverged" and bad["error"].startswith("TrainingDiverged: training diverged")
    assert bad["steps"] == 3 and "Traceback" in bad["traceback"] and (bad["data"], bad["seed"]) == ("grid25", 0)
    message = r"1 of 3 runs failed.*\n  run 1 \(data grid25, seed 0\): TrainingDiverged"
    with pytest.raises(SweepError, match=message) as info:
        sweep(configs, jobs=jobs)  # on_error="raise", the default: raised after every run has finished
    assert info.value.failed == [1] and [_metrics(r) for r in info.value.results] == [_metrics(r) for r in results]
    assert multiprocessing.active_children() == []


def _workers(n: int) -> list:
    """The sweep's worker processes, once ``n`` of them run (they are this process's children)."""
    deadline = time.monotonic() + 20
    while len(found := [p for p in multiprocessing.active_children() if p.name.startswith("gancourse-sweep-")]) < n:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.02)
    return found


def _in_background(action) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def test_a_killed_worker_loses_only_its_own_run():
    long = TINY.replace(steps=20_000)  # a few seconds: killed long before it ends

    def kill_the_long_run() -> None:
        worker = next(p for p in _workers(1) if p.name == "gancourse-sweep-0")
        time.sleep(0.3)
        os.kill(worker.pid, signal.SIGKILL)

    thread = _in_background(kill_the_long_run)
    results = sweep([long, TINY.replace(seed=1)], jobs=2, on_error="record")
    thread.join()
    assert results[0]["error"] == ("RuntimeError: the worker process running it stopped without a result "
                                   "(signal SIGKILL: killed, perhaps by the system for lack of memory)")
    assert _metrics(results[1]) == _metrics(sweep([TINY.replace(seed=1)], jobs=1)[0])
    assert multiprocessing.active_children() == []


def test_ctrl_c_terminates_the_workers():
    configs = seed_configs(TINY.replace(steps=20_000), range(3))
    pids: list[int] = []

    def press_ctrl_c() -> None:
        pids.extend(p.pid for p in _workers(2))
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)

    thread = _in_background(press_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        sweep(configs, jobs=2)
    thread.join()
    assert multiprocessing.active_children() == [] and len(pids) == 2
    for pid in pids:  # gone, not just detached
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_bad_arguments_get_clear_messages():
    with pytest.raises(ValueError, match="configs is empty"):
        sweep([])
    with pytest.raises(TypeError, match=r"pass \[config\] for one run"):
        sweep(TINY)
    with pytest.raises(TypeError, match=r"configs\[1\] must be a ToyConfig, got dict"):
        sweep([TINY, {"data": "grid25"}])
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs must be a positive integer"):
            sweep([TINY], jobs=jobs)
    with pytest.raises(ValueError, match=r"unknown on_error 'ignore'; valid options are: 'raise', 'record'"):
        sweep([TINY], on_error="ignore")
    with pytest.raises(ValueError, match=r"unknown start_method 'fork'; valid options are: 'forkserver', 'spawn'"):
        sweep([TINY, TINY], jobs=2, start_method="fork")
    with pytest.raises(TypeError, match="samples must be True or False"):
        sweep([TINY], samples="yes")


# --- checkpoints -----------------------------------------------------------------------------------


def test_checkpoints_are_written_per_run_and_resume(tmp_path):
    configs = seed_configs(TINY, range(2))
    results = sweep(configs, jobs=2, checkpoints=tmp_path / "{data}_seed{seed}.npz")
    for c, r in zip(configs, results):
        gan = ToyGAN.load(tmp_path / f"grid25_seed{c.seed}.npz")
        metrics = {k: v for k, v in r.items() if k not in ("data", "seed", "steps", "seconds")}
        assert gan.step == c.steps and gan.evaluate() == metrics
    with pytest.raises(ValueError, match=r"gives runs 0 and 1 the same file .*put \{index\}"):
        sweep(configs, checkpoints=tmp_path / "{data}.npz")
    with pytest.raises(ValueError, match=r"cannot be filled in .*may use \{index\} and the config fields"):
        sweep(configs, checkpoints=tmp_path / "{nope}.npz")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"checkpoint .*file/0.npz: .*file is not a folder"):
        sweep(configs, checkpoints=tmp_path / "file" / "{seed}.npz")


# --- the table -------------------------------------------------------------------------------------


def test_format_sweep_has_a_row_per_run_and_a_mean_row():
    results = [
        {"data": "grid25", "seed": 0, "modes": 25, "hq": 0.9, "reverse_kl": 0.02, "steps": 30, "seconds": 1.5},
        {"data": "grid25", "seed": 1, "modes": 23, "hq": 0.8, "reverse_kl": 0.04, "steps": 30, "seconds": 1.25},
        {"data": "grid25", "seed": 2, "error": "TrainingDiverged: training diverged at step 3", "steps": 3},
    ]
    lines = format_sweep(results).splitlines()
    assert lines[0].split() == ["data", "seed", "modes", "HQ", "%", "reverse", "KL", "steps", "seconds"]
    assert lines[2].split() == ["grid25", "0", "25", "90.0", "0.020", "30", "1.50"]
    assert lines[3].split() == ["grid25", "1", "23", "80.0", "0.040", "30", "1.25"]
    assert lines[4].split()[:2] == ["grid25", "2"] and "failed after 3 steps: TrainingDiverged" in lines[4]
    assert lines[-1].startswith("mean ± std (2 of 3 runs)")
    assert "24.0 ± 1.0" in lines[-1] and "85.0 ± 5.0" in lines[-1] and "0.030 ± 0.010" in lines[-1]


def test_format_sweep_shows_infinite_kl_and_other_metrics():
    results = [{"data": "ring8", "seed": 0, "modes": 0, "hq": 0.0, "reverse_kl": float("inf"), "steps": 5,
                "seconds": 0.1},
               {"data": "ring8", "seed": 1, "modes": 2, "hq": 0.5, "reverse_kl": 1.0, "steps": 5, "seconds": 0.1},
               {"data": "gaussian", "seed": 0, "w1": 0.25, "steps": 5, "seconds": 0.1}]
    lines = format_sweep(results).splitlines()
    assert lines[0].split()[-3:] == ["W1", "steps", "seconds"]
    assert lines[2].split() == ["ring8", "0", "0", "0.0", "inf", "-", "5", "0.10"]
    assert lines[4].split() == ["gaussian", "0", "-", "-", "-", "0.2500", "5", "0.10"]
    assert lines[-1].split("  ")[0] == "mean ± std" and lines[-1].split()[3:] == [
        "1.0", "±", "1.0", "25.0", "±", "25.0", "inf", "0.2500", "±", "0.0000"]
    with pytest.raises(ValueError, match="non-empty list of sweep"):
        format_sweep([])
    with pytest.raises(TypeError, match=r"results\[0\] is not a sweep\(\) result"):
        format_sweep([{"modes": 3}])


# --- gancourse toy --seeds ------------------------------------------------------------------------

SMALL = ["--data", "ring8", "--steps", "30", "--n-eval", "200", "--g-hidden", "16,16", "--d-hidden", "16,16"]


def test_cli_seeds_match_the_single_runs(tmp_path, capsys):
    from gancourse.cli import main

    assert main(["toy", *SMALL, "--seeds", "0-2", "--jobs", "2", "--json",
                 "--samples-out", str(tmp_path / "s{seed}.npy"), "--checkpoint", str(tmp_path / "c{seed}.npz")]) == 0
    many = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in many] == [0, 1, 2]
    for r in many:
        assert main(["toy", *SMALL, "--seed", str(r["seed"]), "--json", "--samples-out", str(tmp_path / "one.npy")]) == 0
        one = json.loads(capsys.readouterr().out)
        assert {k: v for k, v in one.items() if k != "seconds"} == {k: v for k, v in r.items() if k != "seconds"}
        np.testing.assert_array_equal(np.load(tmp_path / f"s{r['seed']}.npy"), np.load(tmp_path / "one.npy"))
        assert ToyGAN.load(tmp_path / f"c{r['seed']}.npz").step == 30


def test_cli_seeds_table(capsys):
    from gancourse.cli import main

    assert main(["toy", *SMALL, "--seeds", "3,5", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "mean ± std" in out and re.search(r"^ring8 +3 ", out, re.M) and re.search(r"^ring8 +5 ", out, re.M)


@pytest.mark.parametrize("argv,msg", [
    (["--seeds", "0-1", "--seed", "2"], "--seed cannot be combined with --seeds"),
    (["--seeds", "0-1", "--samples-out", "x.npy"], "put {seed} in its name"),
    (["--seeds", "0-1", "--checkpoint", "x.npz"], "put {seed} in its name"),
    (["--seeds", "4-0"], "4-0"),
    (["--jobs", "2"], "--jobs sets how many runs of --seeds train at once"),
])
def test_cli_seeds_refusals(tmp_path, capsys, monkeypatch, argv, msg):
    from gancourse.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["toy", *SMALL, *argv]) == 2
    assert msg in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written
