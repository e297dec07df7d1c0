"""`infogan-study analyze` on a real Ray Tune experiment, and the parallel modes (Ray tasks, local
processes) giving the same values as the in-process default. Slow: Tune and Ray start in tens
of seconds here, spawned workers import torch."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis import selection as selection_module
from analysis.collect import analyze_experiment
from analysis.schema import SCHEMAS, read_table
from analysis.scoring import QUICK
from benchmarks.analyze_report import make_synthetic_experiment
from study.cli import main

pytestmark = pytest.mark.slow
TINY = {"dataset": "basicprop-line", "width": 0.125, "batch_size": 8, "steps": 20, "report_every": 5}


def _tables(folder) -> dict[str, pd.DataFrame]:
    tables = {name: read_table(name, folder / f"{name}.parquet").to_pandas() for name in SCHEMAS}
    trials = tables["trials"].drop(columns="scoring_s")  # a measured time is the one value that differs
    trials["checkpoint"] = [str((folder / c).resolve()) if c else "" for c in trials["checkpoint"]]  # relative or not
    tables["trials"] = trials
    return tables


def _assert_same(first: dict[str, pd.DataFrame], second: dict[str, pd.DataFrame]) -> None:
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(first[name], second[name])


def test_a_real_tune_experiment_scored_by_ray_tasks(tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray")
    # 20 steps leave the MI bound far below the label-free pick's entry bar: lower it, so that the
    # `all` pool's centrality is scored by Ray tasks too (the bar itself: test_selection.py)
    monkeypatch.setattr(selection_module, "MIN_CANDIDATE_MI", -math.inf)
    from ray import tune

    from trainables.tune import infogan_trainable

    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False
    )  # never a cluster found on the machine
    try:
        space = {**TINY, "seed": tune.grid_search([0, 1]), "lambda_info": tune.grid_search([1.0, -1.0])}
        tuner = tune.Tuner(
            infogan_trainable, param_space=space,
            run_config=tune.RunConfig(name="tiny", storage_path=str(tmp_path), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )  # fmt: skip
        tuner.fit()
        experiment = tmp_path / "tiny"
        assert main(["analyze", str(experiment), "--quick", "--quiet", "--address", "auto"]) == 0
    finally:
        ray.shutdown()
    assert "analyzed 4 trials (2 scored)" in capsys.readouterr().out
    trials = read_table("trials", experiment / "trials.parquet").to_pandas().sort_values("seed")
    good, bad = trials[trials["status"] == "completed"], trials[trials["status"] == "error"]
    assert len(good) == 2 and len(bad) == 2 and (good["last_step"] == 20).all()
    assert good["checkpoint"].str.endswith("checkpoint_000003").all() and good["q/real_hungarian_acc"].notna().all()
    assert bad["reason"].str.contains("lambda_info=-1.0 is out of range").all()  # the trainable's one-line error
    assert bad["group_label"].eq("invalid config").all() and bad["checkpoint"].eq("").all()
    curves = read_table("curves", experiment / "curves.parquet").to_pandas()
    assert sorted(curves.loc[curves["metric"] == "mi/cat", "step"].unique()) == [5, 10, 15, 20]
    selection = read_table("selection", experiment / "selection.parquet").to_pandas()
    assert set(selection["pool"]) == {"all"} and len(selection) == 4  # one group: its two seeds

    ray_tables = _tables(experiment)
    analyze_experiment(experiment, out=tmp_path / "serial", counts=QUICK)
    _assert_same(ray_tables, _tables(tmp_path / "serial"))


def test_local_worker_processes_give_the_in_process_values(tmp_path):
    experiment = make_synthetic_experiment(tmp_path / "exp", trials=10, reports=5)
    assert main(["analyze", str(experiment), "--quick", "--quiet", "--workers", "2", "--out", str(tmp_path / "w")]) == 0
    analyze_experiment(experiment, out=tmp_path / "serial", counts=QUICK)
    _assert_same(_tables(tmp_path / "w"), _tables(tmp_path / "serial"))
