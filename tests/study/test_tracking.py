"""`sweep --tracking mlflow` end to end on a real local Ray: one MLflow run per trial in the
study folder's SQLite store, read back through MLflow's public API (`mlflow.search_runs`), with the
trial's config as params and its reports as metrics (the final `mi/cat` the trial's last report);
`analyze` then adds each trial's scores to the same run. Without MLflow installed the option is
one line, before anything starts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from study.cli import main

FAST = ["--dataset", "basicprop-line", "--batch-size", "8", "--set", "width=0.125", "--steps", "30",
        "--set", "report_every=10"]  # fmt: skip


@pytest.mark.slow
def test_a_tracked_sweep_is_one_mlflow_run_per_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow
    import pyarrow.parquet as pq

    space = tmp_path / "space.py"
    space.write_text("from ray import tune\nDESCRIPTION = 'two seeds'\ndef space():\n"
                     "    return {'seed': tune.grid_search([0, 1])}\n")  # fmt: skip
    storage = tmp_path / "results"
    argv = ["sweep", str(space), *FAST, "--tracking", "mlflow", "--name", "tracked", "--storage-path", str(storage)]
    assert main(argv) == 0, capsys.readouterr()
    experiment = storage / "tracked"
    uri = f"sqlite:///{experiment / 'mlflow.db'}"
    assert f"mlflow runs: mlflow ui --backend-store-uri {uri}" in capsys.readouterr().out

    mlflow.set_tracking_uri(uri)
    try:
        runs = mlflow.search_runs(experiment_names=["tracked"], output_format="list")
        assert len(runs) == 2  # one run per trial
        records = {json.loads(p.read_text())["trial_id"]: p.parent for p in experiment.glob("*/infogan-trial.json")}
        assert len(records) == 2
        for run in runs:
            [trial_id] = [t for t in records if run.data.tags["trial_name"].endswith(f"_{t}")]
            params = run.data.params
            assert (params["dataset"], params["width"], params["steps"]) == ("basicprop-line", "0.125", "30")
            assert params["seed"] in ("0", "1")
            reports = [json.loads(line) for line in (records[trial_id] / "result.json").read_text().splitlines()]
            assert run.data.metrics["mi/cat"] == pytest.approx(reports[-1]["mi/cat"])  # the final value
            assert run.data.metrics["step"] == 30
            assert run.info.status == "FINISHED"

        assert main(["analyze", str(experiment), "--quick", "--no-selection", "--quiet"]) == 0
        assert "mlflow: scores of 2 trial(s) added to their runs" in capsys.readouterr().out
        table = {r["trial_id"]: r for r in pq.read_table(experiment / "trials.parquet").to_pylist()}
        for run in mlflow.search_runs(experiment_names=["tracked"], output_format="list"):
            [trial_id] = [t for t in table if run.data.tags["trial_name"].endswith(f"_{t}")]
            assert run.data.metrics["analysis/gen/cat_acc"] == pytest.approx(table[trial_id]["gen/cat_acc"])
    finally:
        mlflow.set_tracking_uri(None)


def test_without_mlflow_installed_tracking_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` sees where it is not installed
    argv = ["sweep", "categories", *FAST, "--tracking", "mlflow", "--storage-path", str(tmp_path / "results")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["infogan-study: error: --tracking mlflow: MLflow is not installed; `uv sync --extra mlflow` (or "
                   "`pip install mlflow`), or drop --tracking"]  # fmt: skip
    assert not any(tmp_path.iterdir())


def test_analyze_scores_go_to_the_run_of_each_trial(tmp_path: Path) -> None:
    """The analyze side alone (no Ray): runs tagged as Tune's MLflow callback tags them, a
    trials.parquet, and `log_scores` adds each trial's scores to its own run, skipping a trial
    without one."""
    import dataclasses

    import mlflow
    import pyarrow as pa
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    from analysis.schema import TRIALS_SCHEMA, write_table
    from study.plan import Objective, StudySpec, write_spec
    from study.tracking import log_scores, mlflow_callbacks, tracking_uri

    spec = StudySpec(kind="sweep", name="s", storage_path=str(tmp_path), space="categories",
                     objectives=(Objective("mi/cat", "max"),), tracking="mlflow")  # fmt: skip
    write_spec(spec)
    [callback] = mlflow_callbacks(spec)
    assert isinstance(callback, MLflowLoggerCallback)
    assert (callback.tracking_uri, callback.experiment_name) == (f"sqlite:///{tmp_path / 's' / 'mlflow.db'}", "s")
    assert mlflow_callbacks(dataclasses.replace(spec, tracking="none")) == []

    client = mlflow.MlflowClient(tracking_uri=tracking_uri(spec))
    experiment_id = client.create_experiment("s")
    runs = {t: client.create_run(experiment_id, tags={"trial_name": f"infogan_trainable_{t}"}).info.run_id
            for t in ("ab12c_00000", "ab12c_00001")}  # fmt: skip
    rows = [{"trial_id": "ab12c_00000", "gen/cat_acc": 0.75, "flag/mode_collapse": True},
            {"trial_id": "ab12c_00001", "gen/cat_acc": float("nan"), "flag/mode_collapse": False},
            {"trial_id": "ab12c_00002", "gen/cat_acc": 0.5}]  # fmt: skip
    write_table(pa.Table.from_pylist(rows, schema=TRIALS_SCHEMA), "trials", tmp_path / "trials.parquet")

    assert log_scores(spec, tmp_path / "trials.parquet") == 2  # the third trial has no run
    first, second = (client.get_run(runs[t]).data.metrics for t in ("ab12c_00000", "ab12c_00001"))
    assert (first["analysis/gen/cat_acc"], first["analysis/flag/mode_collapse"]) == (0.75, 1.0)
    assert "analysis/gen/cat_acc" not in second and second["analysis/flag/mode_collapse"] == 0.0  # NaN is not logged
