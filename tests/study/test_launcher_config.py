"""How a study is configured before Ray runs it (no Ray processes): per-trial resources, ASHA's
budget from steps/report_every, the Optuna searcher and its storage, the checkpoints kept (the
best by the study's first objective), where the trials' records go, the saved study spec."""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from study.launcher import (
    _scheduler,
    _searcher,
    asha_settings,
    check_optuna_storage,
    driver_settings,
    find_study,
    study_run_config,
    study_sampler,
)
from study.plan import Objective, StudySpec, read_spec, write_spec
from trainables.errors import BadInputError
from trainables.trial_record import CHECKPOINTS_KEPT
from trainables.tune import infogan_trainable, with_trial_resources
from trainables.tune.trainable import trial_resources


def _spec(tmp_path: Path, **changes: object) -> StudySpec:
    base = {"kind": "sweep", "name": "s", "storage_path": str(tmp_path), "space": "categories",
            "objectives": (Objective("mi/cat", "max"),)}  # fmt: skip
    return StudySpec(**{**base, **changes})


def test_trial_resources_include_fractional_gpus() -> None:
    assert trial_resources(cpus=2, gpus=0.25) == {"cpu": 2, "gpu": 0.25}
    trainable = with_trial_resources(cpus=2, gpus=0.25)
    assert trainable.__name__ == "infogan_trainable" and trainable is not infogan_trainable


def test_asha_budget_is_the_number_of_reports(tmp_path: Path) -> None:
    spec, space = _spec(tmp_path, scheduler="asha"), {"steps": 1000, "report_every": 50}
    scheduler = _scheduler(spec, space)
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler.metric == "mi/cat"
    assert asha_settings(spec, space)[0] == 20  # max_t: 1,000 steps / 50 per report
    assert isinstance(_scheduler(_spec(tmp_path), {}), FIFOScheduler)


def test_asha_needs_a_fixed_number_of_steps(tmp_path: Path) -> None:
    from ray import tune

    with pytest.raises(BadInputError, match="steps and report_every fixed"):
        _scheduler(_spec(tmp_path, scheduler="asha"), {"steps": tune.grid_search([100, 200])})


def test_search_uses_tpe_over_a_journal_in_the_experiment_folder(tmp_path: Path) -> None:
    spec = _spec(tmp_path, kind="search", startup_trials=3,
                 objectives=(Objective("mi/cat", "max"), Objective("loss/g", "min")))  # fmt: skip
    searcher = _searcher(spec)
    assert searcher.metric == ["mi/cat", "loss/g"] and searcher.mode == ["max", "min"]
    assert isinstance(study_sampler(spec), optuna.samplers.TPESampler)
    assert Path(spec.optuna_journal) == tmp_path / "s" / "optuna.journal"


def test_existing_optuna_study_name_is_bad_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="s", storage=url)
    with pytest.raises(BadInputError, match="already holds a study named s"):
        check_optuna_storage(_spec(tmp_path, kind="search", optuna_storage=url))
    with pytest.raises(BadInputError, match="needs a file system or a database"):
        check_optuna_storage(_spec(tmp_path, kind="search", storage_path="s3://bucket/results"))


def test_spec_round_trips_through_the_experiment_folder(tmp_path: Path) -> None:
    spec = _spec(tmp_path, gpus_per_trial=0.25, max_concurrent=3)
    write_spec(spec)
    assert read_spec(spec.experiment_path) == spec
    assert read_spec(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(("objectives", "score"), [
    ((Objective("mi/cat", "max"),), ("mi/cat", "max")),
    ((Objective("loss/g", "min"), Objective("mi/cat", "max")), ("loss/g", "min")),
])  # fmt: skip
def test_tune_ranks_the_checkpoints_by_the_first_objective_and_deletes_none(tmp_path: Path, objectives, score) -> None:
    spec = _spec(tmp_path, objectives=objectives)
    keep = study_run_config(spec).checkpoint_config
    assert keep.num_to_keep is None  # the trials prune their own: Tune then forces no snapshot
    assert (keep.checkpoint_score_attribute, keep.checkpoint_score_order) == score


def test_a_study_launched_before_the_trials_pruned_keeps_tunes_pruning(tmp_path: Path) -> None:
    """A spec written before `pruned_by` existed reads back as Tune's pruning, so a resumed older
    study is not pruned twice (Tune's `num_to_keep` restored, the trials leaving theirs alone)."""
    spec = _spec(tmp_path)
    assert spec.pruned_by == "trial" and StudySpec.from_json(spec.to_json()).pruned_by == "trial"
    written = json.loads(spec.to_json())
    del written["pruned_by"]
    older = StudySpec.from_json(json.dumps(written))
    assert older.pruned_by == "tune"
    keep = study_run_config(older).checkpoint_config
    assert keep.num_to_keep == CHECKPOINTS_KEPT


def test_a_new_study_logs_json_and_tensorboard_not_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    callbacks = study_run_config(_spec(tmp_path)).callbacks
    kinds = {type(c) for c in callbacks}
    assert {JsonLoggerCallback, TBXLoggerCallback} <= kinds and CSVLoggerCallback not in kinds
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    with driver_settings():  # Tune adds none of its automatic loggers during the fit
        assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ  # resume keeps Tune's defaults


def test_a_moved_study_is_found_where_it_is_now(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "cluster")
    write_spec(spec)
    (tmp_path / "cluster").rename(tmp_path / "home")
    found = find_study("s", str(tmp_path / "home"), restorable=False)
    assert found.experiment_path == str(tmp_path / "home" / "s") and found.name == "s"
    with pytest.raises(BadInputError, match="no study named 's'"):
        find_study("s", str(tmp_path / "home"))  # Tune has nothing to restore there
