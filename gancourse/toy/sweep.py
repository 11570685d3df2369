"""Independent toy GAN runs (seeds, configs) trained side by side in worker processes.

:func:`sweep` trains each :class:`~gancourse.toy.config.ToyConfig` with ``ToyGAN(config).run()`` in a pool of
at most ``jobs`` worker processes, each on one BLAS thread, and returns the results in the order of the
configs, bit-identical to running them one after another in this process (only ``seconds`` differs).
:func:`parse_seeds` reads a seed list such as ``"0-4"`` or ``"0,2,5-6"``, :func:`seed_configs` makes one config
per seed, and :func:`format_sweep` prints the results as a table.

Workers start with ``forkserver`` where the platform has it (else ``spawn``), never with a bare ``fork``: a
process that holds BLAS threads is not safe to fork. The fork server imports the trainer once, so a worker
starts in milliseconds after the first sweep of a session.

>>> from gancourse.toy.config import recommended
>>> results = sweep(seed_configs(recommended("grid25", steps=20, n_eval=100), parse_seeds("0-1")), jobs=1)
>>> [(r["data"], r["seed"], r["steps"]) for r in results]
[('grid25', 0, 20), ('grid25', 1, 20)]
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from gancourse.errors import check_choice, check_positive_int
from gancourse.io import check_output_path
from gancourse.toy.config import ToyConfig
from gancourse.toy.trainer import ToyGAN, smoke_mode
from gancourse.toy.report import format_mean_std, mean_std

__all__ = [
    "SweepError", "parse_seeds", "seed_configs", "sweep", "default_jobs", "format_sweep", "START_METHODS", "ON_ERROR",
]

#: start methods a sweep may use: both start clean worker processes (``fork`` is left out on purpose)
START_METHODS = ("forkserver", "spawn")
#: what :func:`sweep` does when a run fails
ON_ERROR = ("raise", "record")
#: environment that workers start with, so that their BLAS creates no thread pool they would not use
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: a worker reports its progress every this many steps
PROGRESS_EVERY = 100
#: the most seeds :func:`parse_seeds` expands to (a typo such as "0-1000000000" must not fill the memory)
MAX_SEEDS = 10_000

_SEEDS_FORMS = ("write seeds as N, A-B (A <= B, both ends included) or a comma-separated list of these, "
                "e.g. '0-4' or '0,2,5-6'")


class SweepError(RuntimeError):
    """Some runs of a sweep failed; every other run finished, and ``results`` holds them all in order.

    ``results[i]`` is the result of ``configs[i]``, an error record (see :func:`sweep`) for the runs listed in
    ``failed``.
    """

    def __init__(self, results: list[dict], failed: list[int]):
        self.results = results
        self.failed = failed
        lines = [f"  run {i} (data {results[i]['data']}, seed {results[i]['seed']}): {results[i]['error']}"
                 for i in failed]
        super().__init__(f"{len(failed)} of {len(results)} runs failed (the others finished; their results are "
                         f"in this error's .results, or pass on_error='record'):\n" + "\n".join(lines))


# ------------------------------------------------------------------------------------------ seeds


def parse_seeds(text: str) -> list[int]:
    """The seeds that ``text`` lists, in its order: ``"0-4"`` -> [0, 1, 2, 3, 4], ``"0,2,5-6"`` -> [0, 2, 5, 6].

    Seeds are non-negative integers; a range ``A-B`` includes both ends; spaces around items are ignored. Empty
    text, a reversed range, a negative or non-integer seed, and a seed listed twice raise a ``ValueError``.
    """
    if not isinstance(text, str):
        raise TypeError(f"seeds must be given as text such as '0-4', got {type(text).__name__}")
    seeds: list[int] = []
    if not text.strip():
        raise ValueError(f"no seeds given ({text!r}); {_SEEDS_FORMS}")
    for item in text.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item, flags=re.ASCII)
        if m is None:
            negative = re.fullmatch(r"[\d\s-]+", item) and re.search(r"(^|-)\s*-\s*\d", item)
            problem = ("an empty item (two commas in a row, or one at an end)" if not item
                       else f"{item!r} has a negative seed" if negative
                       else f"{item!r} is not a seed or a range of seeds")
            raise ValueError(f"seeds {text!r}: {problem}; {_SEEDS_FORMS}")
        lo = int(m[1])
        hi = lo if m[2] is None else int(m[2])
        if hi < lo:
            raise ValueError(f"seeds {text!r}: the range {item!r} runs backwards (did you mean {hi}-{lo}?); "
                             f"{_SEEDS_FORMS}")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise ValueError(f"seeds {text!r}: more than {MAX_SEEDS} seeds; a sweep this large is most likely a typo")
        seeds.extend(range(lo, hi + 1))
    twice = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if twice:
        raise ValueError(f"seeds {text!r}: {', '.join(map(str, twice))} listed more than once; each seed runs once")
    return seeds


def seed_configs(config: ToyConfig, seeds: Iterable[int]) -> list[ToyConfig]:
    """``config`` once per seed: ``[config.replace(seed=s) for s in seeds]``."""
    if not isinstance(config, ToyConfig):
        raise TypeError(f"config must be a ToyConfig, got {type(config).__name__}")
    return [config.replace(seed=s) for s in seeds]


# ---------------------------------------------------------------------------------------- one run


def _error_record(cfg: ToyConfig, exc: BaseException, steps: int, seconds: float) -> dict:
    """The result of a run that raised ``exc`` after ``steps`` steps."""
    return {"data": cfg.data, "seed": cfg.seed, "error": f"{type(exc).__name__}: {exc}",
            "error_type": type(exc).__name__, "steps": steps, "seconds": round(seconds, 2),
            "traceback": "".join(traceback.format_exception(exc))}


def _run_one(cfg: ToyConfig, samples: bool, checkpoint: str | None, report: Callable[[int], None]) -> dict:
    """``ToyGAN(cfg).run()`` as ``gancourse toy --json`` reports it; an exception becomes an error record.

    ``report(n)`` is told of every ``n`` steps done (every :data:`PROGRESS_EVERY` steps, and the rest at the end).
    """
    t0 = time.perf_counter()
    done = [0]

    def tell(gan: ToyGAN) -> None:
        report(gan.step - done[0])
        done[0] = gan.step

    gan = None
    try:
        # cfg.threads BLAS threads for the final evaluation too (ToyGAN.train limits only the training loop)
        with threadpool_limits(limits=cfg.threads, user_api="blas"):
            gan = ToyGAN(cfg)
            result = {"data": cfg.data, "seed": cfg.seed,
                      **gan.run(progress=False, callbacks=[tell], callback_every=PROGRESS_EVERY)}
            if samples:
                result["samples"] = gan.sample(cfg.n_eval)  # (n_eval, dim) float64: the samples the metrics used
    except Exception as exc:  # noqa: BLE001 - one failed run must not lose the others; the record names it
        result = _error_record(cfg, exc, gan.step if gan is not None else 0, time.perf_counter() - t0)
    else:
        if checkpoint is not None:
            try:
                gan.save(checkpoint)
            except (OSError, ValueError) as exc:  # the run keeps its metrics, and fails for the missing file
                failure = _error_record(cfg, exc, gan.step, time.perf_counter() - t0)
                result.update({k: failure[k] for k in ("error", "error_type", "traceback")})
    report(cfg.steps - done[0])  # a failed run counts as done for the progress bar
    return result


# ----------------------------------------------------------------------------------------- workers


def _worker(cfg: ToyConfig, samples: bool, checkpoint: str | None, conn) -> None:
    """A worker process: one run; sends the number of steps done as it goes (ints), then the result (a dict)."""
    from tqdm import tqdm

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it terminates the workers
    # the trainer's (disabled) bar would create tqdm's multiprocessing lock, a named semaphore that a terminated
    # worker leaves to the resource tracker to clean up, with a warning; a thread lock serves a worker as well
    tqdm.set_lock(threading.RLock())
    conn.send(_run_one(cfg, samples, checkpoint, conn.send))
    conn.close()


def _blas_threads() -> list[tuple[str, int]]:
    """``(library, threads)`` for each BLAS/OpenMP pool of this process (for tests)."""
    from threadpoolctl import threadpool_info

    return [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards (processes started meanwhile inherit them).

    Changes this process's environment for a moment: meant for the few lines that start a worker.
    """
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _context(start_method: str | None) -> multiprocessing.context.BaseContext:
    """The multiprocessing context: ``forkserver`` (preloading this module) where available, else ``spawn``."""
    if start_method is None:
        start_method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(check_choice("start_method", start_method, START_METHODS))
    if start_method == "forkserver":
        from multiprocessing import forkserver

        # keep what the server preloads already (CPython's default: ["__main__"]) and add this module
        preload = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
        if __name__ not in preload:
            ctx.set_forkserver_preload([*preload, __name__])  # takes effect when the server (re)starts
    return ctx


def _died(exitcode: int | None) -> RuntimeError:
    """The error recorded for a worker that exited without sending its result."""
    how = f"exit code {exitcode}"
    if exitcode is not None and exitcode < 0:
        how = f"signal {signal.Signals(-exitcode).name}" if -exitcode in signal.valid_signals() else how
        if exitcode == -signal.SIGKILL:
            how += ": killed, perhaps by the system for lack of memory"
    return RuntimeError(f"the worker process running it stopped without a result ({how})")


def default_jobs(n_runs: int) -> int:
    """The CPUs this process may use (``os.sched_getaffinity``, else ``os.cpu_count()``), at most ``n_runs``."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, n_runs))


def _checkpoint_paths(template: str | os.PathLike | None, configs: Sequence[ToyConfig]) -> list[str | None]:
    """``template`` formatted for each run with ``{index}`` and the config's fields; distinct, writable paths."""
    if template is None:
        return [None] * len(configs)
    paths = []
    for i, cfg in enumerate(configs):
        fields = {**cfg.to_dict(), "index": i}
        try:
            paths.append(str(template).format(**fields))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"checkpoints template {str(template)!r} cannot be filled in ({exc!r}); it may use "
                             f"{{index}} and the config fields {{{'}, {'.join(sorted(cfg.to_dict()))}}}") from None
    seen: dict[str, int] = {}
    for i, p in enumerate(paths):
        key = os.path.realpath(p)
        if key in seen:
            raise ValueError(f"checkpoints template {str(template)!r} gives runs {seen[key]} and {i} the same file "
                             f"{p}; put {{index}} (or the fields in which they differ, e.g. {{seed}}) in it")
        seen[key] = i
        check_output_path(p, what="checkpoint")
    return paths


# ------------------------------------------------------------------------------------------- sweep


def sweep(
    configs: Sequence[ToyConfig],
    jobs: int | None = None,
    progress: bool | None = None,
    *,
    on_error: str = "raise",
    samples: bool = False,
    checkpoints: str | os.PathLike | None = None,
    start_method: str | None = None,
) -> list[dict]:
    """Train every config with ``ToyGAN(config).run()``, at most ``jobs`` at a time; results in config order.

    Each result is ``{"data", "seed", **run()}`` as ``gancourse toy --json`` prints it (the metrics, ``steps``,
    ``seconds``), with ``"samples"`` (n_eval, dim) float64 (the samples the metrics were computed on) if
    ``samples``. Results are bit-identical to running the configs one after another in this process; only
    ``seconds`` differs.

    - ``jobs``: worker processes (default: this process's CPUs, at most ``len(configs)``); with one, the runs
      train here, one after another, with no pool. Each worker uses ``config.threads`` BLAS threads (default 1).
    - ``progress``: one bar for all runs (steps summed) on stderr; ``None`` shows it except in smoke mode.
    - ``on_error``: a run that raises (e.g. ``TrainingDiverged``) never stops the others. Its result is an
      error record ``{"data", "seed", "error": "<type>: <message>", "error_type", "steps" (steps done),
      "seconds", "traceback"}``; with ``"raise"`` (default) :class:`SweepError` is raised once every run has
      finished, holding all results, with ``"record"`` the records are returned among the results.
    - ``checkpoints``: a path template such as ``"runs/{data}_seed{seed}.npz"``, filled in with ``{index}`` and
      the config's fields; each finished run saves its checkpoint there (``ToyGAN.load`` resumes it). A run
      whose checkpoint cannot be written keeps its metrics and gets the ``"error"`` entries of a failed run.
    - ``start_method``: ``"forkserver"`` (default where available) or ``"spawn"``.

    Ctrl-C (KeyboardInterrupt) terminates the workers, waits for them to exit, and is raised again.
    """
    if isinstance(configs, (ToyConfig, str, bytes)) or not isinstance(configs, Iterable):
        raise TypeError(f"configs must be a sequence of ToyConfig, got {type(configs).__name__}"
                        + (" (pass [config] for one run)" if isinstance(configs, ToyConfig) else ""))
    configs = list(configs)
    if not configs:
        raise ValueError("configs is empty: give at least one ToyConfig to run")
    for i, cfg in enumerate(configs):
        if not isinstance(cfg, ToyConfig):
            raise TypeError(f"configs[{i}] must be a ToyConfig, got {type(cfg).__name__} {cfg!r:.60}")
    check_choice("on_error", on_error, ON_ERROR)
    if not isinstance(samples, bool):
        raise TypeError(f"samples must be True or False, got {samples!r}")
    jobs = default_jobs(len(configs)) if jobs is None else min(check_positive_int("jobs", jobs), len(configs))
    paths = _checkpoint_paths(checkpoints, configs)
    if start_method is not None:
        check_choice("start_method", start_method, START_METHODS)
    ctx = None if jobs == 1 else _context(start_method)

    from tqdm.auto import tqdm

    show = (not smoke_mode()) if progress is None else bool(progress)
    bar = tqdm(total=sum(c.steps for c in configs), desc=f"{len(configs)} runs", unit="step", file=sys.stderr,
               disable=not show, mininterval=1.0, leave=False)
    results: list[dict | None] = [None] * len(configs)
    with bar:
        if ctx is None:
            for i, cfg in enumerate(configs):
                results[i] = _run_one(cfg, samples, paths[i], bar.update)
                bar.set_postfix_str(f"{i + 1}/{len(configs)} runs done", refresh=False)
        else:
            _run_pool(ctx, configs, jobs, samples, paths, results, bar)
    failed = [i for i, r in enumerate(results) if "error" in r]
    if failed and on_error == "raise":
        raise SweepError(results, failed)
    return results


def _receive(reader, bar) -> dict | int:
    """Read what a worker has sent: its result (a dict) if it came, else the number of steps it reported.

    Raises ``EOFError`` when the worker's pipe ended without a result (the worker died).
    """
    steps = 0
    while reader.poll():
        message = reader.recv()
        if not isinstance(message, int):
            return message
        bar.update(message)
        steps += message
    return steps


def _run_pool(ctx, configs: list[ToyConfig], jobs: int, samples: bool, paths: list[str | None],
              results: list[dict | None], bar) -> None:
    """Fill ``results`` with one worker process per run, ``jobs`` at a time, feeding ``bar`` with their steps.

    A fresh process per run (milliseconds with the fork server) isolates the runs: a worker that dies loses
    only its own run, which is recorded as failed. Each worker talks to this process through its own pipe.
    """
    # longest runs first: the last worker to finish then waits on a short run (results keep the configs' order)
    todo = sorted(range(len(configs)), key=lambda i: -configs[i].steps)[::-1]
    running: dict = {}  # this process's end of a worker's pipe -> [run index, process, steps reported, start time]
    try:
        while todo or running:
            while todo and len(running) < jobs:
                i = todo.pop()
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(configs[i], samples, paths[i], writer),
                                   name=f"gancourse-sweep-{i}", daemon=True)
                running[reader] = [i, proc, 0, time.perf_counter()]
                with _environment(WORKER_ENV):  # inherited by a spawned worker (and by the fork server it starts)
                    proc.start()
                writer.close()  # the worker holds the other end: when it exits, the pipe ends
            for reader in multiprocessing.connection.wait(list(running), timeout=1.0):
                i, proc, steps, t0 = run = running[reader]
                try:
                    message = _receive(reader, bar)
                except (EOFError, OSError):
                    proc.join()
                    bar.update(configs[i].steps - steps)
                    message = _error_record(configs[i], _died(proc.exitcode), steps, time.perf_counter() - t0)
                if isinstance(message, int):
                    run[2] += message
                    continue
                results[i] = message
                del running[reader]
                reader.close()
                proc.join()
                bar.set_postfix_str(f"{sum(r is not None for r in results)}/{len(configs)} runs done", refresh=False)
    except BaseException:  # Ctrl-C, or an error here: leave no worker behind
        started = [proc for _, proc, _, _ in running.values() if proc.pid is not None]
        for proc in started:
            proc.terminate()
        for proc in started:
            proc.join()
        for reader in running:
            reader.close()
        raise


# ------------------------------------------------------------------------------------------ report


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else "inf" if value == float("inf") else format(value, fmt)


#: (result key, column title, format, scale) of the metric columns of :func:`format_sweep`
_COLUMNS = (("modes", "modes", "g", 1), ("hq", "HQ %", ".1f", 100), ("reverse_kl", "reverse KL", ".3f", 1),
            ("w1", "W1", ".4f", 1), ("energy", "energy", ".4f", 1), ("sliced_w1", "sliced W1", ".4f", 1))


def format_sweep(results: Sequence[Mapping[str, Any]]) -> str:
    """A text table of :func:`sweep` results, one row per run, then a row of mean ± std over finished runs.

    Columns: data, seed, modes, HQ %, reverse KL (and W1, energy, sliced W1 where a dataset has them), steps,
    seconds. A failed run's row gives its error instead of metrics.
    """
    if isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty list of sweep() results")
    for i, r in enumerate(results):
        if not isinstance(r, Mapping) or "data" not in r or "seed" not in r:
            raise TypeError(f"results[{i}] is not a sweep() result (a dict with 'data' and 'seed'), got {r!r:.60}")
    cols = [c for c in _COLUMNS if c[0] in ("modes", "hq", "reverse_kl") or any(c[0] in r for r in results)]
    w_data = max(4, *(len(str(r["data"])) for r in results))
    w_seed = max(4, *(len(str(r["seed"])) for r in results))
    header = (f"{'data':<{w_data}}  {'seed':>{w_seed}}  " + "  ".join(f"{t:>15}" for _, t, _, _ in cols)
              + f"  {'steps':>7}  {'seconds':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        start = f"{r['data']:<{w_data}}  {r['seed']:>{w_seed}}  "
        if "error" in r:
            lines.append(start + f"failed after {r.get('steps', 0)} steps: {r['error']}")
            continue
        cells = [_cell(None if r.get(k) is None else r[k] * s, f) for k, _, f, s in cols]
        lines.append(start + "  ".join(f"{c:>15}" for c in cells) + f"  {r['steps']:>7}  {r['seconds']:>8.2f}")
    done = [r for r in results if "error" not in r]
    if done:
        cells = []
        for k, _, f, s in cols:
            mean, std = mean_std(r[k] * s for r in done if r.get(k) is not None)
            cells.append("-" if mean is None else format_mean_std(mean, std, ".1f" if f == "g" else f))
        label = f"mean ± std ({len(done)} of {len(results)} runs)" if len(done) < len(results) else "mean ± std"
        lines += ["-" * len(header), f"{label:<{w_data + w_seed + 2}}  " + "  ".join(f"{c:>15}" for c in cells)]
    return "\n".join(lines)
