"""Steps and single-core seconds for the toy recipe to reach its quality targets, old recipe beside new.

For every data set, seed and recipe, one run on one BLAS thread (the config's ``threads=1``), evaluated every
``--eval-every`` steps on the config's ``n_eval`` samples. Reported per run:

- ``final``: the metrics at the run's last step, exactly what ``gancourse toy --json`` prints for the config;
- ``first_step_on_target``: the first evaluation at which modes, HQ and reverse KL all meet the targets
  (None if none did); a linearly decayed run is planned for its length, so this is a step *within* that run;
- ``train_seconds``: wall time of the training steps alone (the evaluations are timed apart and left out);
- ``rescored``: the final samples are written to ``--out`` as ``.npy`` and the metrics recomputed from the
  file with ``gancourse.toy.toy_metrics``; ``rescored_equal`` says they match ``final``.

The targets: grid25, all 25 modes, HQ >= 0.90, reverse KL <= 0.05; ring8, all 8 modes, HQ >= 0.95,
reverse KL <= 0.02. Prints one JSON object.

    python benchmarks/time_to_quality.py                      # seeds 0-4, both data sets, old and new recipe
    python benchmarks/time_to_quality.py --recipes new --jobs 2 --seeds 0-1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

#: the recipe before it was shortened: 24,000 steps at lr 1e-3 and beta2 0.999 (ring8: 32,000)
OLD = {"grid25": dict(steps=24000, lr_g=1e-3, lr_d=1e-3, beta2=0.999),
       "ring8": dict(steps=32000, lr_g=1e-3, lr_d=1e-3, beta2=0.999)}
TARGETS = {"grid25": dict(modes=25, hq=0.90, reverse_kl=0.05), "ring8": dict(modes=8, hq=0.95, reverse_kl=0.02)}


def on_target(metrics: dict, data: str) -> bool:
    t = TARGETS[data]
    return metrics["modes"] >= t["modes"] and metrics["hq"] >= t["hq"] and metrics["reverse_kl"] <= t["reverse_kl"]


def config(data: str, recipe: str, seed: int):
    from gancourse.toy.config import recommended

    return recommended(data, seed=seed, **(OLD[data] if recipe == "old" else {}))


def one_run(job: tuple[str, str, int, int, str]) -> dict:
    import numpy as np

    from gancourse.toy import ToyGAN
    from gancourse.toy.metrics import toy_metrics

    data, recipe, seed, every, out = job
    cfg = config(data, recipe, seed)
    gan = ToyGAN(cfg)
    evals, eval_seconds = [], [0.0]

    def evaluate(g) -> None:
        t = time.perf_counter()
        m = g.evaluate()
        evals.append({"step": g.step, "modes": m["modes"], "hq": m["hq"], "reverse_kl": m["reverse_kl"]})
        eval_seconds[0] += time.perf_counter() - t

    t0 = time.perf_counter()
    gan.train(callbacks=[evaluate], callback_every=every, progress=False)
    train_seconds = time.perf_counter() - t0 - eval_seconds[0]
    final = gan.evaluate()  # what `gancourse toy --json` reports for this config
    path = Path(out) / f"{data}_{recipe}_seed{seed}.npy"
    samples = gan.sample(cfg.n_eval)
    np.save(path, samples)
    rescored = toy_metrics(data, np.load(path))
    first = next((e["step"] for e in evals if on_target(e, data)), None)
    return {
        "data": data, "recipe": recipe, "seed": seed, "steps": cfg.steps,
        "final": {k: final[k] for k in ("modes", "hq", "reverse_kl")},
        "final_on_target": on_target(final, data),
        "first_step_on_target": first,
        "train_seconds": round(train_seconds, 2),
        "samples": str(path),
        "rescored_equal": all(rescored[k] == final[k] for k in ("modes", "hq", "reverse_kl")),
        "evaluations": evals,
    }


def main() -> None:
    from gancourse.toy.sweep import parse_seeds

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="grid25,ring8", help="comma-separated data sets (default: grid25,ring8)")
    ap.add_argument("--recipes", default="old,new", help="old, new or both (default: old,new)")
    ap.add_argument("--seeds", default="0-4", help="seed list, e.g. 0-4 (default)")
    ap.add_argument("--eval-every", type=int, default=1000, help="steps between two evaluations (default: 1000)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs at once, one BLAS thread each (default 1: nothing else on the machine's cores)")
    ap.add_argument("--out", default=None, help="folder for the samples (default: a temporary folder)")
    args = ap.parse_args()
    datas = [d for d in args.data.split(",") if d]
    recipes = [r for r in args.recipes.split(",") if r]
    for r in recipes:
        if r not in ("old", "new"):
            ap.error(f"unknown recipe {r!r}; valid: old, new")
    for d in datas:
        if d not in TARGETS:
            ap.error(f"unknown data {d!r}; valid: {', '.join(TARGETS)}")
    out = args.out or tempfile.mkdtemp(prefix="time_to_quality_")
    Path(out).mkdir(parents=True, exist_ok=True)
    jobs = [(d, r, s, args.eval_every, out) for d in datas for s in parse_seeds(args.seeds) for r in recipes]
    load_before = os.getloadavg()
    if args.jobs == 1:
        results = [one_run(j) for j in jobs]
    else:
        import multiprocessing

        os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(one_run, jobs, chunksize=1)
    summary = {}
    for d in datas:
        for r in recipes:
            rows = [x for x in results if x["data"] == d and x["recipe"] == r]
            secs = [x["train_seconds"] for x in rows]
            summary[f"{d}/{r}"] = {
                "steps": rows[0]["steps"],
                "all_seeds_on_target": all(x["final_on_target"] for x in rows),
                "min_hq": min(x["final"]["hq"] for x in rows),
                "max_reverse_kl": max(x["final"]["reverse_kl"] for x in rows),
                "train_seconds_mean": round(sum(secs) / len(secs), 1),
                "train_seconds_max": max(secs),
                "first_step_on_target": [x["first_step_on_target"] for x in rows],
            }
    import numpy

    print(json.dumps({
        "benchmark": "time_to_quality",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "numpy": numpy.__version__,
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()], "jobs": args.jobs},
        "targets": TARGETS, "summary": summary, "runs": results,
    }))


if __name__ == "__main__":
    main()
