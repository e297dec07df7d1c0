"""`infogan-study train` end to end, a diverged run's exit status 3, and its answers to bad input:
one line, exit 2, nothing written (a config error before torch is even imported)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

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
    assert {p.name for p in out.glob("traversal_*.png")} == {
        "traversal_cat0.png",
        "traversal_cont0.png",
        "traversal_cont1.png",
    }
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
        (["--batch-size", "1000000000"], "batch_size=1000000000 is out of range: batch_size must be <= 65536"),
        (["--set", "sgd_momentum=1"], "sgd_momentum=1.0 is out of range: sgd_momentum must be < 1.0"),
        (["--set", "arch=dcgan32"], "unknown config field 'arch'"),  # removed: the image side decides
        (["--dataset", "cifar"], "dataset='cifar' is not allowed; choose one of"),
        (["--set", "width"], "expected field=value"),
        (["--device", "tpu"], "--device tpu: use auto, cpu, cuda or cuda:N"),  # torch's own error: a traceback
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
    assert not any(tmp_path.iterdir())  # neither --out nor the data root


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_the_first_step(tmp_path, capsys):
    """64x64 sprites at width 2 and batch 60,000 need hundreds of GiB for one step."""
    out = tmp_path / "run"
    start = time.monotonic()
    assert main(["train", "--dataset", "sprites", "--batch-size", "60000", "--set", "width=2", "--steps", "2",
                 "--quiet", "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch(
        r"infogan-study: error: batch_size=60000: one step needs at least [\d.]+ GiB on cpu and [\d.]+ GiB are free; "
        r"use a smaller batch_size \(or width\)",
        err[0],
    ), err
    assert time.monotonic() - start < 60 and not out.exists()


def test_running_out_of_memory_mid_run_is_one_error_line_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    """An allocation that fails at the first step (the CPU allocator's RuntimeError): after the
    run's announcement, one line, exit 2, and --out (made at the first report) does not exist."""
    from trainables.loop import Trainer

    def no_memory(self):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 3136000000000 bytes. Error code 12 (Cannot allocate memory)")  # fmt: skip

    monkeypatch.setattr(Trainer, "train_step", no_memory)
    out = tmp_path / "run"
    assert main(["train", *FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("training infogan on basicprop-line") and err[1:] == [
        "infogan-study: error: out of memory on cpu at step 1 with batch_size=8; use a smaller batch_size (or width)"
    ]
    assert not out.exists()


def test_a_config_error_comes_before_the_heavy_imports():
    """On a loaded machine importing torch, Ray and Optuna took 25-35 s; a typo must not wait for it."""
    code = ("import sys\nfrom study.cli import main\nrc = main(['train', '--set', 'lamda_info=1'])\n"
            "print(rc, [m for m in ('torch', 'ray', 'optuna') if m in sys.modules])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.stdout.strip() == "2 []", done.stderr
    assert done.stderr.strip() == "infogan-study: error: unknown config field 'lamda_info'; did you mean lambda_info?"


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
