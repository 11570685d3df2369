#!/usr/bin/env bash
# The `full` preset of every image model of `gancourse train`, on one CUDA machine, several runs at once.
#
#   bash scripts/gpu_train_full.sh [OUT_DIR] [MODEL ...]     (default: gancourse-out/gpu-train-<date>, every model)
#
# Each model trains with `gancourse train MODEL --preset full --seed 0 --device cuda` into OUT_DIR/MODEL/ (the
# usual run folder). The models run in parallel, JOBS at a time (default 4; the networks are small, so one GPU
# keeps up with several), each limited to LIMIT seconds (default 1800) and to THREADS CPU threads (default 2).
# OUT_DIR/summary.json then holds, per model, the exit status, the wall time and the run's metrics.json
# (report, config, device, training seconds); OUT_DIR/logs.txt holds the end of each run's output.
# A dry run of the plumbing on a CPU: DEVICE=cpu PRESET=smoke bash scripts/gpu_train_full.sh /tmp/dry dcgan
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/gancourse-out/gpu-train-$(date +%Y%m%d-%H%M%S)}"
shift || true
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
JOBS="${JOBS:-4}"
LIMIT="${LIMIT:-1800}"
THREADS="${THREADS:-2}"
PYTHON="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
PRESET="${PRESET:-full}"

unset GANCOURSE_SMOKE GANCOURSE_TIER CI  # full size: no smoke switch may leak in
export MPLBACKEND=Agg PYTHONUNBUFFERED=1

DEVICE="$DEVICE" "$PYTHON" - <<'PY' > "$OUT/environment.json" || exit 1
import json, os, platform, torch
cuda = os.environ["DEVICE"] == "cuda"
assert torch.cuda.is_available() or not cuda, "no CUDA device: these are the GPU runs"
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda,
                  "gpu": torch.cuda.get_device_name(0) if cuda else None, "python": platform.python_version()}, indent=1))
PY

if [ "$#" -gt 0 ]; then
    MODELS=("$@")
else
    mapfile -t MODELS < <("$PYTHON" -c "from gancourse.deep.runs.registry import MODELS; print('\n'.join(MODELS))")
fi

run_one() {  # MODEL: train it, then record "MODEL RC SECONDS" in OUT/MODEL.status
    local model="$1" start=$SECONDS rc
    timeout "$LIMIT" "$PYTHON" -m gancourse train "$model" --preset "$PRESET" --seed 0 --device "$DEVICE" \
        --threads "$THREADS" --no-progress --out "$OUT/$model" > "$OUT/$model.log" 2>&1
    rc=$?
    echo "$model $rc $((SECONDS - start))" > "$OUT/$model.status"
    echo "$model: exit $rc in $((SECONDS - start)) s"
}

running=0
for model in "${MODELS[@]}"; do
    run_one "$model" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

"$PYTHON" - "$OUT" "${MODELS[@]}" <<'PY'
import json, pathlib, sys
out, models = pathlib.Path(sys.argv[1]), sys.argv[2:]
summary = {"environment": json.loads((out / "environment.json").read_text())}
logs = []
for m in models:
    status = (out / f"{m}.status").read_text().split() if (out / f"{m}.status").exists() else [m, "?", "?"]
    metrics = out / m / "metrics.json"
    summary[m] = {"exit": status[1], "wall_seconds": status[2],
                  "metrics": json.loads(metrics.read_text()) if metrics.exists() else None}
    log = (out / f"{m}.log").read_text(errors="replace") if (out / f"{m}.log").exists() else ""
    logs.append(f"===== {m} (exit {status[1]}, {status[2]} s)\n{log[-3000:]}")
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
(out / "logs.txt").write_text("\n".join(logs))
print(json.dumps({m: {k: summary[m][k] for k in ("exit", "wall_seconds")} for m in models}))
PY
