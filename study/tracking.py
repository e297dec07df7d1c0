"""Experiment tracking in MLflow: `sweep`/`search --tracking mlflow`, and `analyze`'s scores.

A tracked study's trials are MLflow runs, written by Ray Tune's own integration,
`ray.air.integrations.mlflow.MLflowLoggerCallback`, on the driver: one run per trial, named and
tagged `trial_name` after the Tune trial (`<trainable>_<trial id>`), with the trial's config as
params and every report as metrics (stepped by Tune's training iteration; the last value is the
final one). The MLflow experiment is named after the study (its launch name, which a renamed
folder keeps). The store is MLflow's embedded default, an SQLite file: `mlflow.db` in the
experiment folder unless `--tracking-uri` names another (a server, a database), so the study
folder holds its runs and `mlflow ui --backend-store-uri sqlite:///<folder>/mlflow.db` opens them.

`analyze` of a tracked study adds each trial's scores (the score and flag columns of
trials.parquet, as `analysis/<column>`) to the trial's run, found by its `trial_name` tag through MLflow's public
API (`MlflowClient.search_runs`).

MLflow is an optional dependency (`uv sync --extra mlflow`; the dev group has it for the tests):
without it, `--tracking mlflow` is a one-line error before anything starts. A pack (`sweep
--pack`) is one Tune trial holding several configurations, so it would be one MLflow run for many
trials: refused with --tracking mlflow.
"""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainables.errors import BadInputError

if TYPE_CHECKING:
    from study.plan import StudySpec

STORE_FILE = "mlflow.db"
SCORE_PREFIX = "analysis/"  # analyze's scores, apart from the same-named metrics reported in training


def check_tracking(tracking: str, uri: str | None, *, storage_path: str, pack: bool) -> None:
    """The tracking options before anything starts: MLflow installed, a store it can open."""
    if tracking != "mlflow":
        if uri is not None:
            raise BadInputError("--tracking-uri without --tracking mlflow: add --tracking mlflow, or drop the URI")
        return
    if importlib.util.find_spec("mlflow") is None:
        raise BadInputError("--tracking mlflow: MLflow is not installed; `uv sync --extra mlflow` (or "
                            "`pip install mlflow`), or drop --tracking")  # fmt: skip
    if pack:
        raise BadInputError("--tracking mlflow with --pack: a pack is one Tune trial, so MLflow would see one run "
                            "for all its members; drop one of them")  # fmt: skip
    if uri is None and "://" in storage_path:
        raise BadInputError(f"--tracking mlflow with --storage-path {storage_path}: the default SQLite store needs a "
                            "local folder; add --tracking-uri (an MLflow server or database)")  # fmt: skip


def tracking_uri(spec: StudySpec) -> str:
    """The study's MLflow store: --tracking-uri, or the SQLite file in its experiment folder."""
    return spec.tracking_uri or f"sqlite:///{Path(spec.experiment_path) / STORE_FILE}"


def mlflow_callbacks(spec: StudySpec) -> list[Any]:
    """Tune's MLflow callback for a tracked study; [] otherwise."""
    if spec.tracking != "mlflow":
        return []
    check_tracking(spec.tracking, spec.tracking_uri, storage_path=spec.storage_path, pack=bool(spec.pack))
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    tags = {"infogan_study": spec.launch_name, "study_kind": spec.kind, "space": spec.space}
    return [MLflowLoggerCallback(tracking_uri=tracking_uri(spec), experiment_name=spec.launch_name, tags=tags)]


def _scores(row: dict[str, Any]) -> dict[str, float]:
    """A trials.parquet row's scores (`analysis.schema.SCORE_COLUMNS`, finite ones) and failure
    flags (1.0 flagged, 0.0 not), as MLflow metrics."""
    from analysis import FLAG_COLUMNS, SCORE_COLUMNS

    out = {f"{SCORE_PREFIX}{c}": float(row[c]) for c in SCORE_COLUMNS if row.get(c) is not None}
    out.update({f"{SCORE_PREFIX}{c}": float(bool(row[c])) for c in FLAG_COLUMNS if row.get(c) is not None})
    return {k: v for k, v in out.items() if math.isfinite(v)}


def log_scores(spec: StudySpec, trials_parquet: Path) -> int:
    """Add every trial's scores (read back from trials.parquet) to its MLflow run; returns how many
    runs got them. A trial without a run (not started when tracking stopped) is skipped."""
    import mlflow
    import pyarrow.parquet as pq
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=tracking_uri(spec))
    experiment = client.get_experiment_by_name(spec.launch_name)
    if experiment is None:
        raise BadInputError(f"no MLflow experiment {spec.launch_name!r} at {tracking_uri(spec)}: the study's runs "
                            "are not there; analyze wrote the parquet files only")  # fmt: skip
    runs = {}
    for run in client.search_runs([experiment.experiment_id], max_results=50_000):
        name = run.data.tags.get("trial_name", "")
        runs[name] = run.info.run_id
    logged = 0
    for row in pq.read_table(trials_parquet).to_pylist():
        trial_id = str(row["trial_id"])
        run_id = next((rid for name, rid in runs.items() if name.endswith(f"_{trial_id}")), None)
        if run_id is None:
            continue
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in _scores(row).items()])
        logged += 1
    return logged
