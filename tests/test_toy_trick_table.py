"""The table of tricks of lecture 5: row configs, runs that finish or diverge, summaries and their text."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from gancourse.toy import get_dataset, plain_gan, recommended
from gancourse.toy.report import comparison_table
from gancourse.toy.sweep import SweepError
from gancourse.toy.trainer import ToyGAN
from gancourse.toy.trick_table import (
    RECIPE_ROW,
    ROWS,
    TRICKS,
    comparison_rows,
    describe_summary,
    format_mean_std,
    mean_std,
    summarize_runs,
    summary_table,
    train_and_evaluate,
    train_and_evaluate_all,
    trick_config,
    trick_configs,
)

#: the sizes notebook 05 uses in smoke mode
SMOKE_SIZES = dict(steps=150, batch_size=64, g_hidden=(32, 32), d_hidden=(32, 32), n_eval=500)
TINY = dict(steps=12, batch_size=16, g_hidden=(8,), d_hidden=(8,), n_eval=100)


# --- rows and configs ------------------------------------------------------------------------


def test_rows_are_the_plain_gan_the_tricks_then_the_recipe():
    assert ROWS[0] == "plain NS GAN" and TRICKS["plain NS GAN"] == {}
    assert ROWS[-1] == RECIPE_ROW and RECIPE_ROW not in TRICKS
    assert list(ROWS[:-1]) == list(TRICKS) and len(set(ROWS)) == len(ROWS) == 19
    with pytest.raises(TypeError):
        TRICKS["new row"] = {}  # read-only
    with pytest.raises(TypeError):
        TRICKS["hinge loss"]["loss"] = "ns"


@pytest.mark.parametrize("row", list(TRICKS))
def test_a_trick_row_changes_exactly_the_fields_it_names(row):
    plain = plain_gan("ring8", seed=3, **TINY).to_dict()
    cfg = trick_config(row, "ring8", 3, sizes=TINY)
    assert (cfg.data, cfg.seed) == ("ring8", 3)
    diff = {k: v for k, v in cfg.to_dict().items() if plain[k] != v}
    assert diff == {k: v for k, v in TRICKS[row].items() if plain[k] != v}
    assert diff or row == "plain NS GAN"  # every other row changes something


def test_the_recipe_row_takes_the_shared_sizes_unless_it_runs_in_full():
    assert trick_config(RECIPE_ROW, "ring8", 2, sizes=TINY) == recommended("ring8", seed=2, **TINY)
    full = trick_config(RECIPE_ROW, "ring8", 2, sizes=TINY, full_recipe=True)
    assert full == recommended("ring8", seed=2) and full.steps > TINY["steps"]
    # full_recipe concerns the recipe only: a trick row keeps the shared sizes
    assert trick_config("hinge loss", sizes=TINY, full_recipe=True).steps == TINY["steps"]
    plain, recipe = plain_gan("grid25", **TINY).to_dict(), trick_config(RECIPE_ROW, "grid25", sizes=TINY).to_dict()
    assert {k for k, v in recipe.items() if plain[k] != v} == {"penalty", "gamma", "lr_g", "lr_d", "beta2", "lr_schedule", "ema"}


def test_trick_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown row 'hinge'.*'hinge loss'"):
        trick_config("hinge")
    with pytest.raises(ValueError, match=r"sizes may not set \['loss'\]"):
        trick_config("hinge loss", sizes={"loss": "ns"})
    with pytest.raises(ValueError, match=r"sizes may not set \['data', 'seed'\]"):
        trick_config("plain NS GAN", sizes={"seed": 1, "data": "ring8"})
    with pytest.raises(ValueError, match="steps"):
        trick_config("plain NS GAN", sizes={"steps": 0})  # ToyConfig's own check


def test_trick_configs_has_one_config_per_data_row_and_seed_in_order():
    configs = trick_configs(("grid25", "ring8"), range(2), sizes=TINY)
    assert list(configs) == list(itertools.product(("grid25", "ring8"), ROWS, (0, 1)))
    for (data, row, seed), cfg in configs.items():
        assert cfg == trick_config(row, data, seed, sizes=TINY)
    few = trick_configs(["ring8"], [5], rows=["hinge loss", RECIPE_ROW], sizes=TINY, full_recipe=True)
    assert few == {("ring8", "hinge loss", 5): trick_config("hinge loss", "ring8", 5, sizes=TINY),
                   ("ring8", RECIPE_ROW, 5): recommended("ring8", seed=5)}


# --- runs ------------------------------------------------------------------------------------


def test_every_row_finishes_at_the_notebooks_smoke_sizes_with_metrics_in_range():
    k = len(get_dataset("grid25").centers)
    results = {row: train_and_evaluate(trick_config(row, "grid25", sizes=SMOKE_SIZES)) for row in ROWS}
    for row, r in results.items():
        assert r["diverged"] is False, row
        assert r["seconds"] > 0
        assert 0.0 <= r["hq"] <= 1.0 and isinstance(r["modes"], int) and 0 <= r["modes"] <= k
        assert (r["modes"] == 0) == (r["hq"] == 0.0)
        if r["hq"] == 0.0:
            assert r["reverse_kl"] == float("inf")
        else:
            assert np.isfinite(r["reverse_kl"]) and 0.0 <= r["reverse_kl"] <= np.log(k) + 1e-9
        assert sum(r["counts"]) == round(r["hq"] * SMOKE_SIZES["n_eval"])
    # both branches of the checks above are exercised at these sizes
    assert any(r["hq"] > 0 for r in results.values()) and any(r["hq"] == 0 for r in results.values())


def test_a_run_that_diverges_is_recorded_with_its_step():
    cfg = plain_gan("ring8", loss="lsgan", optimizer="sgd", lr_g=1e6, lr_d=1e6, **{**TINY, "steps": 50})
    with np.errstate(all="ignore"):
        r = train_and_evaluate(cfg)
    assert set(r) == {"diverged", "step", "seconds"}
    assert r["diverged"] is True and isinstance(r["step"], int) and 1 <= r["step"] <= cfg.steps


def test_train_and_evaluate_matches_a_watched_run_of_the_same_config():
    cfg = trick_config("plain NS GAN", "grid25", sizes=SMOKE_SIZES)
    watched = ToyGAN(cfg.replace(eval_every=15))
    watched.train(progress=False, callback_every=30, callbacks=[lambda g: g.sample(100)])
    r = train_and_evaluate(cfg)
    assert {k: r[k] for k in ("modes", "hq", "reverse_kl", "counts")} == {
        k: v for k, v in watched.evaluate().items() if k in ("modes", "hq", "reverse_kl", "counts")}


def test_train_and_evaluate_wants_a_config():
    with pytest.raises(TypeError, match="ToyConfig"):
        train_and_evaluate({"data": "grid25"})


def test_train_and_evaluate_all_gives_train_and_evaluates_results_from_worker_processes():
    configs = trick_configs(["grid25", "ring8"], [0, 1], rows=["plain NS GAN", "hinge loss"], sizes=TINY)
    configs["diverges"] = plain_gan("ring8", loss="lsgan", optimizer="sgd", lr_g=1e6, lr_d=1e6,
                                    **{**TINY, "steps": 50})
    with np.errstate(all="ignore"):
        together = train_and_evaluate_all(configs, jobs=2, progress=False)
        alone = {key: train_and_evaluate(cfg) for key, cfg in configs.items()}
    assert list(together) == list(configs)  # the keys, in the order of configs
    assert together["diverges"]["diverged"] is True and set(together["diverges"]) == {"diverged", "step", "seconds"}
    for key in configs:
        t, a = dict(together[key]), dict(alone[key])
        assert t.pop("seconds") >= 0 and a.pop("seconds") > 0
        assert t == a, key  # same format, same metrics bit for bit, the same divergence step


def test_train_and_evaluate_all_raises_a_failure_that_is_not_a_divergence(monkeypatch):
    def broken(self, *args, **kwargs):
        raise ValueError("broken on purpose")

    monkeypatch.setattr(ToyGAN, "run", broken)  # jobs=1 trains in this process, where the patch applies
    with pytest.raises(SweepError, match="broken on purpose"):
        train_and_evaluate_all({"a": plain_gan("ring8", **TINY)}, jobs=1, progress=False)
    with pytest.raises(TypeError, match="mapping"):
        train_and_evaluate_all([plain_gan("ring8", **TINY)])


# --- summaries -------------------------------------------------------------------------------


def test_mean_std():
    assert mean_std([]) == (None, None)
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    assert mean_std(iter([4])) == (4.0, 0.0)
    mean, std = mean_std([0.5, float("inf")])
    assert mean == float("inf") and math.isnan(std)


def _run(modes, hq, rkl, seconds=1.0):
    return {"modes": modes, "hq": hq, "reverse_kl": rkl, "counts": [], "diverged": False, "seconds": seconds}


DIVERGED = {"diverged": True, "step": 7, "seconds": 0.5}


def test_summarize_runs_averages_the_finished_seeds():
    s = summarize_runs([_run(20, 0.8, 0.1), _run(24, 0.9, 0.3), DIVERGED])
    assert (s["n_done"], s["n_diverged"], s["seconds"]) == (2, 1, 2.5)
    assert (s["modes"], s["modes_std"]) == (22.0, 2.0)
    assert s["hq"] == pytest.approx(0.85) and s["hq_std"] == pytest.approx(0.05)
    assert s["reverse_kl"] == pytest.approx(0.2) and s["reverse_kl_std"] == pytest.approx(0.1)
    gone = summarize_runs([DIVERGED, DIVERGED])
    assert gone["n_done"] == 0 and gone["modes"] is None and gone["hq_std"] is None
    assert summarize_runs([_run(0, 0.0, float("inf")), _run(3, 0.1, 0.2)])["reverse_kl"] == float("inf")


def test_summarize_runs_wants_results_of_train_and_evaluate():
    with pytest.raises(ValueError, match="run 1 has no 'diverged'"):
        summarize_runs([_run(1, 0.1, 0.0), {"modes": 3, "hq": 0.5, "reverse_kl": 0.1}])


def test_format_mean_std():
    assert format_mean_std(None, None, ".1f") == "diverged"
    assert format_mean_std(float("inf"), float("nan"), ".3f") == "inf"
    assert format_mean_std(2.0, 0.25, ".2f") == "2.00 ± 0.25"
    assert format_mean_std(2.0, 0.25, ".1f", show_std=False) == "2.0"


def test_summary_table_has_a_line_per_row_and_names_divergences():
    summaries = {"plain NS GAN": summarize_runs([_run(17, 0.015, 0.53, 2.0)]),
                 "hinge loss": summarize_runs([DIVERGED]),
                 RECIPE_ROW: summarize_runs([_run(25, 0.944, 0.0109, 76.0), DIVERGED])}
    text = summary_table(summaries, title="grid25 (K = 25)", show_std=False)
    lines = text.splitlines()
    assert lines[0] == "grid25 (K = 25)" and lines[1].split()[:2] == ["variant", "modes"]
    assert set(lines[2]) == {"-"} and len(lines[2]) == len(lines[1])
    assert len(lines) == 3 + len(summaries)
    assert lines[3].split()[-4:] == ["17.0", "1.5", "0.530", "2.0"]
    assert "diverged" in lines[4] and "(1 diverged)" in lines[4]
    assert lines[5].startswith(RECIPE_ROW) and "94.4" in lines[5] and lines[5].endswith("(1 diverged)")
    assert "±" not in text and "±" in summary_table(summaries)
    assert summary_table(summaries).splitlines()[0].startswith("variant")  # no title line without a title


def test_comparison_rows_feed_the_comparison_table():
    summaries = {"plain NS GAN": summarize_runs([_run(17, 0.01523, 0.53049)]), "hinge loss": summarize_runs([DIVERGED])}
    rows = comparison_rows(summaries, "full, 3 seeds")
    assert rows == [{"method": "plain NS GAN (full, 3 seeds)", "modes": 17.0, "hq": 0.015, "reverse_kl": 0.53},
                    {"method": "hinge loss (full, 3 seeds)", "modes": None, "hq": None, "reverse_kl": None}]
    table = comparison_table(rows)
    assert "plain NS GAN (full, 3 seeds)" in table and table.splitlines()[-1].split()[-3:] == ["-", "-", "-"]


def test_describe_summary():
    one = summarize_runs([_run(24, 0.912, 0.031)])
    assert describe_summary(one, 25, 1) == "24.0 of 25 modes, 91.2% HQ, reverse KL 0.031"
    assert describe_summary(summarize_runs([DIVERGED]), 25, 1) == "diverged on every seed"
    none_hq = summarize_runs([_run(0, 0.0, float("inf"))])
    assert describe_summary(none_hq, 8, 1).endswith("reverse KL inf (no HQ sample)")
    assert describe_summary(none_hq, 8, 3).endswith("reverse KL inf (a seed without HQ samples)")
