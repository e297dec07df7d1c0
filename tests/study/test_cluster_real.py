"""The README's cluster recipe, run for real on this machine: a two-node Ray cluster started with
`ray start` (head with the dashboard, one worker node, one CPU each, loopback only) with token
authentication on, a sweep submitted with `ray job submit --working-dir . -- infogan-study sweep
... --address auto` exactly as the README says, and then:

- one trial's worker process is killed mid-run: the trial restarts from its last checkpoint
  (`--max-failures`, default 2) and finishes, never from scratch;
- the job is stopped (`ray job stop`) while trials remain: `ray job submit ... infogan-study
  resume NAME --storage-path DIR --address auto` finishes the study, finished trials untouched;
- `infogan-study status` and `analyze` read the result.

Nodes and token live in a temporary HOME and Ray temp dir (`ray_nodes.py`); everything is
stopped by process id at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_nodes import BIN, LocalCluster, start_cluster

REPO = Path(__file__).resolve().parents[2]
STEPS, EVERY = 2400, 40  # trials long enough that result.json (synced with Tune's snapshots, >= 10 s apart) names
# the pid of a trial whose record says it is not yet half-way
SEEDS = 3  # two at a time on the two one-CPU nodes: the job is stopped while the third runs
NAME = "cluster-sweep"
SPACE = (
    "from ray import tune\nDESCRIPTION = 'seeds'\n"
    f"def space():\n    return {{'seed': tune.grid_search(list(range({SEEDS})))}}\n"
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path, head_cpus=1, workers=1)
    try:
        yield cluster
    finally:
        cluster.stop()


def _reports(trial_dir: Path) -> list[dict]:
    file = trial_dir / "result.json"
    lines = file.read_text().splitlines() if file.exists() else []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):  # a line being written
            out.append(json.loads(line))
    return out


def _record(trial_dir: Path) -> dict:
    """The trial's record as its worker last wrote it (live: the worker writes it at every report,
    where result.json reaches the storage path with Tune's snapshots, at least 10 s apart)."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads((trial_dir / "infogan-trial.json").read_text())
    return {}


def _wait_for(what: str, condition, cluster: LocalCluster, job_id: str, timeout_s: float = 240):
    """Poll `condition` (files, cheap) every 0.5 s and the job (a CLI call) every 5 s."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        polls += 1
        if polls % 4 == 0 and cluster.job_status(job_id) in ("STOPPED", "SUCCEEDED", "FAILED"):
            raise AssertionError(f"job ended before {what}:\n{cluster.job_logs(job_id)[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{cluster.job_logs(job_id)[-4000:]}")


def _submit(cluster: LocalCluster, job_id: str, *entrypoint: str, wait: bool) -> None:
    """The README's command, run from the repository (the working dir Ray uploads, less what
    .gitignore names: .venv, results)."""
    command = [str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard, "--submission-id", job_id,
               "--working-dir", ".", *([] if wait else ["--no-wait"]), "--", *entrypoint]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_readme_cluster_recipe_with_token_auth_node_faults_and_resume(cluster: LocalCluster, tmp_path: Path) -> None:
    assert cluster.unauthenticated_status() == 401  # token auth is on: no token, no job API

    space = tmp_path / "space.py"
    space.write_text(SPACE)
    storage = tmp_path / "results"
    experiment = storage / NAME
    sweep = ["infogan-study", "sweep", str(space), "--dataset", "basicprop-line", "--batch-size", "8",
             "--set", "width=0.125", "--steps", str(STEPS), "--set", f"report_every={EVERY}",
             "--address", "auto", "--storage-path", str(storage), "--name", NAME]  # fmt: skip
    _submit(cluster, "sweep", *sweep, wait=False)

    # 1. A trial's worker process dies mid-run (its pid is in every report): it resumes from its checkpoint.
    def a_trial_midway() -> tuple[Path, int] | None:
        for trial in sorted(experiment.glob("trial_*")):
            reports, step = _reports(trial), _record(trial).get("step", 0)
            if reports and 3 * EVERY <= step <= STEPS // 2:
                return trial, int(reports[-1]["pid"])
        return None

    victim, pid = _wait_for("a trial's third report", a_trial_midway, cluster, "sweep")
    os.kill(pid, signal.SIGKILL)
    resumed = _wait_for("the killed trial to report from a new process",
                        lambda: any(r["pid"] != pid for r in _reports(victim)[-1:]), cluster, "sweep")  # fmt: skip
    assert resumed

    # 2. The job's driver is stopped while trials remain; `resume`, submitted the same way, finishes the study.
    def two_done_and_more_running() -> bool:
        records = [_record(t) for t in experiment.glob("trial_*")]
        done = sum(1 for r in records if r.get("status") == "completed")
        return done >= 2 and any(r.get("status") == "running" and r.get("step", 0) < STEPS for r in records)

    _wait_for("two trials done and another running", two_done_and_more_running, cluster, "sweep")
    cluster.ray("job", "stop", "sweep")
    assert cluster.wait_job("sweep", timeout_s=90) == "STOPPED"
    # (result.json holds what Tune's last snapshot synced: up to its period behind the records)
    trials = sorted(experiment.glob("trial_*"))
    finished_before = {t.name: len(_reports(t)) for t in trials if _record(t)["status"] == "completed"}

    _submit(cluster, "resume", "infogan-study", "resume", NAME, "--storage-path", str(storage), "--address", "auto",
            wait=True)  # fmt: skip
    assert cluster.wait_job("resume", timeout_s=30) == "SUCCEEDED", cluster.job_logs("resume")[-4000:]

    # Every trial finished. The killed one resumed from its checkpoint (never from scratch); the
    # trials finished before the stop were not trained again (at most Tune's last report repeated,
    # where its saved state predates their end: result.json reaches storage with Tune's snapshots).
    trials = sorted(experiment.glob("trial_*"))
    assert len(trials) == SEEDS
    for trial in trials:
        reports = _reports(trial)
        assert reports[-1]["step"] == STEPS, (trial.name, [r["step"] for r in reports])
        assert json.loads((trial / "infogan-trial.json").read_text())["status"] == "completed"
        if trial.name in finished_before:  # not trained again: its steps in order, only the last one twice at most
            seen = [r["step"] for r in reports]
            assert seen == sorted(seen) and len(seen) - len(set(seen)) <= 1 and seen.count(STEPS) >= 1, seen
    steps = [r["step"] for r in _reports(victim)]
    assert steps.count(EVERY) == 1 and len({r["pid"] for r in _reports(victim)}) >= 2, steps
    assert cluster.alive_nodes() == 2  # a trial's process died, not its node

    # `status` and `analyze` read the result (no Ray needed for either).
    status = subprocess.run([str(BIN / "infogan-study"), "status", NAME, "--storage-path", str(storage)],
                            env=cluster.env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert f"{SEEDS} trials: {SEEDS} COMPLETED" in status.stdout
    rows = [line.split() for line in status.stdout.splitlines() if line.startswith(victim.name.removeprefix("trial_"))]
    assert rows and "COMPLETED" in rows[0]
    analyze = subprocess.run([str(BIN / "infogan-study"), "analyze", str(experiment), "--quick", "--no-selection",
                              "--quiet"], env=cluster.env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert analyze.returncode == 0, analyze.stderr[-3000:]
    assert f"analyzed {SEEDS} trials ({SEEDS} scored)" in analyze.stdout
    assert (experiment / "trials.parquet").is_file()
