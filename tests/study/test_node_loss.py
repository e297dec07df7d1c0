"""A multi-node Ray cluster on this machine (an empty head and two one-CPU worker nodes, one trial
on each): the node running a trial is removed mid-way; with --max-failures 1 the trial restarts
on a replacement node from its last checkpoint and finishes with the right iteration count, and
the other trial is untouched. No trial is lost."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from study.cli import main
from study.ray_runtime import connect
from study.status import load_study

STEPS, EVERY = 600, 20
SPACE = "from ray import tune\nDESCRIPTION = 'two seeds'\ndef space():\n    return {'seed': tune.grid_search([0, 1])}\n"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # Fast failure detection so the test does not wait out the production health-check timeouts.
    head_args = {"num_cpus": 0, "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}}
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    connect(cluster.address)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _steps(trial_dir: Path) -> list[int]:
    lines = (trial_dir / "result.json").read_text().splitlines() if (trial_dir / "result.json").exists() else []
    return [int(json.loads(line)["step"]) for line in lines if line.strip()]


def _remove_a_trial_node_midway(cluster: Cluster, experiment: Path, sweep: threading.Thread) -> bool:
    """Once both trials have reported three times (and have most of their run left), kill one
    worker node outright and add a replacement, as an autoscaler would. Runs in the main thread
    (Ray starts node processes only from there); the sweep's driver runs in `sweep`."""
    while sweep.is_alive():
        progress = [_steps(d) for d in experiment.glob("trial_*")]
        if len(progress) == 2 and all(len(p) >= 3 and p[-1] <= STEPS // 2 for p in progress):
            driver_node = ray._private.worker.global_worker.node._raylet_socket_name
            victim = next(n for n in cluster.worker_nodes if n._raylet_socket_name != driver_node)
            cluster.remove_node(victim, allow_graceful=False)
            cluster.add_node(num_cpus=1)
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_trial_resumes_from_checkpoint_after_its_node_is_lost(cluster: Cluster, tmp_path: Path) -> None:
    space = tmp_path / "space.py"
    space.write_text(SPACE)
    experiment = tmp_path / "results" / "nodeloss"
    argv = ["sweep", str(space), "--dataset", "basicprop-line", "--batch-size", "8", "--set", "width=0.125",
            "--steps", str(STEPS), "--set", f"report_every={EVERY}", "--max-failures", "1",
            "--name", "nodeloss", "--storage-path", str(tmp_path / "results")]  # fmt: skip
    exit_code: list[int] = []
    sweep = threading.Thread(target=lambda: exit_code.append(main(argv)), daemon=True)
    sweep.start()
    removed = _remove_a_trial_node_midway(cluster, experiment, sweep)
    sweep.join(timeout=600)
    assert removed, "the trials finished before a node could be removed"
    assert exit_code == [0]

    trials = load_study(str(experiment)).trials
    assert len(trials) == 2 and all(t.state == "COMPLETED" for t in trials)
    assert sorted(t.failures for t in trials) == [0, 1]
    for t in trials:
        assert t.step == STEPS and t.record.run_status == "completed"
        lines = (t.record.path / "result.json").read_text().splitlines()
        assert json.loads(lines[-1])["training_iteration"] == STEPS // EVERY
        steps = _steps(t.record.path)
        assert steps.count(EVERY) == 1  # never restarted from scratch
        if t.failures:  # resumed from its last checkpoint: at most one report repeated
            assert len(steps) - len(set(steps)) <= 1 and steps[-1] == STEPS
        else:
            assert steps == list(range(EVERY, STEPS + 1, EVERY))
