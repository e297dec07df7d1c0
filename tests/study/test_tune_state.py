"""A Tune state file truncated by a killed driver is found before a resume, replaced by Tune's
intact staging copy when this machine has one, and otherwise stops the resume with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray import cloudpickle

from study import tune_state
from trainables.errors import BadInputError

STATE = "basic-variant-state-2026-01-01_00-00-00.json"


def _experiment(tmp_path: Path) -> Path:
    experiment = tmp_path / "results" / "study-a"
    experiment.mkdir(parents=True)
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": []}))
    full = cloudpickle.dumps({"_total_samples": 3})
    (experiment / STATE).write_bytes(full[: len(full) // 2])  # cut off mid-write
    return experiment


def test_damaged_state_is_repaired_from_the_staging_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = _experiment(tmp_path)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "tmp"))
    staging = tmp_path / "tmp" / "ray" / "session_1" / "artifacts" / "2026-01-01" / "study-a" / "driver_artifacts"
    staging.mkdir(parents=True)
    (staging / STATE).write_bytes(cloudpickle.dumps({"_total_samples": 3}))
    assert [p.name for p in tune_state.damaged_files(experiment)] == [STATE]
    assert tune_state.repair(experiment) == [STATE]
    assert cloudpickle.loads((experiment / STATE).read_bytes()) == {"_total_samples": 3}
    assert tune_state.damaged_files(experiment) == []


def test_damaged_state_without_a_copy_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = _experiment(tmp_path)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "empty"))
    with pytest.raises(BadInputError, match=f"{STATE} is damaged") as err:
        tune_state.repair(experiment)
    assert "\n" not in str(err.value)
