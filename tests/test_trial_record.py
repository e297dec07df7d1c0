"""The trial record (`trainables/trial_record.py`): what the trainables write is what `analysis`
reads back, field for field, and records written before this module existed still read (and
write back) the same."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from trainables.trial_record import (
    CHECKPOINTS_KEPT,
    PRUNED_FILE,
    CheckpointEntry,
    Record,
    RecordStore,
    RunRecord,
    checkpoints_to_delete,
    describe_checkpoint,
    member_folder,
    member_id,
    member_metrics,
    member_prefix,
    read_description,
    read_record,
)

FIXTURE = Path(__file__).parent / "study" / "fixtures" / "fixture-sweep"


def _run(trial_id: str, seed: int) -> RunRecord:
    return RunRecord(
        trial_id, {"seed": seed, "steps": 40, "variant": "infogan"}, status="diverged",
        reason="diverged by step 30: loss/d is nan", step=30, steps=40, metrics={"step": 30.0, "loss/d": 1.5},
        score=("gen/cat_acc", "min"),
        checkpoints=[CheckpointEntry("checkpoint_000002", 20, {"step": 20.0, "mi/cat": 0.25})],
    )  # fmt: skip


def _pack() -> Record:
    """A pack's record with every field of every part away from its default."""
    members = [_run(member_id("abc12_00003", k), seed=k) for k in range(2)]
    record = Record(**{f.name: getattr(_run("abc12_00003", 7), f.name) for f in dataclasses.fields(RunRecord)})
    record.trial_name, record.members = "infogan_trainable_abc12_00003", members
    record.config = {"members": [m.config for m in members]}
    return record


def _left_at_default(part: object) -> list[str]:
    """The fields of a record's part that hold their default: a field the round trip cannot check."""
    fields = dataclasses.fields(part)
    required = {f.name: getattr(part, f.name) for f in fields if f.default is f.default_factory is dataclasses.MISSING}
    fresh = type(part)(**required)
    return [f.name for f in fields if f.name not in required and getattr(part, f.name) == getattr(fresh, f.name)]


def test_a_record_round_trips_every_field() -> None:
    record = _pack()
    for part in (record, record.members[0], record.checkpoints[0]):
        assert _left_at_default(part) == [], f"set every field of {type(part).__name__} in the sample"
    text = json.dumps(record.to_json(), indent=1)
    assert read_record(text) == record
    data = json.loads(text)
    assert list(data)[:3] == ["format", "trial_id", "trial_name"] and data["pack"] is True
    assert data["checkpoint_score"] == {"metric": "gen/cat_acc", "mode": "min"}
    assert data["members"][1]["checkpoints"][0] == {"name": "checkpoint_000002", "step": 20,
                                                    "metrics": {"step": 20.0, "mi/cat": 0.25}}  # fmt: skip


@pytest.mark.parametrize("trial", sorted(p.parent.name for p in FIXTURE.glob("*/infogan-trial.json")))
def test_records_written_before_this_module_read_and_write_back_the_same(trial: str) -> None:
    """The fixture's records were written by the trainable of ray 2.x before the record had a module
    of its own: completed, diverged (NaN metrics as null) and errored at once."""
    text = (FIXTURE / trial / "infogan-trial.json").read_text()
    record = read_record(text)
    assert record is not None and record.to_json() == json.loads(text)
    assert json.dumps(record.to_json(), indent=1) == text.strip()  # byte for byte, as a study rewrites it


def test_nan_and_inf_are_written_as_null_and_read_as_nan() -> None:
    run = RunRecord.start("t", {"steps": 10}, ("mi/cat", "max"))
    run.update("diverged", "diverged by step 5: loss/d is nan", {"step": 5.0, "loss/d": math.nan, "loss/g": math.inf})
    data = json.loads(json.dumps(run.to_json(), allow_nan=False))  # strict JSON
    assert data["metrics"] == {"step": 5.0, "loss/d": None, "loss/g": None} and data["step"] == 5
    again = RunRecord.from_json(data)
    assert math.isnan(again.metrics["loss/d"]) and math.isnan(again.metrics["loss/g"])


def test_what_is_not_a_record_reads_as_none_and_a_partial_one_with_defaults() -> None:
    assert read_record("{torn") is None and read_record("[1, 2]") is None
    record = read_record(json.dumps({"trial_id": "x", "checkpoints": [{"step": 3}, {"name": "c", "step": "?"}]}))
    assert record is not None and (record.status, record.step, record.score) == ("running", 0, ("mi/cat", "max"))
    assert record.checkpoints == [CheckpointEntry("c", -1, {})] and record.members is None
    assert read_description("c", "{}") == CheckpointEntry("c", -1, {}) and read_description("c", "nope") is None


def test_a_pack_member_is_named_and_its_metrics_found_by_one_rule() -> None:
    report = {f"{member_prefix(k)}{key}": float(k) for k in range(3) for key in ("loss/d", "step")}
    report.update({"loss/d": 1.0, "trial_id": "abc12_00003"})
    assert member_metrics(report, 2) == {"loss/d": 2.0, "step": 2.0} and member_metrics(report, 5) == {}
    assert (member_id("abc12_00003", 2), member_folder(2)) == ("abc12_00003-m02", "member_02")


def test_a_record_in_storage_lists_the_checkpoints_that_describe_themselves(tmp_path: Path) -> None:
    record = Record.start("abc12_00001", {"members": [{"seed": 0}, {"seed": 1}]}, ("mi/cat", "max"))
    store = RecordStore(str(tmp_path), record.trial_id)
    store.make_folder()
    folder = Path(store.folder)
    for name, step, members in [("checkpoint_000001", 10, (0, 1)), ("checkpoint_000002", 20, (1,))]:
        for k in members:  # member 0 diverged after step 10
            (folder / name / member_folder(k)).mkdir(parents=True)
            describe_checkpoint(folder / name / member_folder(k), step, {"step": float(step), "mi/cat": math.nan})
    (folder / "checkpoint_000003").mkdir()  # being written: no description yet
    record.members[1].update("running", "", {"step": 20.0, "mi/cat": 0.5})
    store.write(record)
    assert [p.name for p in folder.iterdir() if p.is_file()] == ["infogan-trial.json"]  # no temp file left
    again = store.read()
    assert again is not None and [m.trial_id for m in again.members] == ["abc12_00001-m00", "abc12_00001-m01"]
    assert [[(c.name, c.step) for c in m.checkpoints] for m in again.members] == [
        [("checkpoint_000001", 10)], [("checkpoint_000001", 10), ("checkpoint_000002", 20)]
    ]  # fmt: skip
    assert store.newest_checkpoint(again) == f"{store.folder}/checkpoint_000002"
    restarted = Record.start("abc12_00001", record.config, ("mi/cat", "max"))  # after a failure, or `resume`
    restarted.continue_from(again)
    assert [(m.step, m.metrics) for m in restarted.members] == [(0, {}), (20, {"step": 20.0, "mi/cat": 0.5})]


def _scored(mode: str, values: list[float], members: int = 0) -> Record:
    """A record whose checkpoint i (step 10 i) has mi/cat values[i] (each member's, for a pack)."""
    config = {"members": [{"seed": k} for k in range(members)]} if members else {}
    record = Record.start("abc12_00001", config, ("mi/cat", mode))
    for run in record.runs:
        run.checkpoints = [CheckpointEntry(f"checkpoint_{i:06d}", 10 * i, {"mi/cat": v}) for i, v in enumerate(values)]
    return record


@pytest.mark.parametrize(("mode", "values", "kept"), [
    ("max", [0.1, 0.9, 0.5, 0.7, 0.2], {1, 3, 4}),  # the best two and the newest
    ("min", [0.1, 0.9, 0.5, 0.7, 0.2], {0, 4}),  # the newest is one of the best two
    ("max", [math.nan, 0.3, math.nan, 0.3, 0.1], {1, 3, 4}),  # NaN ranks below every number
    ("max", [0.5, 0.5, 0.5, 0.5, math.nan], {2, 3, 4}),  # ties go to the later checkpoint
    ("max", [0.2, 0.1, 0.3], {0, 2}),  # the newest is among the best two: two kept, as Tune keeps them
    ("max", [0.2, 0.3], {0, 1}),
])  # fmt: skip
def test_pruning_keeps_the_newest_and_the_best_by_the_trials_score(mode, values, kept) -> None:
    doomed = checkpoints_to_delete(_scored(mode, values))
    assert CHECKPOINTS_KEPT == 2
    assert doomed == [f"checkpoint_{i:06d}" for i in range(len(values)) if i not in kept]


def test_a_pack_checkpoint_is_ranked_by_its_members_mean() -> None:
    record = _scored("max", [0.0, 0.0, 0.0, 0.0], members=2)
    member_0, member_1 = record.members
    for entry, (a, b) in zip(member_0.checkpoints, [(0.9, 0.1), (0.6, 0.6), (0.2, 0.2), (0.1, 0.1)]):
        entry.metrics["mi/cat"] = a
        member_1.checkpoints[int(entry.name[-1])].metrics["mi/cat"] = b
    # means 0.5, 0.6, 0.2, 0.1: the best two are 0 and 1; 3 is the newest
    assert checkpoints_to_delete(record) == ["checkpoint_000002"]
    member_1.checkpoints.pop()  # member 1 diverged before the newest: the newest still counts once
    assert checkpoints_to_delete(record) == ["checkpoint_000002"]


def test_prune_deletes_those_folders_from_storage_and_the_record_follows(tmp_path: Path) -> None:
    record = Record.start("abc12_00001", {}, ("mi/cat", "max"))
    store = RecordStore(str(tmp_path), record.trial_id)
    store.make_folder()
    for i, value in enumerate([0.3, 0.9, 0.1, 0.8, 0.2]):
        (Path(store.folder) / f"checkpoint_{i:06d}").mkdir()
        describe_checkpoint(Path(store.folder) / f"checkpoint_{i:06d}", 10 * i, {"mi/cat": value})
    store.write(record)  # lists the five
    assert store.prune(record) == ["checkpoint_000000", "checkpoint_000002"]
    store.write(record)
    kept = ["checkpoint_000001", "checkpoint_000003", "checkpoint_000004"]
    assert [c.name for c in store.read().checkpoints] == kept
    for name in ("checkpoint_000000", "checkpoint_000002"):  # emptied: Tune's snapshot may still name them
        assert [p.name for p in (Path(store.folder) / name).iterdir()] == [PRUNED_FILE]
    assert store.prune(record) == [] and store.newest_checkpoint(record) == f"{store.folder}/checkpoint_000004"
