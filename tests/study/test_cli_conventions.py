"""The CLI's conventions, without Ray processes: every subcommand's help carries its exit statuses
and the defaults of its options; `--dry-run` prints the plan and writes nothing; `--seed-start`;
ASHA's settings; `list`; a renamed study folder is the study named; the live progress line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from study.cli import ORDER, main
from study.plan import Objective, StudySpec, find_spec, write_spec
from study.progress import StudyProgress, format_duration

FIXTURE = Path(__file__).parent / "fixtures" / "fixture-sweep"
QUICK = ["--dataset", "basicprop-line", "--steps", "40", "--set", "width=0.125", "--batch-size", "8"]


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare on one


@pytest.mark.parametrize("command", ORDER)
def test_every_subcommand_says_its_exit_statuses(capsys: pytest.CaptureFixture[str], command: str) -> None:
    text = _help(capsys, command)
    assert "exit status: 0" in text and "2 " in text.split("exit status:")[1]


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        ("sweep", ["--num-samples N draws", "(default 1)", "--scheduler {asha,none}", "(default none)",
                   "--cpus-per-trial C CPUs per trial, also torch's threads (default 1)",
                   "--gpus-per-trial G GPUs per trial; fractions share a GPU, 0.25 runs four on one (default 0)",
                   "(default 2)", "(default ./results)", "(default: a ninth of a trial's reports, at least 1)",
                   "keep the best 1/F of the trials at each rung (default 3)"]),
        ("search", ["--num-samples N trials Optuna proposes (default 20", "--startup-trials N TPE's random start-up "
                    "trials (default 10)", "(default optuna)"]),
        ("train", ["(default auto)", "(default 1000;"]),
        ("demo", ["(default 1500)", "(default 3)", "(default basicprop-line)"]),
    ],
)  # fmt: skip
def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str], command: str, defaults: list[str]) -> None:
    text = _help(capsys, command)
    for needle in defaults:
        assert needle in text, needle


def test_help_says_where_tensorboard_and_mlflow_look(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "sweep")
    assert "tensorboard --logdir STORAGE_PATH/NAME" in text
    assert "mlflow ui --backend-store-uri sqlite:///STORAGE_PATH/NAME/mlflow.db" in text


def test_help_config_says_model_kind_is_derived(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help-config"])
    out = capsys.readouterr().out
    assert "model_kind (gan, gan+codes, infogan, infogan-codes-only, infogan-cat-only, bi-infogan) is derived" in out
    [lr_g] = [line for line in out.splitlines() if line.split()[:1] == ["lr_g"]]
    assert "Q's head with q_update=g" in lr_g
    [fixed] = [line for line in out.splitlines() if line.split()[:1] == ["q_fixed_std"]]
    assert "true: Q's std for the continuous codes is fixed to 1 (the official code); false: Q learns" in fixed


def test_setting_model_kind_says_it_is_derived(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--set", "model_kind=gan", "--out", str(tmp_path / "run")]) == 2
    assert "model_kind is derived from the other fields, not set" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- --dry-run
def _dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> dict[str, str]:
    storage = tmp_path / "results"
    assert main([*argv, "--storage-path", str(storage), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert not storage.exists()  # nothing written
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in out[1:]} | {"head": out[0]}


def test_sweep_dry_run_prints_the_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import ray

    argv = ["sweep", "seed-ablation", *QUICK, "--seeds", "2", "--seed-start", "5", "--name", "plan",
            "--cpus-per-trial", "0.5", "--max-concurrent", "3"]  # fmt: skip
    plan = _dry_run(capsys, tmp_path, argv)
    assert plan["head"] == "sweep plan:"
    assert plan["trials"] == "12 (12 grid point(s) x 1 sample(s)), each 0.5 CPU + 0 GPU (at most 3 at once)"
    assert plan["objective"].startswith("gen/cat_acc:max")
    assert plan["scheduler"] == "none (every trial runs its steps)"
    assert plan["storage"] == str(tmp_path / "results" / "plan")
    assert plan["tracking"] == "none"
    assert not ray.is_initialized()


def test_seed_start_moves_the_seeds(tmp_path: Path) -> None:
    from study.options import plan_from_args

    args = SimpleNamespace(
        dataset="basicprop-line", steps=40, batch_size=8, data_root=None, set_options=[], num_samples=1, name="s",
        cpus_per_trial=1.0, gpus_per_trial=0.0, max_concurrent=None, max_failures=2, scheduler="none",
        grace_period=None, reduction_factor=None, tracking="none", tracking_uri=None, storage_path=str(tmp_path),
    )  # fmt: skip
    _, space = plan_from_args(args, kind="sweep", space="categories", seeds=3, seed_start=4, objectives=None)
    assert space["seed"] == {"grid_search": [4, 5, 6]}


def test_asha_dry_run_names_its_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["sweep", "lambda-ratio", *QUICK, "--set", "report_every=2", "--scheduler", "asha"]
    assert _dry_run(capsys, tmp_path, argv)["scheduler"] == "asha: max_t 20 reports, grace_period 2, reduction_factor 3"
    plan = _dry_run(capsys, tmp_path, [*argv, "--grace-period", "5", "--reduction-factor", "2"])
    assert plan["scheduler"] == "asha: max_t 20 reports, grace_period 5, reduction_factor 2"


def test_pack_and_search_dry_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = _dry_run(capsys, tmp_path, ["sweep", "lambda-ratio", *QUICK, "--pack", "4"])
    assert re.fullmatch(
        r"\d+ trial\(s\) trained in \d+ pack\(s\) of up to 4, each pack 1 CPU \+ 0 GPU .*", plan["trials"]
    )
    plan = _dry_run(capsys, tmp_path, ["search", *QUICK, "--tracking", "mlflow", "--name", "tpe"])
    assert plan["trials"].startswith("20 proposed by Optuna's TPE (10 random start-up)")
    assert plan["tracking"] == f"mlflow at sqlite:///{tmp_path / 'results' / 'tpe' / 'mlflow.db'}"


# ---------------------------------------------------------------------------------- list, renamed folders
def test_list_shows_each_study_with_its_trials_by_state(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "fixture-sweep")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "infogan-study.json").write_text("{not json")
    (tmp_path / "not-a-study").mkdir()
    assert main(["list", "--storage-path", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"2 studies in {tmp_path}"
    assert lines[1].split()[:5] == ["study", "kind", "space", "trials", "objective"]
    broken, fixture = lines[2], lines[3]
    assert broken.startswith("broken ") and "its infogan-study.json is damaged" in broken
    assert re.match(r"fixture-sweep +sweep +fixture +3: 1 COMPLETED, 1 DIVERGED, 1 ERROR +mi/cat:max +\d{4}-\d\d-\d\d",
                    fixture)  # fmt: skip
    assert main(["list", "--storage-path", str(tmp_path / "none")]) == 0
    assert capsys.readouterr().out.strip() == f"no studies in {tmp_path / 'none'}"


def test_a_renamed_study_folder_is_the_study_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = StudySpec(kind="search", name="old", storage_path=str(tmp_path), space="optuna",
                     objectives=(Objective("mi/cat", "max"),))  # fmt: skip
    write_spec(spec)
    shutil.copytree(tmp_path / "old", tmp_path / "copy")
    (tmp_path / "old").rename(tmp_path / "new")
    for name in ("new", "copy"):
        found = find_spec(name, str(tmp_path))
        assert (found.name, found.experiment_path) == (name, str(tmp_path / name))
        assert found.launch_name == "old"  # its Optuna study keeps the name it was created with
        assert found.optuna_journal == str(tmp_path / name / "optuna.journal")
    shutil.copytree(FIXTURE, tmp_path / "renamed")
    assert main(["status", "renamed", "--storage-path", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"sweep renamed (fixture) in {tmp_path / 'renamed'}; " + (
        "best mi/cat:max first"
    )


# ---------------------------------------------------------------------------------- the progress line
def _trial(trial_id: str, status: str, step: int | None = None, **metrics: float) -> SimpleNamespace:
    result = {"step": step, **{k.replace("__", "/"): v for k, v in metrics.items()}} if step is not None else {}
    return SimpleNamespace(trial_id=trial_id, status=status, config={"steps": 100}, last_result=result)


def test_the_progress_line_counts_states_and_names_the_best(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr("study.progress.time.monotonic", lambda: now[0])
    progress = StudyProgress(objective=Objective("gen/cat_acc", "max"))
    progress.setup(total_num_samples=5)
    assert progress.line([_trial("a", "PENDING")]) == "[0:00 elapsed, ~? left] 0/5 trials done, 0 running, 5 pending"
    trials = [_trial("a", "TERMINATED", 100, gen__cat_acc=0.9), _trial("b", "ERROR"),
              _trial("c", "RUNNING", 50, gen__cat_acc=0.95),
              _trial("d", "RUNNING", 50, gen__cat_acc=float("nan"))]  # fmt: skip
    for trial in trials:  # as Tune hands each result to its callbacks
        progress.on_trial_result(0, trials, trial, trial.last_result)
    now[0] = 60.0  # 3 of 5 trials' work done in 60 s: 2 left take 40 s
    assert progress.line(trials) == (
        "[1:00 elapsed, ~0:40 left] 2/5 trials done (1 errored), 2 running, 1 pending; best gen/cat_acc 0.95 (c)"
    )
    trials[2].last_result = {"step": 60, "gen/cat_acc": 0.5}  # c's value fell: the best is a's now
    progress.on_trial_result(0, trials, trials[2], trials[2].last_result)
    assert progress.line(trials).endswith("best gen/cat_acc 0.9 (a)")
    resumed = StudyProgress(objective=Objective("gen/cat_acc", "max"))  # a resumed study's ended trials
    resumed.setup(total_num_samples=5)  # report nothing in this session: their last results count
    assert resumed.line(trials).endswith("best gen/cat_acc 0.9 (a)")
    low = StudyProgress(objective=Objective("loss/g", "min"))
    low.setup(total_num_samples=2)
    pack = SimpleNamespace(trial_id="p", status="RUNNING", config={"members": [{"steps": 10}]},
                           last_result={"step": 5, "m00/loss/g": 0.7, "m01/loss/g": 0.4})  # fmt: skip
    trials = [pack, _trial("q", "TERMINATED", 100, loss__g=0.5)]
    low.on_trial_result(0, trials, pack, pack.last_result)
    assert low.line(trials).endswith("best loss/g 0.4 (p)")


def test_durations_read_as_clock_times() -> None:
    assert [format_duration(s) for s in (0, 59.6, 61, 3600 * 2 + 5)] == ["0:00", "1:00", "1:01", "2:00:05"]
