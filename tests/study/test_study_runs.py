"""Sweeps and searches with real Ray processes on one shared local Ray instance (2 CPUs).

- A diverging trial ends normally with diverged=1.0 and the loop's reason in its record (shown as
  DIVERGED); the other trials finish; checkpoints are written through `tune.report`, and Tune
  keeps the best two by the study's metric plus the latest, as each trial's record lists them.
- An unknown config key makes the trial error at once with the config's one-line message.
- A sweep whose driver is killed mid-way is completed by `infogan-study resume`: finished trials
  are not rerun, the interrupted ones continue from their checkpoints.
- A search whose driver is killed keeps its Optuna history and its TPE sampler after resume.
- Ctrl-C (SIGINT) during a sweep ends the driver with exit status 130 and the
  `infogan-study resume` line (not Tune's `Tuner.restore(...)` hint), and the study can be resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import ray
from ray import tune
from ray.tune import ExperimentAnalysis
from ray.tune.search.optuna import OptunaSearch

from analysis.tune_folder import TrialRecord, read_experiment
from study.cli import main
from study.ray_runtime import init_local
from study.status import format_table, load_study
from trainables.checkpoint import FILENAME
from trainables.trial_record import CHECKPOINTS_KEPT, RECORD_FILE
from trainables.tune import infogan_trainable

REPO = Path(__file__).resolve().parents[2]
FAST = ["--dataset", "basicprop-line", "--batch-size", "8", "--set", "width=0.125"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """One local Ray for the module; yields its address for drivers in other processes."""
    init_local(num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _space_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "space.py"
    path.write_text(f"from ray import tune\nDESCRIPTION = 'test space'\ndef space():\n    return {body}\n")
    return str(path)


def _results(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_diverging_trial_ends_as_such_and_the_others_finish(local_ray: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    space = _space_file(tmp_path, "{'lr_g': tune.grid_search([1e-3, 1e30]), 'seed': tune.grid_search([0, 1])}")
    argv = ["sweep", space, *FAST, "--steps", "30", "--set", "report_every=5", "--name", "div",
            "--storage-path", str(tmp_path / "results")]  # fmt: skip
    assert main(argv) == 0
    view = load_study(str(tmp_path / "results" / "div"))
    assert len(view.trials) == 4 and view.tune_note == ""
    for t in view.trials:
        assert t.failures == 0
        record = json.loads((t.record.path / RECORD_FILE).read_text())
        if t.config["lr_g"] > 1:
            assert t.state == "DIVERGED" and t.metrics["diverged"] == 1.0 and t.step < 30
            assert record["status"] == "diverged" and t.note == record["reason"]
            assert record["reason"].startswith(f"diverged by step {t.step}: loss/")
            assert _results(t.record.path)[-1]["reason"] == record["reason"]  # what Tune was told
        else:
            assert t.state == "COMPLETED" and t.step == 30 and (record["status"], record["reason"]) == ("completed", "")
            assert _results(t.record.path)[-1]["training_iteration"] == 6
            on_disk = sorted(p.parent.name for p in t.record.path.glob(f"checkpoint_*/{FILENAME}"))
            assert 2 <= len(on_disk) <= CHECKPOINTS_KEPT + 1 and [c["name"] for c in record["checkpoints"]] == on_disk
            assert record["checkpoints"][-1]["step"] == 30  # the latest is always kept
            # no --metric: the generator-side probe, which basicprop-line's trials report
            assert record["checkpoint_score"] == {"metric": "gen/cat_acc", "mode": "max"}
            best = max(record["checkpoints"], key=lambda c: c["metrics"]["gen/cat_acc"])
            assert t.record.choose_checkpoint("best").path.name == best["name"]
    capsys.readouterr()
    assert main(["status", "div", "--storage-path", str(tmp_path / "results")]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if " DIVERGED " in line]
    assert len(rows) == 2 and all("diverged by step 5: loss/" in row for row in rows)
    assert "4 trials: 2 COMPLETED, 2 DIVERGED" in table


def test_unknown_key_errors_the_trial_at_once_with_one_line(local_ray: str, tmp_path: Path) -> None:
    """The bare trainable (no launcher, so no record): status reads Tune's files and public view."""
    tuner = tune.Tuner(
        infogan_trainable,
        param_space={"dataset": "basicprop-line", "steps": 5, "lamda_info": 0.5},
        run_config=tune.RunConfig(name="bad", storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 1
    assert "unknown config field 'lamda_info'; did you mean lambda_info?" in str(results[0].error)
    view = load_study(str(tmp_path / "bad"))
    assert [(t.state, t.step) for t in view.trials] == [("ERROR", None)]  # nothing was trained or reported
    assert not list((tmp_path / "bad").glob(f"*/{RECORD_FILE}"))
    assert "BadInputError: unknown config field 'lamda_info'" in format_table(view)


# ---------------------------------------------------------------------------------- driver killed
def _start_driver(argv: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as f:
        return subprocess.Popen([sys.executable, "-m", "study.cli", *argv], cwd=REPO, stdout=f, stderr=f, env=env)


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"driver exited early:\n{log.read_text()[-3000:]}"
        try:
            if condition():
                return
        except Exception:  # noqa: BLE001 - no experiment yet, or Tune's state mid-write; try again
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"condition not reached in {timeout_s} s:\n{log.read_text()[-3000:]}")


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _trials(experiment: Path) -> dict[str, TrialRecord]:
    return {t.trial_id: t for t in read_experiment(experiment).trials}


@pytest.mark.slow
def test_resume_completes_a_sweep_whose_driver_was_killed(local_ray: str, tmp_path: Path) -> None:
    storage = tmp_path / "results"
    experiment = storage / "killed"
    steps, every = 600, 20  # ~10-30 s a trial: the third trial runs alone long enough to be caught
    space = _space_file(tmp_path, "{'seed': tune.grid_search([0, 1, 2])}")
    argv = ["sweep", space, *FAST, "--steps", str(steps), "--set", f"report_every={every}",
            "--name", "killed", "--storage-path", str(storage), "--address", local_ray]  # fmt: skip
    proc = _start_driver(argv, tmp_path / "driver.log")

    def midway(t: TrialRecord) -> bool:  # checkpointed, with at least half of its run still to go
        # (by its record, which the trial writes at every report; result.json reaches the storage
        # path with Tune's snapshots, at least 10 s apart)
        return t.run_status == "running" and bool(t.checkpoints) and t.last_step <= steps // 2

    def finished_and_midway() -> bool:
        trials = _trials(experiment).values()
        return any(t.run_status == "completed" for t in trials) and any(midway(t) for t in trials)

    _wait_for(finished_and_midway, proc, tmp_path / "driver.log", timeout_s=400)
    _kill(proc)
    before = _trials(experiment)
    done = {i: (t.path / "result.json").read_text() for i, t in before.items() if t.run_status == "completed"}
    resumed = {i for i, t in before.items() if midway(t)}
    assert done and resumed

    assert main(["resume", "killed", "--storage-path", str(storage)]) == 0
    after = _trials(experiment)
    assert len(after) == 3 and all(t.run_status == "completed" for t in after.values())
    assert [t.state for t in load_study(str(experiment)).trials] == ["COMPLETED"] * 3
    for trial_id, t in after.items():
        # (Tune's own iteration counter restarts when its state predates the trial's checkpoints: not ours)
        assert t.last_step == steps and _results(t.path)[-1]["step"] == steps
        assert t.checkpoints[-1].step == steps
        if trial_id in done:  # not trained again: every step reported once, in order (at most the last
            # twice: Tune's last snapshot, and the result.json it synced, can predate the trial's end)
            before_steps = [json.loads(line)["step"] for line in done[trial_id].splitlines() if line.strip()]
            seen = [r["step"] for r in _results(t.path)]
            assert seen[: len(before_steps)] == before_steps and seen == sorted(seen), seen
            assert len(seen) - len(set(seen)) <= 1 and set(seen) == set(range(every, steps + 1, every)), seen
        if trial_id in resumed:  # continued from its checkpoint, not from step 0: its first step once
            assert [r["step"] for r in _results(t.path)].count(every) == 1


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_with_exit_130_and_the_resume_line(local_ray: str, tmp_path: Path) -> None:
    storage = tmp_path / "results"
    space = _space_file(tmp_path, "{'seed': tune.grid_search([0, 1])}")
    argv = ["sweep", space, *FAST, "--steps", "20000", "--set", "report_every=20", "--name", "ctrlc",
            "--storage-path", str(storage), "--address", local_ray]  # fmt: skip
    log = tmp_path / "driver.log"
    proc = _start_driver(argv, log)
    _wait_for(lambda: any(t.last_step for t in _trials(storage / "ctrlc").values()), proc, log, timeout_s=400)
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise AssertionError(f"the driver did not stop within 300 s of Ctrl-C:\n{log.read_text()[-3000:]}") from None
    text = log.read_text()
    assert code == 130, text[-3000:]
    resume = f"infogan-study resume ctrlc --storage-path {storage} --address {local_ray}"
    assert f"infogan-study: interrupted; continue with: {resume}" in text.splitlines()
    assert "Tuner.restore(" not in text
    assert tune.Tuner.can_restore(str(storage / "ctrlc"))
    assert all(t.run_status != "completed" for t in _trials(storage / "ctrlc").values())


@pytest.mark.slow
def test_resumed_search_keeps_optuna_history_and_tpe_sampler(local_ray: str, tmp_path: Path) -> None:
    storage = tmp_path / "results"
    experiment = storage / "tpe"
    journal = experiment / "optuna.journal"
    argv = ["search", *FAST, "--steps", "200", "--set", "report_every=20", "--num-samples", "6",
            "--startup-trials", "2", "--objective", "mi/cat", "--objective", "loss/g", "--name", "tpe",
            "--storage-path", str(storage), "--address", local_ray]  # fmt: skip
    proc = _start_driver(argv, tmp_path / "driver.log")

    def study() -> optuna.Study:
        storage_ = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        return optuna.load_study(study_name="tpe", storage=storage_)

    def two_told_and_snapshotted() -> bool:
        complete = [t for t in study().trials if t.state == optuna.trial.TrialState.COMPLETE]
        tune_done = sum(t.status == "TERMINATED" for t in ExperimentAnalysis(str(experiment)).trials)
        return len(complete) >= 2 and tune_done >= 2

    _wait_for(two_told_and_snapshotted, proc, tmp_path / "driver.log", timeout_s=400)
    _kill(proc)
    history = {t.number: (t.params, t.values) for t in study().trials if t.state == optuna.trial.TrialState.COMPLETE}

    assert main(["resume", "tpe", "--storage-path", str(storage)]) == 0
    trials = study().trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6 and all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    for number, (params, values) in history.items():  # the history survived unchanged
        assert (trials[number].params, trials[number].values) == (params, values)
    tune_trials = load_study(str(experiment)).trials
    assert len(tune_trials) == 6 and all(t.state == "COMPLETED" for t in tune_trials)
    # every Tune trial ran a configuration Optuna suggested and was told its result
    suggested = [t.params for t in complete]
    assert all({k: t.config[k] for k in suggested[0]} in suggested for t in tune_trials)
    # the restored searcher (through Tune's public Searcher API) is the TPE sampler over the same study
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(experiment))
    sampler = searcher._ot_study.sampler
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 2
    assert searcher._ot_study.study_name == "tpe"


@pytest.mark.slow
def test_more_ctrl_c_while_a_study_stops_still_end_it_with_the_resume_line(local_ray: str, tmp_path: Path) -> None:
    """Ctrl-C pressed again and again while Tune saves the study and the driver's own local Ray
    shuts down (and while the interpreter exits): still exit status 130 and the resume line, and no
    traceback (one from Ray's exit handler used to follow the resume line)."""
    storage = tmp_path / "results"
    space = _space_file(tmp_path, "{'seed': tune.grid_search([0, 1])}")
    argv = [
        "sweep",
        space,
        *FAST,
        "--steps",
        "20000",
        "--set",
        "report_every=20",
        "--name",
        "again",
        "--storage-path",
        str(storage),
    ]  # fmt: skip  (no --address: the driver starts and stops its own Ray)
    log = tmp_path / "driver.log"
    proc = _start_driver(argv, log)
    _wait_for(lambda: any(t.last_step for t in _trials(storage / "again").values()), proc, log, timeout_s=400)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    if proc.poll() is None:
        _kill(proc)
        raise AssertionError(f"the driver did not stop within 300 s of Ctrl-C:\n{log.read_text()[-3000:]}")
    text = log.read_text()
    assert proc.returncode == 130, text[-3000:]
    assert f"infogan-study: interrupted; continue with: infogan-study resume again --storage-path {storage}" in text
    assert "Traceback" not in text, text[-3000:]
