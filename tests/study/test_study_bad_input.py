"""Bad input to sweep/search/resume/status/analyze: one line on stderr, exit status 2, nothing
started (no Ray session) and nothing written (no study folder, not even the storage folder). Also
`spaces` and the objective syntax."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray

from study.cli import main
from study.plan import parse_objective, reported_metrics
from trainables.errors import BadInputError
from trainables.loop import METRICS

FIXTURE = Path(__file__).parent / "fixtures" / "fixture-sweep"
REPO = Path(__file__).resolve().parents[2]

QUICK = ["--dataset", "basicprop-line", "--steps", "4", "--set", "width=0.125", "--batch-size", "8"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_bad(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("infogan-study: error: "), captured.err
    assert not ray.is_initialized()
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "no-such-space", *QUICK], "unknown search space 'no-such-space'; known: categories, "),
        (["sweep", "seed-ablation", "--seeds", "0", *QUICK], "--seeds 0"),
        (["sweep", "seed-ablation", "--set", "noise_dimm=3", *QUICK], "unknown config field 'noise_dimm'"),
        (["sweep", "categories", "--set", "cat_dim=4", *QUICK], "cat_dim is set on the command line and by search"),
        (["sweep", "seed-ablation", "--cpus-per-trial", "0", *QUICK], "--cpus-per-trial"),
        (["sweep", "seed-ablation", "--scheduler", "asha", "--metric", "mi/cat:up", *QUICK], "max or min"),
        (["sweep", "seed-ablation", "--name", "a/b", *QUICK], "--name 'a/b'"),
        (["search", "--space", "categories", *QUICK], "`search` needs distributions"),
        (["search", "--objective", "d/real", *QUICK], "--objective d/real: say which way is better, e.g. d/real:max"),
        (["search", "--objective", "nosuch/metric:max", *QUICK], "--objective nosuch/metric:max: no trial reports "
         "'nosuch/metric'; they report step, loss/d, loss/g, loss/info, d/real, d/fake, mi/cat_nats, mi/cat, mi/cont, "
         "instance_noise, perf/images_per_s, diverged, gen/cat_acc, gen/valid"),
        (["sweep", "seed-ablation", "--metric", "nosuch:max", *QUICK],
         "--metric nosuch:max: no trial reports 'nosuch'"),
        (["sweep", "seed-ablation", "--batch-size", "1000000000", *QUICK[:-2]],
         "batch_size=1000000000 is out of range: batch_size must be <= 65536"),
        (["search", "--scheduler", "asha", "--objective", "mi/cat", "--objective", "loss/g", *QUICK],
         "--scheduler asha stops trials on one metric"),
        (["sweep", "categories", "--seed-start", "3", *QUICK], "--seed-start 3: give it with --seeds N"),
        (["sweep", "categories", "--seeds", "2", "--seed-start", "-1", *QUICK], "--seed-start -1"),
        (["sweep", "categories", "--num-samples", "3", *QUICK],
         "--num-samples 3 repeats search space categories, which has nothing random: every repeat would train the "
         "same trials with the same seeds; replicate over seeds with --seeds N (--seed-start S)"),
        (["sweep", "categories", "--grace-period", "2", *QUICK], "--grace-period is ASHA's: add --scheduler asha"),
        (["sweep", "categories", "--scheduler", "asha", "--reduction-factor", "1", *QUICK], "must be > 1"),
        (["sweep", "categories", "--scheduler", "asha", "--grace-period", "99", *QUICK, "--set", "report_every=2"],
         "--grace-period 99: a trial reports 2 times (steps / report_every); give at most 2"),
        (["sweep", "categories", "--tracking-uri", "sqlite:///x.db", *QUICK], "--tracking-uri without --tracking"),
        (["sweep", "categories", "--tracking", "mlflow", "--pack", "2", *QUICK], "--tracking mlflow with --pack"),
    ],
)  # fmt: skip
def test_bad_sweep_and_search_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                        message: str) -> None:  # fmt: skip
    line = _run_bad(capsys, [*argv, "--storage-path", str(tmp_path / "results")])
    assert message in line
    assert not any(tmp_path.iterdir())  # no storage folder, no study folder


def test_empty_grid_in_a_space_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    space = tmp_path / "empty.py"
    space.write_text("from ray import tune\nDESCRIPTION = 'x'\ndef space():\n    return {'seed': tune.grid_search([])}")
    line = _run_bad(capsys, ["sweep", str(space), *QUICK, "--storage-path", str(tmp_path / "r")])
    assert "grid for seed is empty" in line


def test_unreachable_address_fails_fast(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    port = _closed_port()
    start = time.monotonic()
    line = _run_bad(capsys, ["sweep", "seed-ablation", *QUICK, "--storage-path", str(tmp_path / "results"),
                             "--address", f"127.0.0.1:{port}"])  # fmt: skip
    assert time.monotonic() - start < 30
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in line
    assert not any(tmp_path.iterdir())  # not even the storage folder


def test_ray_client_address_that_is_unreachable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    port = _closed_port()
    line = _run_bad(capsys, ["sweep", "categories", *QUICK, "--storage-path", str(tmp_path),
                             "--address", f"ray://127.0.0.1:{port}"])  # fmt: skip
    assert f"--address ray://127.0.0.1:{port}: cannot reach" in line


def test_malformed_address(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _run_bad(capsys, ["sweep", "categories", *QUICK, "--storage-path", str(tmp_path), "--address", "nohost"])
    assert "expected auto, HOST:PORT or ray://HOST:PORT" in line


def test_unwritable_storage_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = _run_bad(capsys, ["sweep", "seed-ablation", *QUICK, "--storage-path", str(blocker / "results")])
    assert "--storage-path" in line and "not writable" in line


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--cpus-per-trial", "4096", "this machine has"),
        ("--gpus-per-trial", "9999", "--gpus-per-trial 9999: this machine"),
    ],
)
def test_trial_that_cannot_fit_on_this_machine(capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str,
                                               value: str, message: str) -> None:  # fmt: skip
    line = _run_bad(capsys, ["sweep", "categories", *QUICK, flag, value, "--storage-path", str(tmp_path / "results")])
    assert message in line and not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["resume", "status"])
def test_unknown_study_name(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str) -> None:
    (tmp_path / "other").mkdir()
    line = _run_bad(capsys, [command, "nope", "--storage-path", str(tmp_path)])
    assert "no study named 'nope'" in line


def test_spaces_lists_names_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in out]
    assert names == sorted(names) and "seed-ablation" in names and "optuna" in names
    assert all(len(line.split(maxsplit=1)) == 2 for line in out)


def test_objective_syntax() -> None:
    reported = reported_metrics(({"dataset": "basicprop-line"},))
    assert (parse_objective("mi/cat", reported).mode, parse_objective("loss/g", reported).mode) == ("max", "min")
    assert parse_objective("gen/cat_acc", reported).mode == "max"
    assert parse_objective("d/fake:min", reported).metric == "d/fake"
    for bad in (":max", "mi/cat:up", "eval/fid:min", "d/real"):
        with pytest.raises(BadInputError):
            parse_objective(bad, reported)


def test_a_study_optimises_the_generator_side_accuracy_unless_told_where_its_data_has_an_evaluator() -> None:
    from study.options import default_objective

    assert default_objective(reported_metrics(({"dataset": "basicprop-line"},))) == "gen/cat_acc:max"
    assert default_objective(reported_metrics(({"dataset": "mnist"},))) == "gen/cat_acc:max"
    folder = ({"dataset": "folder"},)  # unlabelled images: nothing reads a factor off G's images
    assert default_objective(reported_metrics(folder)) == "mi/cat:max"
    assert default_objective(reported_metrics((*folder, {"dataset": "mnist"}))) == "mi/cat:max"


def test_the_reported_metrics_are_the_loops_and_the_probes_where_every_dataset_has_an_evaluator() -> None:
    assert list(reported_metrics(({"dataset": "mnist"}, {"dataset": "basicprop-rects"}))) == [
        *METRICS,
        "gen/cat_acc",
        "gen/valid",
    ]
    assert reported_metrics(({"dataset": "mnist"}, {"dataset": "celeba"})) == METRICS  # CelebA's trials: no probe
    assert reported_metrics(({"dataset": "folder"},)) == METRICS


def test_a_probe_metric_of_data_without_an_evaluator_is_refused(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:  # fmt: skip
    line = _run_bad(capsys, ["sweep", "categories", "--dataset", "folder", "--data-root", str(tmp_path / "art"),
                             "--metric", "gen/cat_acc:max", "--storage-path", str(tmp_path / "results")])  # fmt: skip
    assert "no trial reports 'gen/cat_acc'" in line and "gen/valid" not in line
    assert not any(tmp_path.iterdir())


def _broken_image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "art"
    folder.mkdir()
    (folder / "punk.png").write_bytes(b"not a png")
    return folder


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda tmp: ["--dataset", "mnist", "--data-root", str(tmp / "nowhere")], "MNIST not found under"),
        (lambda tmp: ["--dataset", "folder", "--data-root", str(_broken_image_folder(tmp))], "could not read image"),
    ],
    ids=["missing", "unreadable"],
)
def test_data_the_trials_cannot_read_is_refused_before_the_first_trial(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data, message: str
) -> None:
    monkeypatch.setenv("INFOGAN_STUDY_OFFLINE", "1")
    argv = ["sweep", "categories", *data(tmp_path), "--steps", "4", "--storage-path", str(tmp_path / "results")]
    before = sorted(tmp_path.rglob("*"))
    line = _run_bad(capsys, argv)
    assert message in line
    assert sorted(tmp_path.rglob("*")) == before  # no storage folder, no data folder made


@pytest.fixture
def study_copy(tmp_path: Path) -> Path:
    """The committed fixture study (one completed trial with a checkpoint, one diverged, one errored)."""
    shutil.copytree(FIXTURE, tmp_path / "results" / FIXTURE.name)
    return tmp_path / "results" / FIXTURE.name


def test_analyze_of_an_experiment_whose_checkpoints_were_deleted(capsys: pytest.CaptureFixture[str],
                                                                 study_copy: Path) -> None:  # fmt: skip
    for checkpoint in study_copy.glob("*/checkpoint_*"):
        shutil.rmtree(checkpoint)
    before = sorted(study_copy.parent.rglob("*"))
    line = _run_bad(capsys, ["analyze", str(study_copy), "--quick"])
    assert f"no checkpoint left to score in {study_copy}: 1 trial(s) saved checkpoints" in line
    assert sorted(study_copy.parent.rglob("*")) == before  # no parquet, no classifier cache


def test_analyze_with_an_unreachable_address_fails_fast(capsys: pytest.CaptureFixture[str], study_copy: Path) -> None:
    port = _closed_port()
    before = sorted(study_copy.parent.rglob("*"))
    start = time.monotonic()
    line = _run_bad(capsys, ["analyze", str(study_copy), "--quick", "--address", f"127.0.0.1:{port}"])
    assert time.monotonic() - start < 30
    assert f"--address 127.0.0.1:{port}: cannot reach a Ray cluster" in line
    assert sorted(study_copy.parent.rglob("*")) == before


def test_analyze_into_an_unwritable_out(capsys: pytest.CaptureFixture[str], study_copy: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = sorted(tmp_path.rglob("*"))
    line = _run_bad(capsys, ["analyze", str(study_copy), "--quick", "--out", str(blocker / "tables")])
    assert f"--out {blocker / 'tables'} is not writable (Not a directory: {blocker})" in line
    assert sorted(tmp_path.rglob("*")) == before


def test_tracking_with_remote_storage_needs_a_tracking_uri(capsys: pytest.CaptureFixture[str]) -> None:
    line = _run_bad(capsys, ["sweep", "categories", *QUICK, "--tracking", "mlflow", "--storage-path", "s3://b/r"])
    assert "the default SQLite store needs a local folder; add --tracking-uri" in line


def test_a_batch_no_machine_here_holds_is_refused_before_ray_starts(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    """A 28x28 network at width 8 and batch 65,536 needs some 100 GiB for one step; as `train`
    refuses it, so does a sweep, instead of every trial erroring with Ray's tracebacks."""
    line = _run_bad(capsys, ["sweep", "categories", "--dataset", "basicprop-line", "--steps", "4", "--set", "width=8",
                             "--batch-size", "65536", "--storage-path", str(tmp_path / "results")])  # fmt: skip
    assert re.fullmatch(r"infogan-study: error: batch_size=65536: one step needs at least [\d.]+ GiB on cpu and "
                        r"[\d.]+ GiB are free; use a smaller batch_size \(or width\)", line), line  # fmt: skip
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------- damaged or moved studies
@pytest.mark.parametrize("text", ["{not json", '{"kind": "sweep"}', "[]"], ids=["not-json", "missing-keys", "a-list"])
@pytest.mark.parametrize("command", ["status", "resume"])
def test_a_damaged_study_record(capsys: pytest.CaptureFixture[str], study_copy: Path, command: str, text: str) -> None:
    (study_copy / "infogan-study.json").write_text(text)
    before = sorted(study_copy.parent.rglob("*"))
    line = _run_bad(capsys, [command, study_copy.name, "--storage-path", str(study_copy.parent)])
    assert f"{study_copy / 'infogan-study.json'} is not a readable study record (" in line
    assert sorted(study_copy.parent.rglob("*")) == before


def test_analyze_of_a_study_whose_every_trial_errored(capsys: pytest.CaptureFixture[str], study_copy: Path) -> None:
    for trial in ("trial_86c12_00000", "trial_86c12_00001"):  # keep only the errored one
        shutil.rmtree(study_copy / trial)
    before = sorted(study_copy.parent.rglob("*"))
    line = _run_bad(capsys, ["analyze", str(study_copy), "--quick"])
    assert line == (f"infogan-study: error: nothing to score in {study_copy}: none of its 1 trial(s) saved a "
                    "checkpoint (1 error); `infogan-study status fixture-sweep` shows why")  # fmt: skip
    assert sorted(study_copy.parent.rglob("*")) == before  # no parquet, no classifier cache


def _trials_table(path: Path) -> None:
    import pyarrow as pa

    from analysis.schema import TRIALS_SCHEMA, write_table

    write_table(pa.Table.from_pylist([{"trial_id": "t0"}], schema=TRIALS_SCHEMA), "trials", path)


@pytest.mark.parametrize("damaged", ["trials", "curves"])
@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_report_of_damaged_parquet_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, damaged: str,
                                         how: str) -> None:  # fmt: skip
    experiment = tmp_path / "study"
    experiment.mkdir()
    _trials_table(experiment / "trials.parquet")
    _trials_table(experiment / "curves.parquet")  # a valid parquet file, cut below
    target = experiment / f"{damaged}.parquet"
    data = target.read_bytes()
    target.write_bytes(b"not parquet at all" if how == "garbage" else data[: len(data) // 2])
    before = sorted(tmp_path.rglob("*"))
    line = _run_bad(capsys, ["report", str(experiment)])
    assert line.startswith(f"infogan-study: error: {target} is not a readable parquet file (")
    assert line.endswith("); run `infogan-study analyze` again")
    assert sorted(tmp_path.rglob("*")) == before  # no report.html


def test_argument_errors_come_before_the_heavy_imports(tmp_path: Path) -> None:
    """Ray, torch and Optuna took 16-25 s to import on a loaded machine; a wrong flag or study name
    of sweep, search, resume or status is answered without them (as `train`'s is)."""
    (tmp_path / "other").mkdir()
    cases = [
        (["sweep", "seed-ablation", *QUICK, "--num-samples", "0"], "--num-samples 0: must be >= 1"),
        (["sweep", "seed-ablation", *QUICK, "--set", "lamda_info=1"], "unknown config field 'lamda_info'"),
        (["search", *QUICK, "--name", "a/b"], "--name 'a/b'"),
        (["search", *QUICK, "--objective", "mi/cat:up"], "the direction must be max or min"),
        (["resume", "nope", "--storage-path", str(tmp_path)], "no study named 'nope'"),
        (["status", "nope", "--storage-path", str(tmp_path)], "no study named 'nope'"),
    ]
    code = (
        "import json, sys\nfrom study.cli import main\ncases = json.loads(sys.argv[1])\n"
        "codes = [main(argv) for argv, _ in cases]\n"
        "print(json.dumps([codes, [m for m in ('torch', 'ray', 'optuna') if m in sys.modules]]))"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert json.loads(done.stdout) == [[2] * len(cases), []], done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(cases)
    for line, (_, needle) in zip(lines, cases, strict=True):
        assert line.startswith("infogan-study: error: ") and needle in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]
