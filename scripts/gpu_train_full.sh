#!/usr/bin/env bash
# The `full` preset of every image model of `gancourse train`, on one CUDA machine, several runs at once.
#
#   bash scripts/gpu_train_full.sh [OUT_DIR] [MODEL ...]     (default: gancourse-out/gpu-train-<date>, every model)
#
# Each model trains with `gancourse train MODEL --preset full --seed 0 --device cuda` into OUT_DIR/MODEL/ (the
# usual run folder). The models run in parallel, JOBS at a time (default 4; the networks are small, so one GPU
# keeps up with several), each with THREADS CPU threads (default 2). A run still training after LIMIT seconds
# (default 1800) gets a Ctrl-C: it saves OUT_DIR/MODEL/checkpoint.pt and stops, and `gancourse train MODEL --resume
# OUT_DIR/MODEL/checkpoint.pt` continues it later. A run already evaluating by then, or still starting, gets GRACE
# more seconds (default 300) before it is stopped, so a finished training is not thrown away.
# OUT_DIR/summary.json then holds, per model, how the run ended ("finished", "interrupted" with the step reached,
# or "failed"), the wall time and the run's metrics.json (report, config, device, training seconds);
# OUT_DIR/logs.txt holds the end of each run's output.
# A dry run of the plumbing on a CPU: DEVICE=cpu PRESET=smoke bash scripts/gpu_train_full.sh /tmp/dry dcgan
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/gancourse-out/gpu-train-$(date +%Y%m%d-%H%M%S)}"
shift || true
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
export JOBS="${JOBS:-4}" LIMIT="${LIMIT:-1800}" GRACE="${GRACE:-300}" THREADS="${THREADS:-2}"
export DEVICE="${DEVICE:-cuda}" PRESET="${PRESET:-full}"
PYTHON="${PYTHON:-python3}"

unset GANCOURSE_SMOKE GANCOURSE_TIER CI  # full size: no smoke switch may leak in
export MPLBACKEND=Agg PYTHONUNBUFFERED=1

exec "$PYTHON" - "$OUT" "$@" <<'PY'
import json, os, pathlib, platform, re, signal, subprocess, sys, time

import torch

out, models = pathlib.Path(sys.argv[1]), sys.argv[2:]
env = os.environ
jobs, limit, grace, threads = (int(env[k]) for k in ("JOBS", "LIMIT", "GRACE", "THREADS"))
device, preset = env["DEVICE"], env["PRESET"]
cuda = device == "cuda"
if cuda and not torch.cuda.is_available():
    sys.exit("no CUDA device: these are the GPU runs (DEVICE=cpu PRESET=smoke for a dry run on a CPU)")
environment = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
               "gpu": torch.cuda.get_device_name(0) if cuda else None,
               "jobs": jobs, "limit_seconds": limit, "grace_seconds": grace, "threads": threads, "preset": preset}
if not models:
    from gancourse.deep.runs.registry import MODELS
    models = list(MODELS)


class Run:
    """One `gancourse train` process, its log, and how it ended."""

    def __init__(self, model: str):
        self.model, self.log = model, out / f"{model}.log"
        command = [sys.executable, "-m", "gancourse", "train", model, "--preset", preset, "--seed", "0",
                   "--device", device, "--threads", str(threads), "--no-progress", "--out", str(out / model)]
        self.start = time.monotonic()
        with self.log.open("w") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.interrupted = False
        print(f"{model}: started", flush=True)

    def watch(self) -> bool:
        """Stop the run at its limit (Ctrl-C while training; a kill after the grace while evaluating); True when done."""
        age = time.monotonic() - self.start
        if self.process.poll() is not None:
            self.seconds = age
            print(f"{self.model}: exit {self.process.returncode} in {age:.0f} s", flush=True)
            return True
        log = self.log.read_text(errors="replace")
        training = re.search(r"^gancourse train: .* step \d+ of \d+", log, re.MULTILINE) and "evaluating" not in log
        if age > limit and not self.interrupted and training:
            self.process.send_signal(signal.SIGINT)  # the trainer saves its checkpoint and stops
            self.interrupted = True
        elif age > limit + grace:
            self.process.kill()
        return False

    def record(self) -> dict:
        log = self.log.read_text(errors="replace")
        metrics = out / self.model / "metrics.json"
        stopped = re.search(r"interrupted at step (\d+) of (\d+)", log)
        ended = "finished" if self.process.returncode == 0 and metrics.exists() else (
            "interrupted" if stopped else "failed")
        row = {"ended": ended, "exit": self.process.returncode, "wall_seconds": round(self.seconds, 1),
               "metrics": json.loads(metrics.read_text()) if metrics.exists() else None}
        if stopped:
            row["step"], row["of"] = int(stopped[1]), int(stopped[2])
        return row


waiting, running, done = list(models), [], []
while waiting or running:
    while waiting and len(running) < jobs:
        running.append(Run(waiting.pop(0)))
    time.sleep(1)
    for run in [r for r in running if r.watch()]:
        running.remove(run)
        done.append(run)

summary = {"environment": environment, **{r.model: r.record() for r in sorted(done, key=lambda r: models.index(r.model))}}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
(out / "logs.txt").write_text("\n".join(
    f"===== {m} ({summary[m]['ended']}, exit {summary[m]['exit']}, {summary[m]['wall_seconds']} s)\n"
    + (out / f"{m}.log").read_text(errors="replace")[-3000:] for m in models))
print(json.dumps({m: {k: summary[m].get(k) for k in ("ended", "wall_seconds", "step", "of")} for m in models}))
PY
