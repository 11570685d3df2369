"""Wall time of a seed sweep: the runs one after another in this process vs ``sweep(..., jobs=N)``; prints JSON.

    python benchmarks/sweep_speedup.py                           # grid25, 2000 steps, seeds 0-4, jobs 2
    python benchmarks/sweep_speedup.py --steps 500 --seeds 0-3 --jobs 4 --repeats 1
    python benchmarks/sweep_speedup.py --cli --steps 0 --repeats 1   # the commands a user types, full recipe

With ``--cli`` both sides are the commands themselves, run as subprocesses: ``gancourse toy --seed S --json`` for
each seed, one after another, against one ``gancourse toy --seeds ... --jobs N --json`` (``--steps 0``: the
recipe's own length). That is what a user waits for, interpreter start-up and imports included.

Sequential and parallel measurements alternate (sequential, parallel, sequential, parallel, ...) so that a
change in the machine's load affects both alike; the JSON gives each time, the ratio of the medians, and
whether the parallel results equal the sequential ones exactly (everything but ``seconds``). With 5 equal runs
on 2 workers the best possible ratio is 3/5 = 0.6 (three rounds of runs instead of five). Timings are recorded
in the docs, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from gancourse.toy import ToyGAN, recommended
from gancourse.toy.sweep import parse_seeds, seed_configs, sweep


def _metrics(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "seconds"}


def _toy(*argv: str) -> list[dict]:
    """Run ``gancourse toy ... --json`` in a subprocess; its results as a list (one dict per run)."""
    out = subprocess.run([sys.executable, "-m", "gancourse", "toy", *argv, "--json", "--no-progress"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return data if isinstance(data, list) else [data]


def _cli_pair(args, seeds: list[int]) -> tuple[float, float, bool]:
    size = ["--data", args.data] + (["--steps", str(args.steps)] if args.steps else [])
    t0 = time.perf_counter()
    one_by_one = [r for s in seeds for r in _toy(*size, "--seed", str(s))]
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    side_by_side = _toy(*size, "--seeds", ",".join(map(str, seeds)), "--jobs", str(args.jobs))
    par = time.perf_counter() - t0
    return seq, par, [_metrics(r) for r in one_by_one] == [_metrics(r) for r in side_by_side]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="grid25")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="sequential/parallel pairs")
    ap.add_argument("--start-method", default=None, choices=["forkserver", "spawn"])
    ap.add_argument("--cli", action="store_true", help="time the gancourse commands themselves (subprocesses)")
    args = ap.parse_args()

    configs = seed_configs(recommended(args.data, **({"steps": args.steps} if args.steps else {})),
                           parse_seeds(args.seeds))
    load_before = os.getloadavg()
    sequential, parallel, identical = [], [], True
    for _ in range(args.repeats):
        if args.cli:
            seq, par, same = _cli_pair(args, parse_seeds(args.seeds))
            sequential.append(seq)
            parallel.append(par)
            identical &= same
            continue
        t0 = time.perf_counter()
        one_by_one = [{"data": c.data, "seed": c.seed, **ToyGAN(c).run(progress=False)} for c in configs]
        sequential.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        side_by_side = sweep(configs, jobs=args.jobs, progress=False, start_method=args.start_method)
        parallel.append(time.perf_counter() - t0)
        identical &= [_metrics(r) for r in one_by_one] == [_metrics(r) for r in side_by_side]
    seq, par = statistics.median(sequential), statistics.median(parallel)
    print(json.dumps({
        "mode": "commands (subprocesses)" if args.cli else "in-process",
        "data": args.data,
        "steps": configs[0].steps,
        "seeds": parse_seeds(args.seeds),
        "jobs": args.jobs,
        "start_method": args.start_method or "default (forkserver where available)",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "sequential_s": [round(t, 2) for t in sequential],
        "parallel_s": [round(t, 2) for t in parallel],
        "ratio_parallel_to_sequential": round(par / seq, 3),
        "best_possible_ratio": round(-(-len(configs) // args.jobs) / len(configs), 3),
        "per_run_seconds_last_parallel": None if args.cli else [r["seconds"] for r in side_by_side],
        "results_identical": identical,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
    }, indent=1))


if __name__ == "__main__":
    main()
