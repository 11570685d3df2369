#!/usr/bin/env bash
# Full-size runs of the PyTorch notebooks (06-09) on a CUDA machine, plus the training-speed benchmark.
#
#   bash scripts/gpu_full_runs.sh [OUT_DIR]        (default: gancourse-out/gpu-<date>)
#
# Writes to OUT_DIR: the executed notebooks (NN_name.ipynb), the metrics each notebook measured
# (NN_name_metrics.json, via GANCOURSE_RESULTS_DIR), the benchmark JSON, the environment, and one log per run.
# Run it from anywhere inside the repository, with the project installed: pip install torch==2.13.0 -e ".[dev,notebooks]" (papermill comes with the notebooks extra).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/gancourse-out/gpu-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"

# full mode: no smoke switches may leak in from the environment
unset GANCOURSE_SMOKE GANCOURSE_TIER CI
export GANCOURSE_RESULTS_DIR="$OUT"
export MPLBACKEND=Agg

python - <<'PY' | tee "$OUT/environment.json"
import json, platform, torch
assert torch.cuda.is_available(), "no CUDA device: these are the GPU runs"
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0),
                  "python": platform.python_version()}, indent=2))
PY
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true

python benchmarks/deep_train_speed.py --device cuda --compile > "$OUT/deep_train_speed.json" \
    2> "$OUT/deep_train_speed.log" || echo "speed benchmark failed: see $OUT/deep_train_speed.log"

failed=0
for nb in 06_evaluating_gans 07_dcgan 08_wgan_gp 09_cyclegan; do
    if [ -f "notebooks/$nb.ipynb" ]; then
        start=$SECONDS
        # a failing notebook (say an assert that does not hold at full size) does not stop the others
        if papermill "notebooks/$nb.ipynb" "$OUT/$nb.ipynb" -p TIER full --cwd notebooks --log-output \
                > "$OUT/$nb.log" 2>&1; then
            status=ok
        else
            status=FAILED
            failed=1
        fi
        echo "$nb: $status in $((SECONDS - start)) s" | tee -a "$OUT/wall_times.txt"
    fi
done

ls -l "$OUT"
exit "$failed"
