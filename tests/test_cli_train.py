"""`infogan-study train` end to end, a diverged run's exit status 3, and its answers to bad input:
one line, exit 2, nothing written."""

from __future__ import annotations

import json
import re

import pytest

from study.cli import main
from study.commands.train import EXIT_DIVERGED

FAST = ["--dataset", "basicprop-line", "--steps", "4", "--batch-size", "8", "--quiet",
        "--set", "width=0.125", "--set", "report_every=2"]  # fmt: skip


def test_train_writes_checkpoint_metrics_and_traversals(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--out", str(out)]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2.0, 4.0]
    assert (out / "checkpoint.pt").is_file()
    assert {p.name for p in out.glob("traversal_*.png")} == {"traversal_cat0.png", "traversal_cont0.png", "traversal_cont1.png"}
    assert "completed at step 4" in capsys.readouterr().out

    # --resume continues the same run to more steps, appending to its metrics
    assert main(["train", *FAST, "--steps", "6", "--out", str(out), "--resume"]) == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2.0, 4.0, 6.0]


@pytest.mark.parametrize(
    "settings",
    [["--set", "d_optimizer=sgd", "--set", "lr_d=1e8"], ["--set", "lr_d=1e6", "--set", "lr_g=1e6"]],
    ids=["sgd-lr-1e8", "adam-lr-1e6"],
)
def test_a_diverging_run_exits_3_with_the_loops_reason(tmp_path, capsys, settings):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--steps", "20", *settings, "--out", str(out)]) == EXIT_DIVERGED == 3
    captured = capsys.readouterr()
    assert "diverged at step" in captured.out
    [reason] = [line for line in captured.err.splitlines() if line.startswith("infogan-study: ")]
    assert re.fullmatch(r"infogan-study: diverged by step \d+: loss/\w+ (is nan|is inf|= \S+, beyond 1e\+04)", reason)
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["diverged"] == 1.0
    assert not (out / "checkpoint.pt").exists()  # no blown-up weights saved (it diverged before a checkpoint)


def test_the_exit_status_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "3 diverged" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--set", "lamda_info=1"], "unknown config field 'lamda_info'; did you mean lambda_info?"),
        (["--set", "noise_dim=lots"], "noise_dim='lots' is not a valid int"),
        (["--set", "lambda_info=-1"], "lambda_info=-1.0 is out of range: lambda_info must be >= 0"),
        (["--set", "cat_dim=1"], "cat_dim=1 is out of range"),
        (["--set", "noise_dim=0", "--set", "n_cat_codes=0", "--set", "n_cont_codes=0"], "no latent input"),
        (["--batch-size", "1"], "batch_size=1 is out of range: batch_size must be >= 2"),
        (["--dataset", "cifar"], "dataset='cifar' is not allowed; choose one of"),
        (["--set", "width"], "expected field=value"),
    ],
)
def test_bad_config_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, extra, needle):
    out = tmp_path / "run"
    assert main(["train", *FAST, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("infogan-study: error: ") and needle in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_unreadable_data_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INFOGAN_STUDY_OFFLINE", "1")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist", "--data-root", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "MNIST not found under" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unwritable_out_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", *FAST, "--out", str(blocker / "run")]) == 2
    assert "is not writable" in capsys.readouterr().err
    assert main(["train", *FAST, "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_out_holding_a_run_needs_resume(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("x")
    assert main(["train", *FAST, "--out", str(out)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert main(["train", *FAST, "--out", str(out), "--resume"]) == 2
    assert "no checkpoint.pt" in capsys.readouterr().err
