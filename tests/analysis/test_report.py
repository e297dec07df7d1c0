"""The report's sections, checked on their info objects (not pixels) over the synthetic
experiment of conftest.py, whose rankings, Pareto front, failures and pick are known."""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import re

import numpy as np
import pandas as pd
import plotly.offline
import pytest
from PIL import Image
from scipy import stats

from analysis.report import FIGURE_COUNT_META, build_report
from analysis.report._data import load_tables, shorten_labels
from analysis.report._figures import (
    get_centrality_matrix_info,
    get_importance_info,
    get_mi_curves_info,
    get_parallel_info,
    get_pareto_info,
    pareto_front,
)
from analysis.report._images import get_traversal_info, traversal_table
from analysis.report._population import get_population_info, seeds_to_settle
from analysis.report._sections import (
    fmt,
    get_failure_info,
    get_ranking_info,
    get_selection_info,
    selection_html,
)

VARYING = ["lambda_info", "q_fixed_std", "instance_noise", "d_optimizer", "lr_d"]  # InfoGANConfig order


@pytest.fixture
def tables(experiment):
    return load_tables(experiment)


def test_ranking_orders_groups_by_mean_disentanglement_with_seed_spread(tables):
    info = get_ranking_info(tables, get_population_info(tables))
    assert [r.group for r in info.rows] == ["g-noise", "g-default", "g-lam05", "g-sgd", "g-hi_lr", "g-lam0"]
    best = info.rows[0]
    assert best.score_mean == pytest.approx(np.mean([0.93, 0.97, 0.94]))
    assert best.score_std == pytest.approx(np.std([0.93, 0.97, 0.94], ddof=1))
    assert best.fd_mean == pytest.approx(14.0) and best.n_seeds == 3 and best.n_failed == 0
    assert best.best_trial == "noise_s1"
    hi_lr = info.rows[4]  # two diverged seeds: the mean is the one scored seed's, no spread
    assert (hi_lr.n_failed, hi_lr.score_mean, hi_lr.best_trial) == (2, 0.5, "hi_lr_s2") and math.isnan(hi_lr.score_std)
    lam0 = info.rows[5]  # every lambda=0 seed finished, flagged mi_stuck: flagged, not failed
    assert (lam0.n_failed, lam0.n_flagged) == (0, 3)
    assert info.pick == "lam05_s1" and [r.group for r in info.rows if r.has_pick] == ["g-lam05"]


def test_success_rates_count_seeds_at_the_threshold_with_wilson_intervals(tables):
    info = get_population_info(tables)
    rates = {g.group: (g.successes, len(g.scores)) for g in info.groups}
    assert rates == {"g-noise": (3, 3), "g-default": (3, 3), "g-lam05": (0, 3), "g-sgd": (0, 3),
                     "g-hi_lr": (0, 1), "g-lam0": (0, 3)}  # fmt: skip
    noise = info.groups[0]
    # Wilson's interval for 3 of 3 at 95%: low = n / (n + z^2) with z = 1.96
    z2 = 1.959963984540054**2
    assert noise.interval.low == pytest.approx(3 / (3 + z2)) and noise.interval.high == pytest.approx(1.0)
    assert noise.scores == [0.93, 0.97, 0.94] and noise.trial_ids == ["noise_s0", "noise_s1", "noise_s2"]
    lower = get_population_info(dataclasses.replace(tables, success_threshold=0.85))
    assert {g.group: g.successes for g in lower.groups}["g-lam05"] == 3


def test_neighbours_that_overlap_cannot_be_told_apart_and_clear_gaps_can(tables):
    info = get_population_info(tables)
    by_pair = {(c.better, c.worse): c for c in info.comparisons}
    close = by_pair[("g-noise", "g-default")]  # 0.93-0.97 against 0.90-0.95
    assert not close.apart and close.interval.low < 0 < close.interval.high
    assert close.difference == pytest.approx(np.mean([0.93, 0.97, 0.94]) - np.mean([0.92, 0.95, 0.90]))
    assert close.more_seeds is not None and close.more_seeds > 0
    gap = by_pair[("g-lam05", "g-sgd")]  # 0.85-0.88 against 0.55-0.65
    assert gap.apart and gap.interval.low > 0.15 and gap.more_seeds == 0
    assert ("g-sgd", "g-hi_lr") in by_pair and math.isnan(by_pair[("g-sgd", "g-hi_lr")].interval.low)  # 1 seed


def test_seeds_to_settle_follow_the_normal_approximation():
    a, b = np.array([0.90, 0.95, 1.00]), np.array([0.85, 0.90, 0.95])  # d = 0.05, pooled variance 0.0025
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert seeds_to_settle(a, b) == math.ceil(2 * z**2 * 0.0025 / 0.05**2) - 3
    assert seeds_to_settle(np.ones(3), np.ones(3)) is None  # nothing seen to extrapolate from


def test_parallel_coordinates_show_the_varying_hyperparameters_of_scored_trials(tables):
    info = get_parallel_info(tables)
    assert info.params == VARYING  # seed varies too, but it is not a hyperparameter
    assert len(info.score) == len(info.trial_ids) == 16 and info.n_unscored == 2
    assert "hi_lr_s0" not in info.trial_ids
    assert set(info.values["d_optimizer"]) == {"adam", "sgd"} and set(info.values["lambda_info"]) == {0.0, 0.5, 1.0}


def test_pareto_front_of_the_synthetic_trials(tables):
    info = get_pareto_info(tables)
    front = {t for t, on in zip(info.trial_ids, info.on_front) if on}
    assert front == {"lam0_s2", "lam0_s1", "lam05_s1", "default_s1", "noise_s1"}
    assert info.n_missing == 2 and info.pick == "lam05_s1"


def test_pareto_front_keeps_ties_and_drops_dominated_points():
    dis = np.array([0.9, 0.9, 0.5, 0.8, 0.95])
    fd = np.array([10.0, 10.0, 5.0, 12.0, 20.0])  # (0.8, 12) is dominated by (0.9, 10)
    assert pareto_front(dis, fd).tolist() == [True, True, True, False, True]


def test_importance_ranks_lambda_info_first_with_both_evaluators(tables):
    info = get_importance_info(tables)
    assert info.note == "" and info.n_trials == 16
    assert set(info.importances) == {"fANOVA", "PED-ANOVA"}
    for values in info.importances.values():
        assert set(values) == set(VARYING) and sum(values.values()) == pytest.approx(1.0)
    assert info.params[0] == "lambda_info"  # lambda=0 is what separates 0.3 from 0.9


def test_importance_falls_back_to_a_note_with_one_varying_hyperparameter(tables):
    trials = tables.trials[tables.trials["group"].isin(["g-default", "g-lam05"])]  # only lambda_info varies
    info = get_importance_info(dataclasses.replace(tables, trials=trials))
    assert info.importances == {} and info.params == ["lambda_info"]
    assert "at least 4 trials and 2 hyperparameters" in info.note


def test_mi_curves_bands_per_group_in_ranking_order(tables):
    info = get_mi_curves_info(tables)
    assert [b.group for b in info.bands] == ["g-noise", "g-default", "g-lam05", "g-sgd", "g-hi_lr", "g-lam0"]
    assert info.n_without == 0
    for band in info.bands:
        assert band.steps.shape == band.mean.shape == band.low.shape == band.high.shape
        assert np.all(band.low <= band.mean + 1e-12) and np.all(band.mean <= band.high + 1e-12)
    hi_lr = info.bands[4]  # diverged seeds stop at step 300, the third goes on
    assert hi_lr.n_seeds == 3 and hi_lr.steps[-1] == 1000
    assert info.bands[0].mean[-1] > 0.9 and info.bands[5].mean[-1] < 0.1


def test_failures_and_flags_are_listed_apart_with_how_and_when(tables):
    info = get_failure_info(tables)
    groups = {g.group: (g.n_failed, g.n_flagged, g.n_trials, g.modes) for g in info.groups}
    assert groups == {
        "g-lam0": (0, 3, 3, {"mi_stuck": 3}),
        "g-hi_lr": (2, 0, 3, {"diverged": 2}),
        "g-sgd": (0, 1, 3, {"d_overconfident": 1}),
    }
    assert [g.group for g in info.groups] == ["g-lam0", "g-hi_lr", "g-sgd"]  # most affected first
    assert (info.n_failed, info.n_flagged) == (2, 4)
    by_id = {t.trial_id: t for t in info.trials}
    assert by_id["hi_lr_s0"].status == "diverged" and by_id["hi_lr_s0"].first_step == 300
    assert by_id["hi_lr_s0"].kind == "failed" and by_id["lam0_s0"].kind == "flagged"
    assert by_id["hi_lr_s0"].last_step == 300 and "loss/d is nan" in by_id["hi_lr_s0"].reason
    assert by_id["sgd_s0"].flags == ["d_overconfident"] and by_id["sgd_s0"].first_step == 700


def test_label_free_pick_checked_against_the_generator_side_score(tables):
    info = get_selection_info(tables)
    assert (info.pick, info.tied, info.n_candidates) == ("lam05_s1", ("lam05_s1",), 13)
    assert info.signal == "selection/q_balance" and info.pick_value == pytest.approx(0.99)
    assert info.pick_score == pytest.approx(0.88)
    assert (info.best_trial, info.best_score) == ("noise_s1", pytest.approx(0.97))
    assert info.pick_rank == 7 and info.median_score == pytest.approx(0.88)
    checks = {c.column: c for c in info.checks}
    assert checks["selection/q_balance"].pick == "lam05_s1" and checks["selection/q_balance"].n == 13
    assert checks["selection/q_balance"].regret == pytest.approx(0.97 - 0.88)
    assert checks["selection/centrality"].n == 4  # the pool's candidates (lam0_s0 is no candidate)


def test_label_free_pick_without_an_evaluator_says_it_cannot_be_checked(tables):
    trials = tables.trials.assign(**{"score/disentanglement": np.nan})
    info = get_selection_info(dataclasses.replace(tables, trials=trials))
    assert info.pick == "lam05_s1" and info.best_trial == "" and info.pick_rank == 0
    assert "No generator-side score" in selection_html(info)


def test_centrality_matrix_of_the_pool_explains_the_pick(tables):
    info = get_centrality_matrix_info(tables)
    assert info.pool == "all" and info.pick == "lam05_s1"
    assert info.trial_ids == ["default_s0", "lam05_s1", "noise_s0", "lam0_s0", "sgd_s1"]
    assert info.scores.shape == (5, 5) and np.all(info.scores[:, 1] == 0.9)  # everyone agrees with the pick
    assert info.labels[1] == "infogan lambda_info=0.5"
    off_diagonal = ~np.eye(5, dtype=bool)
    centrality = [info.scores[:, j][off_diagonal[:, j]].mean() for j in range(5)]
    picked = tables.trials.set_index("trial_id").loc[info.trial_ids, "selection/centrality"]
    assert np.allclose(centrality, picked)  # trials.parquet's centrality is this matrix's column mean


def test_centrality_matrix_without_selection_table(tables):
    info = get_centrality_matrix_info(dataclasses.replace(tables, selection=tables.selection.iloc[:0]))
    assert info.pool == "" and info.trial_ids == [] and info.scores.shape == (0, 0)


def _drawn(tables, **kwargs):
    """`tables` with the traversal grids analyze draws for them."""
    return dataclasses.replace(tables, traversals=traversal_table(tables, **kwargs).to_pandas())


def test_traversals_of_the_top_groups_and_a_failed_trial(experiment_with_checkpoints):
    info = get_traversal_info(_drawn(load_tables(experiment_with_checkpoints), rows=4))
    roles = [(e.role, e.trial_id) for e in info.entries]
    assert roles == [("#1 configuration", "noise_s1"), ("#2 configuration", "default_s1"),
                     ("#3 configuration", "lam05_s1"), ("flagged", "sgd_s0")]  # fmt: skip
    missing = info.entries[2]  # the fixture wrote no checkpoint for lam05_s1
    assert missing.grids == [] and missing.note.startswith("Checkpoint missing")
    best = info.entries[0]
    assert best.note == "" and [g.code for g in best.grids] == ["cat0", "cont0", "cont1"]
    png = base64.b64decode(best.grids[0].uri.removeprefix("data:image/png;base64,"))
    image = Image.open(io.BytesIO(png))
    assert image.size == (10 * 29 + 1, 4 * 29 + 1)  # 10 categories x 4 rows of 28 px, 1 px padding
    assert best.grids[0].width == image.size[0]


def test_the_failed_trial_shown_is_not_one_of_the_best(tables):
    trials = tables.trials[tables.trials["trial_id"].isin(["lam0_s1", "lam0_s2"])]  # both flagged mi_stuck
    info = get_traversal_info(_drawn(dataclasses.replace(tables, trials=trials)))
    assert [(e.role, e.trial_id) for e in info.entries] == [("#1 configuration", "lam0_s1"), ("flagged", "lam0_s2")]
    assert info.entries[1].detail.startswith("mi_stuck") and info.entries[1].note.startswith("Checkpoint missing")


def test_no_images_leaves_the_grids_out(drawn_experiment):
    info = get_traversal_info(load_tables(drawn_experiment), render=False)
    assert info.entries == [] and "--no-images" in info.note


def test_the_report_shows_the_grids_analyze_drew_and_says_when_there_are_none(drawn_experiment):
    tables = load_tables(drawn_experiment)  # traversals.parquet read back
    entries = get_traversal_info(tables).entries
    assert [len(e.grids) for e in entries] == [3, 3, 0, 3] and entries[2].note.startswith("Checkpoint missing")
    png = base64.b64decode(entries[0].grids[0].uri.removeprefix("data:image/png;base64,"))
    assert Image.open(io.BytesIO(png)).size == (10 * 29 + 1, 6 * 29 + 1)  # the default 6 rows
    before = dataclasses.replace(tables, traversals=None)  # an analysis from before traversals.parquet
    assert all(
        e.grids == [] and "run `infogan-study analyze` again" in e.note for e in get_traversal_info(before).entries
    )
    others = tables.traversals[tables.traversals["trial_id"] != entries[0].trial_id]  # one trial not drawn
    missing = get_traversal_info(dataclasses.replace(tables, traversals=others)).entries[0]
    assert missing.grids == [] and missing.note.startswith("No traversal was drawn for this trial")


def test_page_embeds_plotly_once_and_fetches_nothing(tables):
    html = build_report(tables, images=False)
    assert html.count("Plotly.newPlot(") == 6  # every seed, parallel, importance, MI curves, Pareto, centrality
    assert re.search(rf'<meta name="{FIGURE_COUNT_META}" content="6">', html)
    assert html.count(plotly.offline.get_plotlyjs()) == 1
    page = html.replace(plotly.offline.get_plotlyjs(), "")  # the library's own strings name its web sites
    assert not re.search(r"<script[^>]*\bsrc=", page) and not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_a_lone_diverged_trial_still_gives_a_page_of_notes(tables):
    trials = tables.trials[tables.trials["trial_id"] == "hi_lr_s0"]
    empty = dataclasses.replace(
        tables, trials=trials, curves=tables.curves.iloc[:0], selection=tables.selection.iloc[:0]
    )
    html = build_report(_drawn(empty), images=True)
    assert re.search(rf'<meta name="{FIGURE_COUNT_META}" content="0">', html)
    assert "No hyperparameter varies" in html and "Not computed: 0 completed trials" in html
    assert "No checkpoint was recorded for this trial." in html  # the failed trial, shown without an image
    assert "Of 1 trials, 1 failed (diverged or errored)" in html and "nothing was picked" in html


def test_settings_shared_by_every_group_are_cut_from_the_labels():
    labels = pd.Series(["infogan dataset=sprites width=0.5", "gan+codes dataset=sprites lambda_info=0 width=0.5",
                        "infogan dataset=sprites width=0.5",
                        "infogan dataset=sprites lambda_info=2 width=0.5"])  # fmt: skip
    short, common = shorten_labels(labels)
    assert short.tolist() == ["infogan", "gan+codes lambda_info=0", "infogan", "infogan lambda_info=2"]
    assert common == "dataset=sprites width=0.5"
    assert shorten_labels(pd.Series(["infogan defaults", "infogan lambda_info=2"]))[1] == ""


def test_numbers_in_tables_have_no_exponents():
    assert [fmt(0.12345), fmt(12.345), fmt(12345.6), fmt(float("nan"))] == ["0.123", "12.3", "12346", "—"]


def _verdict(tables) -> list[str]:
    from analysis.report._figures import get_importance_info
    from analysis.report._verdict import get_verdict_info

    population = get_population_info(tables)
    info = get_verdict_info(tables, population, get_importance_info(tables), get_selection_info(tables),
                            get_failure_info(tables))  # fmt: skip
    return info.sentences


def test_the_verdict_says_who_disentangles_how_often_what_matters_and_what_was_picked(tables):
    sentences = _verdict(tables)
    assert sentences[0] == (
        "Disentangle in every seed run (gen/cat_acc ≥ 0.9): infogan instance_noise=0.1: 3 of 3 seeds "
        "(100%, 95% CI 44%–100%); infogan defaults: 3 of 3 seeds (100%, 95% CI 44%–100%)."
    )
    assert sentences[1].startswith("Do not disentangle (no seed reached 0.9): infogan lambda_info=0.5: 0 of 3 seeds")
    assert sentences[2].startswith(
        "The top 2 configurations (infogan instance_noise=0.1, infogan defaults) cannot be told apart on the seeds run"
    )
    assert (
        sentences[3].startswith("Hyperparameters that matter most for score/disentanglement")
        and "lambda_info" in sentences[3]
    )
    assert sentences[4].startswith("The label-free pick is lam05_s1 (infogan lambda_info=0.5): the highest q_balance")
    assert "rank 7; the best candidate scores 0.97" in sentences[4]
    assert sentences[5] == ("Of 18 trials, 2 failed (diverged × 2) and 4 finished with a failure flag "
                            "(mi stuck × 3, d overconfident × 1).")  # fmt: skip


def test_without_labels_the_ranking_uses_the_label_free_score_and_says_so(tables):
    label_columns = [c for c in tables.trials.columns if c.startswith(("gen/", "q/real", "quality/"))]
    trials = tables.trials.assign(**dict.fromkeys([*label_columns, "score/disentanglement"], np.nan))
    blind = dataclasses.replace(tables, trials=trials, labels=False)
    info = get_ranking_info(blind, get_population_info(blind))
    assert info.score == "selection/score" and info.rows[0].group == "g-lam05"  # its seed 1 has the top balance
    assert info.rows[-1].group == "g-lam0" and math.isnan(info.rows[-1].score_mean)  # no candidate: last
    sentences = _verdict(blind)
    assert sentences[0].startswith("No labels were used (analyze --label-free-only)")
    assert not any("Disentangle" in s for s in sentences)
    html = build_report(blind, images=False)
    assert "label-free score ↑ (selection/score)" in html and "succeeded (gen/cat_acc" not in html
    assert "Analysed without labels (--label-free-only)." in html
