"""What the project relies on from Ray Tune, pinned two ways.

- A committed fixture, `fixtures/fixture-sweep/` (made by `fixtures/make_fixture.py` with the
  pinned Ray: one trial completed, one diverged, one errored at once): `status` and `analyze`'s
  reader show it from the trials' records and Tune's public view, `status` still works when
  Tune's own state is damaged, and `resume` then refuses with one line (exit 2).
- A fresh tiny Tune run (slow): the trial folder layout, the result.json keys, the ResultGrid and
  ExperimentAnalysis fields and the checkpoint retention the records rely on are still what this
  Ray does. A Ray upgrade that changes one fails here, by name.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import shutil
from pathlib import Path

import pytest
import ray
from ray import tune

from analysis.tune_folder import read_experiment
from study.cli import main
from study.launcher import build_tuner, check_restorable, find_study
from study.plan import Objective, StudySpec, common_settings, write_spec
from study.ray_runtime import init_local
from study.status import format_table, load_study
from trainables.checkpoint import FILENAME, load_model
from trainables.trial_record import CHECKPOINT_FILE, CHECKPOINTS_KEPT, PACK_KEY, PRUNED_FILE, RECORD_FILE, member_folder
from trainables.tune import KEY_METRICS, STOPPED_BY_TUNE
from trainables.tune.trainable import checkpoint_to_resume, open_record

FIXTURE = Path(__file__).parent / "fixtures" / "fixture-sweep"
NAME = FIXTURE.name


def _records(folder: Path) -> dict[str, dict]:
    """status -> record of each trial in an experiment folder."""
    records = [json.loads(p.read_text()) for p in sorted(folder.glob(f"*/{RECORD_FILE}"))]
    return {r["status"]: r for r in records}


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A copy of the fixture study under a storage path (tests may damage it)."""
    shutil.copytree(FIXTURE, tmp_path / "results" / NAME)
    return tmp_path / "results"


def test_the_record_files_keep_the_names_studies_on_disk_have() -> None:
    """One module names them for the trainable and the reader (`trainables.trial_record`)."""
    assert (RECORD_FILE, CHECKPOINT_FILE) == ("infogan-trial.json", "infogan-checkpoint.json")


def test_status_shows_the_fixture_from_records_and_tune(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _records(storage / NAME)
    assert main(["status", NAME, "--storage-path", str(storage)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:-1]}
    done, diverged, errored = (rows[records[s]["trial_id"]] for s in ("completed", "diverged", "error"))
    header = ["trial", "state", "lr_g", "step", "mi/cat", "loss/d", "loss/g", "failures", "note"]
    assert out.splitlines()[1].split() == header
    assert done.split()[1:4] == ["COMPLETED", "0.001", "20"] and done.split()[-1] == "0"
    assert diverged.split()[1:4] == ["DIVERGED", "1e+30", "5"]
    assert re.search(r" 0 +diverged by step 5: loss/d is nan$", diverged)
    assert errored.split()[1:3] == ["ERROR", "-1"]  # no step; Tune counted one failure (max_failures 0):
    assert re.search(r" 1 +BadInputError: lr_g=-1\.0 is out of range: lr_g must be > 0\.0$", errored)
    assert out.splitlines()[-1] == "3 trials: 1 COMPLETED, 1 DIVERGED, 1 ERROR"


def test_tune_state_saved_before_the_adapters_moved_still_loads(storage: Path) -> None:
    """Tune pickles the launcher's `trial_dirname_creator` by reference into a study's state; the
    fixture's (saved before `trainables.tune` existed) names `trainables.tune_trainable`, so a study
    started then still loads for `resume`: its trial table, and tuner.pkl as `Tuner.restore` reads it."""
    tuner_state = (storage / NAME / "tuner.pkl").read_bytes()
    assert b"trainables.tune_trainable" in tuner_state
    check_restorable(find_study(NAME, str(storage)))
    assert pickle.loads(tuner_state)  # Tune's own file, of the study the fixture made


def test_status_reads_a_study_through_a_storage_uri(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """s3:// and gs:// go the same way: the small files of each trial are copied, then read."""
    assert main(["status", NAME, "--storage-path", f"file://{storage}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "3 trials: 1 COMPLETED, 1 DIVERGED, 1 ERROR"


def test_analyze_reads_the_fixture_from_records(storage: Path) -> None:
    records = _records(storage / NAME)
    trials = {t.trial_id: t for t in read_experiment(storage / NAME).trials}
    done, diverged, errored = (trials[records[s]["trial_id"]] for s in ("completed", "diverged", "error"))
    assert (done.status, done.reason, done.last_step, done.score_metric) == ("completed", "", 20, "mi/cat")
    assert done.curves["mi/cat"][0].tolist() == [5, 10, 15, 20]
    # the record lists the checkpoints Tune kept (best two and the latest); only the latest is still on disk
    listed = [c["name"] for c in records["completed"]["checkpoints"]]
    assert len(listed) >= 2 and listed[-1] == "checkpoint_000003"
    assert [c.path.name for c in done.checkpoints] == ["checkpoint_000003"]
    best = done.choose_checkpoint("best")
    assert best is done.choose_checkpoint("final") and best.step == 20
    assert best.mi_cat == pytest.approx(records["completed"]["checkpoints"][-1]["metrics"]["mi/cat"])
    assert load_model(best.path).step == 20  # the kept checkpoint is a real one
    assert (diverged.status, diverged.reason) == ("diverged", "diverged by step 5: loss/d is nan")
    assert diverged.checkpoints == []
    assert diverged.choose_checkpoint("final") is None
    assert errored.status == "error" and errored.config is None and errored.last_step is None
    assert errored.reason == "BadInputError: lr_g=-1.0 is out of range: lr_g must be > 0.0"


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def test_status_without_tune_state_shows_the_records(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for state in (storage / NAME).glob("experiment_state-*.json"):
        _truncate(state)
    assert main(["status", NAME, "--storage-path", str(storage)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "3 trials: 1 COMPLETED, 1 DIVERGED, 1 ERROR"
    assert lines[-1].startswith("Tune's state of this study is not readable (")


@pytest.mark.parametrize("pattern", ["experiment_state-*.json", "basic-variant-state-*.json"])
def test_resume_refuses_a_damaged_tune_state_with_one_line(storage: Path, capsys: pytest.CaptureFixture[str],
                                                           pattern: str) -> None:  # fmt: skip
    [state] = (storage / NAME).glob(pattern)
    _truncate(state)
    assert main(["resume", NAME, "--storage-path", str(storage)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"infogan-study: error: Tune cannot restore study {NAME}: ")
    assert "start the study again with a new --name" in err
    assert not ray.is_initialized()


# ---------------------------------------------------------------------------------- a fresh run
def _best(reports: list[dict], metric: str) -> set[str]:
    """The checkpoints Tune should rank best: the best CHECKPOINTS_KEPT by `metric` (max; NaN
    lowest, ties to the later one). It keeps these and the latest."""
    named = [(i, r) for i, r in enumerate(reports) if r.get("checkpoint_dir_name")]

    def score(item: tuple[int, dict]) -> tuple[bool, float, int]:
        value = item[1].get(metric)
        finite = value is not None and not math.isnan(value)
        return finite, value if finite else -math.inf, item[0]

    return {r["checkpoint_dir_name"] for _, r in sorted(named, key=score)[-CHECKPOINTS_KEPT:]}


@pytest.mark.slow
def test_a_fresh_tune_run_still_gives_what_the_records_rely_on(tmp_path: Path) -> None:
    # One trial at a time, so each reuses the previous one's actor, which Tune stopped (checks that a
    # trial it stops lets go of its actor within Tune's reset timeout). lr_g: 2e-3 is stopped after 3
    # reports; 1e-3 runs its 8 (Tune stops it at its last one); 1e30 diverges.
    spec = StudySpec(kind="sweep", name="contract", storage_path=str(tmp_path), space="contract",
                     objectives=(Objective("mi/cat", "max"),), max_failures=0, max_concurrent=1)  # fmt: skip
    space = {"lr_g": tune.grid_search([2e-3, 1e-3, 1e30]),
             **common_settings({"dataset": "basicprop-line", "steps": 40, "report_every": 5, "batch_size": 8,
                                "width": 0.05, "noise_dim": 4})}  # fmt: skip

    def stop(trial_id: str, result: dict) -> bool:
        return result["training_iteration"] >= (3 if result["config"]["lr_g"] == 2e-3 else 8)

    init_local(num_cpus=2)
    try:
        write_spec(spec)
        results = build_tuner(spec, space, stop=stop).fit()
    finally:
        ray.shutdown()
    experiment = tmp_path / "contract"
    assert tune.Tuner.can_restore(str(experiment))
    assert len(results) == 3 and results.num_errors == 0, [str(r.error) for r in results if r.error]

    by_lr = {}
    for result in results:  # ResultGrid: each Result's path is the trial folder the record is in
        folder = Path(result.path)
        trial_id = result.metrics["trial_id"]
        assert folder.parent == experiment and folder.name == f"trial_{trial_id}", folder
        record = json.loads((folder / RECORD_FILE).read_text())
        assert record["trial_id"] == trial_id and record["config"]["lr_g"] == result.config["lr_g"]
        assert (folder / "params.json").is_file()
        reports = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
        for report in reports:  # the keys the readers use
            assert {"step", "trial_id", "training_iteration", "checkpoint_dir_name"} <= report.keys()
            assert {"status", "reason", *KEY_METRICS} <= report.keys()
        on_disk = {p.parent.name for p in folder.glob(f"*/{FILENAME}")}
        assert {c["name"] for c in record["checkpoints"]} == on_disk  # the record lists exactly what is kept
        if on_disk:  # the trial kept the best by the study's metric, and the latest; Tune ranks them so too
            latest = reports[-1]["checkpoint_dir_name"]
            ranked = [Path(c.path).name for c, _ in result.best_checkpoints]  # Tune's, worst first, all of them
            assert len(ranked) == sum(1 for r in reports if r["checkpoint_dir_name"])  # Tune deletes none
            assert set(ranked[-CHECKPOINTS_KEPT:]) == _best(reports, "mi/cat")
            assert Path(result.checkpoint.path).name == latest and on_disk == _best(reports, "mi/cat") | {latest}
        by_lr[result.config["lr_g"]] = (record, reports)

    record, reports = by_lr[1e-3]  # Tune stopped it at its last report: it completed all the same
    assert (record["status"], record["reason"], record["step"], len(reports)) == ("completed", "", 40, 8)
    record, reports = by_lr[1e30]
    assert record["status"] == "diverged" and record["reason"].startswith("diverged by step 5: loss/")
    assert reports[-1]["reason"] == record["reason"] and reports[-1]["checkpoint_dir_name"] is None
    record, reports = by_lr[2e-3]
    assert (record["status"], record["step"], len(reports)) == ("stopped", 15, 3)
    assert record["reason"] == f"stopped at step 15 of 40 {STOPPED_BY_TUNE}"

    # Tune's public view that `status` joins to the records
    view = load_study(str(experiment))
    states = [t.state for t in sorted(view.trials, key=lambda t: t.config["lr_g"])]
    assert states == ["COMPLETED", "STOPPED", "DIVERGED"]
    assert view.tune_note == "" and all(t.failures == 0 for t in view.trials)
    assert "3 trials: 1 COMPLETED, 1 DIVERGED, 1 STOPPED" in format_table(view)
    trials = {t.config.lr_g: t for t in read_experiment(experiment).trials}
    assert trials[2e-3].status == "completed" and trials[2e-3].reason.startswith("stopped at step 15 of 40")
    best = trials[1e-3].choose_checkpoint("best")
    assert best.mi_cat == max(c.mi_cat for c in trials[1e-3].checkpoints)


@pytest.mark.filterwarnings("ignore:`get_checkpoint` is meant")
def test_a_trial_that_tune_restarts_from_scratch_continues_from_its_newest_checkpoint_on_disk(tmp_path: Path) -> None:
    """Tune's state can be older than the trial's folder (its driver killed between two of Tune's
    snapshots): Tune then hands the trial no checkpoint, and the trial continues from the newest
    checkpoint it finds beside its record instead of from step 0."""
    record, store = open_record(str(tmp_path), {"steps": 100}, ("mi/cat", "max"))  # outside Tune: no trial id
    assert checkpoint_to_resume(record, store) is None  # nothing saved yet: start from step 0
    folder = Path(store.folder)
    for name, step in [("checkpoint_000003", 80), ("checkpoint_000001", 40), ("checkpoint_000002", 60)]:
        (folder / name).mkdir()
        (folder / name / CHECKPOINT_FILE).write_text(json.dumps({"step": step, "metrics": {}}))
    (folder / "checkpoint_000004").mkdir()  # being written: no description yet
    chosen = checkpoint_to_resume(record, store)
    assert chosen is not None and Path(chosen.path).name == "checkpoint_000003"


def test_a_trial_that_tune_hands_a_checkpoint_it_has_since_pruned_continues_from_its_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tune's snapshot can name a checkpoint the trial pruned after it (the trials keep their own:
    `RecordStore.prune`: emptied, or gone), or an older one than the trial's newest (a snapshot
    older than the trial's last checkpoints): the trial continues from its newest one each time."""
    record, store = open_record(str(tmp_path), {"steps": 100}, ("mi/cat", "max"))
    folder = Path(store.folder)
    for name, step in [("checkpoint_000002", 60), ("checkpoint_000003", 80)]:
        (folder / name).mkdir()
        (folder / name / CHECKPOINT_FILE).write_text(json.dumps({"step": step, "metrics": {}}))
    (folder / "checkpoint_000001").mkdir()  # pruned since Tune's snapshot: emptied
    (folder / "checkpoint_000001" / PRUNED_FILE).write_text("pruned")
    handed = tune.Checkpoint(path=str(folder / "checkpoint_000001"))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: handed)
    chosen = checkpoint_to_resume(record, store)
    assert chosen is not None and Path(chosen.path).name == "checkpoint_000003"
    handed = tune.Checkpoint(path=str(folder / "checkpoint_000000"))  # gone altogether
    assert Path(checkpoint_to_resume(record, store).path).name == "checkpoint_000003"
    handed = tune.Checkpoint(path=str(folder / "checkpoint_000002"))  # there, but older than the newest
    assert Path(checkpoint_to_resume(record, store).path).name == "checkpoint_000003"


@pytest.mark.filterwarnings("ignore:`get_checkpoint` is meant")
def test_a_pack_that_tune_restarts_from_scratch_continues_from_its_newest_pack_checkpoint(tmp_path: Path) -> None:
    """The same for a pack (`sweep --pack`): its checkpoints hold a folder per member, described
    there; a member that diverged saved none, so the newest any member describes is the one."""
    record, store = open_record(str(tmp_path), {PACK_KEY: [{"seed": 0}, {"seed": 1}]}, ("mi/cat", "max"))
    assert checkpoint_to_resume(record, store) is None
    folder = Path(store.folder)
    for name, step, members in [("checkpoint_000001", 40, (0, 1)), ("checkpoint_000002", 60, (1,))]:
        for k in members:  # member 0 diverged after step 40
            (folder / name / member_folder(k)).mkdir(parents=True)
            (folder / name / member_folder(k) / CHECKPOINT_FILE).write_text(json.dumps({"step": step, "metrics": {}}))
    chosen = checkpoint_to_resume(record, store)
    assert chosen is not None and Path(chosen.path).name == "checkpoint_000002"
