"""Bad input to sweep/search/resume/status: one line on stderr, exit status 2, nothing started
(no Ray session, no study folder). Also `spaces` and the objective syntax."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import ray

from study.cli import main
from study.plan import parse_objective
from trainables.errors import BadInputError

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
        (["search", "--objective", "eval/mig", *QUICK], "eval/mig:max or eval/mig:min"),
        (["search", "--scheduler", "asha", "--objective", "mi/cat", "--objective", "loss/g", *QUICK],
         "--scheduler asha stops trials on one metric"),
    ],
)  # fmt: skip
def test_bad_sweep_and_search_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                        message: str) -> None:  # fmt: skip
    line = _run_bad(capsys, [*argv, "--storage-path", str(tmp_path)])
    assert message in line
    assert not any(tmp_path.iterdir())  # no study folder


def test_empty_grid_in_a_space_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    space = tmp_path / "empty.py"
    space.write_text("from ray import tune\nDESCRIPTION = 'x'\ndef space():\n    return {'seed': tune.grid_search([])}")
    line = _run_bad(capsys, ["sweep", str(space), *QUICK, "--storage-path", str(tmp_path / "r")])
    assert "grid for seed is empty" in line


def test_unreachable_address_fails_fast(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    port = _closed_port()
    start = time.monotonic()
    line = _run_bad(capsys, ["sweep", "seed-ablation", *QUICK, "--storage-path", str(tmp_path),
                             "--address", f"127.0.0.1:{port}"])  # fmt: skip
    assert time.monotonic() - start < 30
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in line
    assert not any(tmp_path.iterdir())


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
    line = _run_bad(capsys, ["sweep", "categories", *QUICK, flag, value, "--storage-path", str(tmp_path)])
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
    assert (parse_objective("mi/cat").mode, parse_objective("loss/g").mode) == ("max", "min")
    assert parse_objective("eval/fid:min").metric == "eval/fid"
    with pytest.raises(BadInputError):
        parse_objective(":max")
