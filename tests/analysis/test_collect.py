"""`infogan-study analyze` end to end on a small synthetic Tune experiment (real tiny checkpoints,
made-up curves; benchmarks/analyze_report.py builds it): the three parquet files, one row per
trial whatever happened to it, idempotent re-runs, and one-line answers to bad input.

The experiment (10 trials x 12 reports, groups of 4 seeds): trials 0-3 vanilla GAN; 4-7 InfoGAN
with lambda_info=0.5, where 5 errored (no checkpoint) and 6 diverged after a healthy checkpoint;
8-9 InfoGAN with lambda_info=1, where 9 is still pending (no folder: not part of the experiment
until Tune starts it; `status` lists it).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis.collect import analyze_experiment, check_scorable
from analysis.schema import METADATA_KEY, SCHEMA_VERSION, SCHEMAS, read_table
from analysis.scoring import QUICK
from analysis.selection import MIN_CANDIDATE_MI, PICK_SIGNAL
from analysis.tune_folder import read_experiment
from benchmarks.analyze_report import make_synthetic_experiment
from study.cli import main
from trainables.errors import BadInputError

TRIALS, REPORTS = 10, 12
IDS = [f"5ynth_{i:05d}" for i in range(TRIALS)]
VANILLA, ERRORED, DIVERGED, PENDING = IDS[:4], IDS[5], IDS[6], IDS[9]
CODE_SCORES = [
    "q/real_hungarian_acc",
    "q/real_nmi",
    "q/mig",
    "q/sap",
    "q/factor_vae",
    "q/beta_vae",
    "gen/cat_acc",
    "gen/cat_nmi",
    "gen/cont_effect",
    "gen/cont_gap",
    "gen/valid",
    "gen/reader_acc",
]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    experiment = make_synthetic_experiment(tmp_path_factory.mktemp("exp") / "synthetic", trials=TRIALS, reports=REPORTS)
    files = analyze_experiment(experiment, counts=QUICK)
    assert (files.num_trials, files.num_scored) == (TRIALS - 1, 8)
    tables = {name: read_table(name, experiment / f"{name}.parquet").to_pandas() for name in SCHEMAS}
    return experiment, tables


def test_the_three_files_have_exactly_the_schema(analysed):
    experiment, _ = analysed
    for name, schema in SCHEMAS.items():
        written = pq.read_schema(experiment / f"{name}.parquet")
        assert written.remove_metadata().equals(schema.remove_metadata()), name
        assert written.metadata[METADATA_KEY] == f"{name}/{SCHEMA_VERSION}".encode()


def test_every_trial_has_a_row_with_status_and_reason(analysed):
    _, tables = analysed
    trials = tables["trials"].set_index("trial_id")
    assert list(trials.index) == IDS[:-1] and PENDING not in trials.index
    assert trials.loc[ERRORED, "status"] == "error"
    assert (
        trials.loc[ERRORED, "reason"]
        == "RuntimeError: CUDA error: an illegal memory access was encountered; no checkpoint"
    )
    assert trials.loc[ERRORED, "checkpoint"] == "" and math.isnan(trials.loc[ERRORED, "q/real_hungarian_acc"])
    # the diverged trial is scored on its last checkpoint before the divergence
    assert trials.loc[DIVERGED, "status"] == "diverged" and "loss/d=nan" in trials.loc[DIVERGED, "reason"]
    assert trials.loc[DIVERGED, "checkpoint"].endswith("checkpoint_000005")
    assert trials.loc[DIVERGED, "flag/diverged"] and trials.loc[DIVERGED, "flag/diverged_step"] == 90.0
    assert trials.loc[DIVERGED, "last_step"] == 90
    done = trials.drop(index=[ERRORED, DIVERGED])
    assert (done["status"] == "completed").all() and (done["reason"] == "").all()
    assert (done["last_step"] == REPORTS * 10).all() and (done["steps"] == REPORTS * 10).all()
    assert done["checkpoint"].str.endswith("checkpoint_000011").all()


def test_configuration_columns_groups_and_labels(analysed):
    _, tables = analysed
    trials = tables["trials"].set_index("trial_id")
    assert trials["seed"].tolist() == [i % 4 for i in range(TRIALS - 1)]
    assert trials.loc[VANILLA, "group"].nunique() == 1 and trials["group"].nunique() == 3  # seed is not part of it
    assert trials.loc[IDS[4], "group_label"] == (
        "infogan dataset=basicprop-line lambda_info=0.5 width=0.125 batch_size=8 steps=120 report_every=10"
    )
    assert set(trials.loc[VANILLA, "model_kind"]) == {"gan"} and trials.loc[IDS[8], "model_kind"] == "infogan"
    assert (trials["variant"] == "").all()  # no space label: the synthetic trials come from a plain grid


def test_models_with_codes_get_every_quick_score(analysed):
    _, tables = analysed
    scored = tables["trials"].set_index("trial_id").loc[[IDS[4], IDS[6], IDS[7], IDS[8]]]
    assert np.isfinite(scored[[*CODE_SCORES, "quality/fd", "quality/class_coverage", "quality/purity"]]).all().all()
    assert (scored["score/disentanglement"] == scored["gen/cat_acc"]).all()  # the headline is generator-side
    assert (scored["gen/reader_acc"] == 1.0).all()  # basicprop-line is read off exactly
    assert scored[["q/dci_disentanglement", "quality/inception_fid"]].isna().all().all()  # skipped by --quick
    assert (scored["quality/inception_fid_note"] == "not computed with --quick").all()
    assert (scored["scoring_s"] > 0).all()


def test_a_vanilla_gan_has_nan_code_scores_but_sample_quality(analysed):
    _, tables = analysed
    vanilla = tables["trials"].set_index("trial_id").loc[VANILLA]
    assert vanilla[[*CODE_SCORES, "score/disentanglement", "quality/purity", "mi/final"]].isna().all().all()
    assert np.isfinite(vanilla["quality/fd"]).all()
    assert not vanilla["flag/mi_stuck"].any()  # its mi/cat is a constant 0 by construction, not a stuck code
    assert (vanilla["status"] == "completed").all() and vanilla["selection/centrality"].isna().all()


def test_mi_summaries_and_curves_follow_result_json(analysed):
    experiment, tables = analysed
    folder = next(experiment.glob(f"*_{IDS[8]}_*"))
    reports = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
    curves = tables["curves"]
    mine = curves[curves["trial_id"] == IDS[8]]
    assert sorted(mine["metric"].unique()) == sorted(
        ["d/fake", "d/real", "diverged", "instance_noise", "loss/d", "loss/g", "loss/info", "mi/cat", "mi/cat_nats",
         "mi/cont", "perf/images_per_s"]
    )  # fmt: skip
    mi = mine[mine["metric"] == "mi/cat"]
    assert mi["step"].tolist() == [r["step"] for r in reports] and mi["value"].tolist() == [
        r["mi/cat"] for r in reports
    ]
    row = tables["trials"].set_index("trial_id").loc[IDS[8]]
    assert row["mi/final"] == pytest.approx(reports[-1]["mi/cat"]) and row["mi/max"] == pytest.approx(mi["value"].max())
    assert len(curves) == sum(
        11 * n for n in (REPORTS,) * 7 + (1, 9)
    )  # 7 full trials, the errored one, the diverged one


def test_the_population_pool_and_the_label_free_signals(analysed):
    _, tables = analysed
    trials, selection = tables["trials"].set_index("trial_id"), tables["selection"]
    coded = trials[(trials["model_kind"] != "gan") & trials["checkpoint"].ne("")]
    candidates = sorted(coded.index[coded["mi/final"] >= MIN_CANDIDATE_MI])
    assert len(candidates) >= 2 and set(selection["pool"]) == {"all"}
    assert sorted(set(selection["rep_trial"])) == candidates and len(selection) == len(candidates) ** 2
    assert trials.loc[candidates, "selection/centrality"].notna().all()
    assert trials.drop(index=candidates)["selection/centrality"].isna().all()
    assert ((selection["factor_vae"] >= 0) & (selection["factor_vae"] <= 1)).all()
    # the per-model signals of every scored model with a categorical code, candidate or not
    for column in ("selection/q_balance", "selection/q_confidence", "selection/q_info"):
        assert coded[column].between(0, 1).all() and trials.loc[VANILLA, column].isna().all(), column
    # the pick's score: PICK_SIGNAL on the candidates only
    score = trials["selection/score"]
    assert score.notna().sum() == len(candidates)
    assert (score[candidates] == trials.loc[candidates, PICK_SIGNAL]).all()


def test_a_rerun_writes_the_same_values(analysed, capsys):
    experiment, tables = analysed
    assert main(["analyze", str(experiment), "--quick", "--quiet"]) == 0
    assert f"analyzed {TRIALS - 1} trials (8 scored)" in capsys.readouterr().out
    for name in SCHEMAS:
        again = read_table(name, experiment / f"{name}.parquet").to_pandas()
        first = tables[name]
        if name == "trials":  # a measured time is the one value that differs
            first, again = first.drop(columns="scoring_s"), again.drop(columns="scoring_s")
        pd.testing.assert_frame_equal(first, again)


def test_checkpoints_are_relative_to_the_tables_folder(analysed):
    experiment, tables = analysed
    located = tables["trials"]["checkpoint"].loc[lambda c: c != ""]
    assert len(located) == 8 and all((experiment / c / "checkpoint.pt").is_file() for c in located)


def test_best_checkpoint_is_the_highest_mi_before_divergence(analysed, tmp_path):
    experiment, _ = analysed
    analyze_experiment(experiment, out=tmp_path, counts=QUICK, checkpoint="best")
    trials = read_table("trials", tmp_path / "trials.parquet").to_pandas().set_index("trial_id")
    assert trials.loc[DIVERGED, "checkpoint"].endswith("checkpoint_000005")  # the diverged one is never chosen
    assert Path(trials.loc[DIVERGED, "checkpoint"]).is_absolute()  # the tables are elsewhere
    folder = next(experiment.glob(f"*_{IDS[0]}_*"))  # trial 0 has a mid-run and a final checkpoint
    reports = map(json.loads, (folder / "result.json").read_text().splitlines())
    mi = {r["checkpoint_dir_name"]: r["mi/cat"] for r in reports if "checkpoint_dir_name" in r}
    assert Path(trials.loc[IDS[0], "checkpoint"]).name == max(mi, key=mi.get)


# ------------------------------------------------------------------------------------ bad input
def _cli_error(capsys: pytest.CaptureFixture, *args: str) -> str:
    assert main(["analyze", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("infogan-study: error: ") and len(err.splitlines()) == 1
    return err


def test_bad_experiment_folders_are_one_line_errors(tmp_path, capsys):
    assert "is not a folder" in _cli_error(capsys, str(tmp_path / "missing"))
    assert "is not a Ray Tune experiment folder" in _cli_error(capsys, str(tmp_path))
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "infogan-study.json").write_text(json.dumps({"kind": "sweep"}))  # launched, no trial yet
    assert "it holds the experiments sweep: pass one of them" in _cli_error(capsys, str(tmp_path))
    assert "has no trials yet" in _cli_error(capsys, str(tmp_path / "sweep"))
    assert "--workers -1" in _cli_error(capsys, str(tmp_path / "sweep"), "--workers", "-1")
    assert not list(tmp_path.rglob("*.parquet"))


def test_nothing_is_written_when_the_analysis_fails(tmp_path, monkeypatch):
    experiment = make_synthetic_experiment(tmp_path / "exp", trials=2, reports=3)

    def broken(*args, **kwargs):
        raise BadInputError("no room")

    monkeypatch.setattr("analysis.collect.select_models", broken)
    with pytest.raises(BadInputError, match="no room"):
        analyze_experiment(experiment, counts=QUICK)
    assert not list(experiment.rglob("*.parquet")) and not list(experiment.glob(".analyze-*"))


def test_parquet_from_another_schema_version_is_refused(analysed, tmp_path):
    experiment, _ = analysed
    table = pq.read_table(experiment / "trials.parquet")
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: b"trials/0"}), tmp_path / "trials.parquet")
    with pytest.raises(BadInputError, match=f"has schema trials/0, this version reads trials/{SCHEMA_VERSION}"):
        read_table("trials", tmp_path / "trials.parquet")


def test_checkpoints_deleted_after_the_study_warn_or_refuse(tmp_path, capsys):
    """Tune keeps each trial's latest checkpoint: a trial that saved some and has none on disk lost
    them. Some lost: a warning naming them (their rows have no scores); all lost: one line, exit 2."""
    experiment = make_synthetic_experiment(tmp_path / "exp", trials=3, reports=4)
    first, *others = read_experiment(experiment).trials
    for checkpoint in first.path.glob("checkpoint_*"):
        shutil.rmtree(checkpoint)
    assert check_scorable(read_experiment(experiment)) == (first.trial_id,)
    assert main(["analyze", str(experiment), "--quick", "--no-selection", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()  # (after the classifier's training note)
    assert err[-1] == (f"infogan-study: warning: 1 trial(s) saved checkpoints that are no longer on disk, so they "
                       f"have no scores: {first.trial_id}")  # fmt: skip
    for trial in others:
        for checkpoint in trial.path.glob("checkpoint_*"):
            shutil.rmtree(checkpoint)
    with pytest.raises(BadInputError, match=r"no checkpoint left to score in .*: 3 trial\(s\) saved checkpoints"):
        check_scorable(read_experiment(experiment))


@pytest.mark.parametrize("low", [0.2, math.nan])
def test_a_model_whose_code_carries_no_information_is_no_label_free_candidate(low, monkeypatch):
    """The `all` pool (the label-free pick's candidates) admits only models whose final MI bound
    reaches MIN_CANDIDATE_MI: a lambda = 0 model's Q cannot read its code back, and ModelCentrality
    alone would happily pick it."""
    from analysis.selection import MIN_CANDIDATE_MI, Member, PoolResult, select_models

    ranks = {"a": 0.9, "b": 0.8, "c": low, "d": MIN_CANDIDATE_MI}
    members = [Member(t, f"g{t}", "mnist28", f"/ckpt/{t}", "ref", None, r, {}) for t, r in ranks.items()]
    pools: list[tuple[str, tuple[str, ...]]] = []

    def score_pools(tasks, mapper):
        pools.extend((t.name, t.trial_ids) for t in tasks)
        return [PoolResult(t.name, t.trial_ids, np.full((len(t.trial_ids),) * 2, 0.5)) for t in tasks]

    monkeypatch.setattr("analysis.selection.score_pools", score_pools)
    chosen = select_models(members, counts=QUICK, max_models=8, device="cpu", mapper=None)
    assert pools == [("all", ("a", "b", "d"))]  # `c` kept out
    assert set(chosen.centrality) == {"a", "b", "d"} and chosen.candidates == {"a", "b", "d"}
