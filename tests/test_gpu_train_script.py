"""``scripts/gpu_train_full.sh`` dry-run on the CPU: a run past its time limit is stopped with a Ctrl-C and keeps
its checkpoint, and a run that cannot start is recorded as failed, each in the summary."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_train_full.sh"


def test_a_run_past_its_limit_saves_its_checkpoint_and_a_bad_model_is_recorded_as_failed(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "PRESET": "smoke", "LIMIT": "0", "GRACE": "120", "JOBS": "1",
           "THREADS": "1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path), "dcgan", "no-such-model"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["environment"]["preset"] == "smoke" and summary["environment"]["gpu"] is None
    run = summary["dcgan"]
    assert run["ended"] == "interrupted" and 0 < run["step"] < run["of"] and run["metrics"] is None
    assert (tmp_path / "dcgan" / "checkpoint.pt").is_file()
    assert summary["no-such-model"]["ended"] == "failed" and summary["no-such-model"]["exit"] == 2
    assert "===== no-such-model (failed, exit 2" in (tmp_path / "logs.txt").read_text()
