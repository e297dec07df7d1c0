"""`sweep --pack K` with real Ray: one Tune trial trains a pack, and every member is a trial to
`status`, `analyze` and the report, with its own checkpoints (ordinary run checkpoints); a member
diverging on purpose stops alone while the others finish. `--pack` is refused with ASHA and search."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analysis.collect import analyze_experiment
from analysis.scoring import QUICK
from analysis.tune_folder import read_experiment
from study.cli import main
from study.status import load_study
from trainables.checkpoint import load_model
from trainables.loop import train

FAST = ["--dataset", "basicprop-line", "--batch-size", "8", "--set", "width=0.125"]


def _space_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "space.py"
    path.write_text(f"from ray import tune\nDESCRIPTION = 'test space'\ndef space():\n    return {body}\n")
    return str(path)


@pytest.mark.slow
def test_packed_sweep_members_are_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = _space_file(tmp_path, "{'lr_d': tune.grid_search([2e-4, 1e30]), 'seed': tune.grid_search([0, 1])}")
    argv = ["sweep", space, *FAST, "--steps", "20", "--set", "report_every=10", "--pack", "4", "--name", "packed",
            "--storage-path", str(tmp_path / "results")]  # fmt: skip
    assert main(argv) == 0
    assert "4 trial(s) trained in 1 pack(s) of up to 4" in capsys.readouterr().out
    view = load_study(str(tmp_path / "results" / "packed"))
    assert len(view.trials) == 4 and view.tune_note == ""
    for t in view.trials:
        assert t.failures == 0 and t.record.pack_id and t.trial_id.startswith(t.record.pack_id)
        if t.config["lr_d"] > 1:
            assert t.state == "DIVERGED" and t.note.startswith(f"diverged by step {t.step}") and t.step == 10
            assert not t.record.checkpoints  # a diverged run saves none
        else:
            assert t.state == "COMPLETED" and t.step == 20 and t.metrics["mi/cat"] >= 0
            final = t.record.choose_checkpoint("final")
            assert final.step == 20 and final.path.name.startswith("member_")
            loaded = load_model(final.path)  # an ordinary run's checkpoint
            assert loaded.step == 20 and loaded.config.seed == t.config["seed"]
            resumed = train(loaded.config.replace(steps=22), device="cpu", resume_from=final.path)  # train --resume
            assert resumed.status == "completed" and resumed.step == 22
    experiment = read_experiment(tmp_path / "results" / "packed")
    files = analyze_experiment(experiment, counts=QUICK, selection=False)
    rows = pq.read_table(files.trials).to_pylist()
    assert sorted(r["status"] for r in rows) == ["completed", "completed", "diverged", "diverged"]
    assert len({r["trial_id"] for r in rows}) == 4


@pytest.mark.parametrize("extra", [["--scheduler", "asha"]])
def test_pack_is_refused_with_asha_and_search(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              extra: list[str]) -> None:  # fmt: skip
    store = ["--storage-path", str(tmp_path)]
    assert main(["sweep", "lambda-ratio", *FAST, "--pack", "4", *extra, *store]) == 2
    assert "--pack with --scheduler asha" in capsys.readouterr().err
    assert main(["search", *FAST, "--pack", "4", "--num-samples", "2", *store]) == 2
    assert "--pack is for `sweep`" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_pack_whose_process_dies_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    """The pack's worker process is killed mid-run (as when its node is lost): Tune restarts the
    pack's trial (`--max-failures`), which continues every member from the pack's last checkpoint,
    never from step 0, and both members finish as ordinary completed trials."""
    steps, every = 300, 20
    space = _space_file(tmp_path, "{'seed': tune.grid_search([0, 1])}")
    storage = tmp_path / "results"
    cli = Path(sys.executable).parent / "infogan-study"
    sweep = subprocess.Popen(
        [str(cli), "sweep", space, *FAST, "--steps", str(steps), "--set", f"report_every={every}", "--pack", "2",
         "--name", "killed", "--storage-path", str(storage)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:  # the pack's third report (its pid is in every report), well before the end
            assert sweep.poll() is None and time.monotonic() < deadline, "the pack never reached its third report"
            reports = [_json_lines(f) for f in (storage / "killed").glob("trial_*/result.json")]
            if reports and len(reports[0]) >= 3:
                break
            time.sleep(0.2)
        assert reports[0][-1]["step"] < steps // 2
        os.kill(int(reports[0][-1]["pid"]), signal.SIGKILL)
        out, _ = sweep.communicate(timeout=240)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out[-3000:]
    (trial,) = (storage / "killed").glob("trial_*")
    reports = _json_lines(trial / "result.json")
    assert len({r["pid"] for r in reports}) == 2, "the pack ran in a second process"
    steps_seen = [r["step"] for r in reports]
    assert steps_seen.count(every) == 1 and steps_seen[-1] == steps, steps_seen  # resumed, not restarted
    view = load_study(str(storage / "killed"))
    assert sorted((t.state, t.step) for t in view.trials) == [("COMPLETED", steps)] * 2


def _json_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(ValueError):  # a line being written
            out.append(json.loads(line))
    return out
