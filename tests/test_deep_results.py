"""The metrics JSON of the image notebooks: the record, where it goes, and that it reads back as written."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.deep.results import RESULTS_DIR_ENV, results_path, results_record, save_results  # noqa: E402
from gancourse.deep.train_cyclegan import CycleGANConfig, CycleGANTrainer  # noqa: E402
from gancourse.deep.train_gan import GANConfig, GANTrainer  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(batch_size=8, z_dim=4, image_size=8, g_width=4, d_width=4, log_every=3, sample_every=4, n_samples=4,
            steps=6)
REPORT = {"fd_lenet": {"floor": 1.5, "trained": 20.25, "ceiling": 300.0, "better": "lower"}}
BASE = ["notebook", "smoke", "device", "config", "train_seconds", "report", "final_losses"]


def images(c=1, seed=0):
    return torch.rand(40, c, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def trainer():
    tr = GANTrainer(GANConfig(**TINY, loss="wgan-gp", n_critic=2), images(), "cpu")
    tr.train(progress=False)
    return tr


def test_a_trainer_trains_to_its_configured_length_with_finite_losses(trainer):
    assert trainer.step == trainer.config.steps
    last = trainer.history.last()
    assert {"d_loss", "g_loss", "gp", "w_estimate"} <= set(last) and all(map(math.isfinite, last.values()))


def test_the_record_holds_the_run_then_what_the_notebook_measured(trainer):
    stages = np.array([2, 4, 6])
    rec = results_record("08_wgan_gp", trainer, smoke=True, train_seconds=1.25, report=REPORT, stages=stages,
                         rank_correlation=np.float64(0.75), norms=torch.tensor([0.5, 1.0]), flag=np.bool_(True))
    assert list(rec) == [*BASE, "stages", "rank_correlation", "norms", "flag"]
    assert rec["notebook"] == "08_wgan_gp" and rec["smoke"] is True and rec["device"] == "cpu"
    assert rec["config"] == dataclasses.asdict(trainer.config) and rec["train_seconds"] == 1.25
    assert rec["report"] == REPORT and rec["final_losses"] == trainer.history.last()
    assert rec["stages"] == [2, 4, 6] and type(rec["stages"][0]) is int
    assert rec["norms"] == [0.5, 1.0] and rec["flag"] is True and rec["rank_correlation"] == 0.75
    assert json.loads(json.dumps(rec)) == rec  # plain JSON types all the way down


def test_save_results_writes_nothing_without_a_folder(trainer, tmp_path, monkeypatch):
    monkeypatch.delenv(RESULTS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert save_results("07_dcgan", trainer, smoke=True, train_seconds=1.0, report=REPORT) is None
    monkeypatch.setenv(RESULTS_DIR_ENV, "")
    assert save_results("07_dcgan", trainer, smoke=True, train_seconds=1.0, report=REPORT) is None
    assert list(tmp_path.iterdir()) == []


def test_save_results_writes_the_record_where_the_environment_says(trainer, tmp_path, monkeypatch):
    folder = tmp_path / "gpu-run" / "new"
    monkeypatch.setenv(RESULTS_DIR_ENV, str(folder))
    ink = {"-1.0": 0.1, "0.0": 0.2}
    out = save_results("07_dcgan", trainer, smoke=False, train_seconds=2.5, report=REPORT, ink_by_scale=ink)
    assert out == folder / "07_dcgan_metrics.json" == results_path("07_dcgan")
    data = json.loads(out.read_text())
    assert data == results_record("07_dcgan", trainer, smoke=False, train_seconds=2.5, report=REPORT,
                                  ink_by_scale=ink)
    assert data["report"]["fd_lenet"]["trained"] == REPORT["fd_lenet"]["trained"]
    assert [p.name for p in folder.iterdir()] == ["07_dcgan_metrics.json"]  # no temporary file left
    # an explicit folder wins over the environment
    other = save_results("07_dcgan", trainer, smoke=False, train_seconds=2.5, report=REPORT, results_dir=tmp_path)
    assert other == tmp_path / "07_dcgan_metrics.json" and other.is_file()


def test_the_file_is_strict_json(trainer, tmp_path):
    out = save_results("08_wgan_gp", trainer, smoke=True, train_seconds=1.0, report=REPORT, results_dir=tmp_path,
                       rank_correlation=float("nan"), worst=[1.0, float("inf")])
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["rank_correlation"] is None and data["worst"] == [1.0, None]


def test_a_cyclegan_run_is_recorded_too(tmp_path):
    cfg = CycleGANConfig(batch_size=2, image_size=8, g_width=2, n_blocks=1, d_width=4, d_layers=1, pool_size=3,
                         log_every=1, sample_every=4, n_samples=2, steps=2)
    tr = CycleGANTrainer(cfg, images(1, 1), images(3, 2), "cpu")
    tr.train(progress=False)
    report = {"B acceptance (A->B)": {"floor": 0.9, "trained": 0.4, "ceiling": 0.0, "better": "higher"}}
    out = save_results("09_cyclegan", tr, smoke=True, train_seconds=0.5, report=report, results_dir=tmp_path,
                       l1_ab={"valid_rendering": 0.4, "mean_image": 0.3})
    data = json.loads(out.read_text())
    assert set(data["report"]) == set(report) and data["config"]["d_layers"] == 1
    assert set(data["final_losses"]) == set(tr.history.names) and "cycle" in data["final_losses"]


def test_bad_names_and_values_are_refused(trainer, tmp_path):
    kw = dict(smoke=True, train_seconds=1.0, report=REPORT, results_dir=tmp_path)
    for name in ("../07_dcgan", "a/b", "", "..", 7):
        with pytest.raises(ValueError, match="plain name"):
            save_results(name, trainer, **kw)
    with pytest.raises(ValueError, match=r"may not be named \['config', 'device'\]"):
        results_record("07_dcgan", trainer, smoke=True, train_seconds=1.0, report=REPORT, device="cuda", config={})
    with pytest.raises(TypeError, match=r"results\[.extra.\]\[.f.\] is a builtin_function_or_method, which has"):
        save_results("07_dcgan", trainer, extra={"f": len}, **kw)
    with pytest.raises(TypeError, match="GANTrainer or CycleGANTrainer"):
        save_results("07_dcgan", object(), **kw)
    assert list(tmp_path.iterdir()) == []
