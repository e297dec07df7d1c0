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
from analysis.report._images import get_traversal_info
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
    info = get_ranking_info(tables)
    assert [r.group for r in info.rows] == ["g-noise", "g-default", "g-lam05", "g-sgd", "g-hi_lr", "g-lam0"]
    best = info.rows[0]
    assert best.dis_mean == pytest.approx(np.mean([0.93, 0.97, 0.94]))
    assert best.dis_std == pytest.approx(np.std([0.93, 0.97, 0.94], ddof=1))
    assert best.fd_mean == pytest.approx(14.0) and best.n_seeds == 3 and best.n_failed == 0
    assert best.best_trial == "noise_s1"
    hi_lr = info.rows[4]  # two diverged seeds: the mean is the one scored seed's, no spread
    assert (hi_lr.n_failed, hi_lr.dis_mean, hi_lr.best_trial) == (2, 0.5, "hi_lr_s2") and math.isnan(hi_lr.dis_std)
    assert info.rows[5].n_failed == 3  # every lambda=0 seed flagged mi_stuck
    assert info.pick == "lam05_s1" and [r.group for r in info.rows if r.has_pick] == ["g-lam05"]


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


def test_failure_summary_lists_the_failed_groups_how_and_when(tables):
    info = get_failure_info(tables)
    groups = {g.group: (g.n_failed, g.n_trials, g.modes) for g in info.groups}
    assert groups == {
        "g-lam0": (3, 3, {"mi_stuck": 3}),
        "g-hi_lr": (2, 3, {"diverged": 2}),
        "g-sgd": (1, 3, {"d_overconfident": 1}),
    }
    assert [g.group for g in info.groups] == ["g-lam0", "g-hi_lr", "g-sgd"]  # most failed first
    by_id = {t.trial_id: t for t in info.trials}
    assert by_id["hi_lr_s0"].status == "diverged" and by_id["hi_lr_s0"].first_step == 300
    assert by_id["hi_lr_s0"].last_step == 300 and "loss/d is nan" in by_id["hi_lr_s0"].reason
    assert by_id["sgd_s0"].flags == ["d_overconfident"] and by_id["sgd_s0"].first_step == 700


def test_label_free_pick_checked_against_the_generator_side_score(tables):
    info = get_selection_info(tables)
    assert (info.pick, info.n_candidates) == ("lam05_s1", 5)
    assert info.pick_score == pytest.approx(0.88)
    assert (info.best_trial, info.best_score) == ("noise_s0", pytest.approx(0.93))
    assert info.pick_rank == 3 and info.median_score == pytest.approx(0.88)


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


def test_traversals_of_the_top_groups_and_a_failed_trial(experiment_with_checkpoints):
    info = get_traversal_info(load_tables(experiment_with_checkpoints), rows=4)
    roles = [(e.role, e.trial_id) for e in info.entries]
    assert roles == [("#1 configuration", "noise_s1"), ("#2 configuration", "default_s1"),
                     ("#3 configuration", "lam05_s1"), ("failed", "sgd_s0")]  # fmt: skip
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
    info = get_traversal_info(dataclasses.replace(tables, trials=trials))
    assert [(e.role, e.trial_id) for e in info.entries] == [("#1 configuration", "lam0_s1"), ("failed", "lam0_s2")]
    assert info.entries[1].detail.startswith("mi_stuck") and info.entries[1].note.startswith("Checkpoint missing")


def test_no_images_skips_the_checkpoints(experiment_with_checkpoints):
    info = get_traversal_info(load_tables(experiment_with_checkpoints), render=False)
    assert info.entries == [] and "--no-images" in info.note


def test_page_embeds_plotly_once_and_fetches_nothing(tables):
    html = build_report(tables, images=False)
    assert html.count("Plotly.newPlot(") == 5  # parallel, importance, MI curves, Pareto, centrality matrix
    assert re.search(rf'<meta name="{FIGURE_COUNT_META}" content="5">', html)
    assert html.count(plotly.offline.get_plotlyjs()) == 1
    page = html.replace(plotly.offline.get_plotlyjs(), "")  # the library's own strings name its web sites
    assert not re.search(r"<script[^>]*\bsrc=", page) and not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_a_lone_diverged_trial_still_gives_a_page_of_notes(tables):
    trials = tables.trials[tables.trials["trial_id"] == "hi_lr_s0"]
    empty = dataclasses.replace(
        tables, trials=trials, curves=tables.curves.iloc[:0], selection=tables.selection.iloc[:0]
    )
    html = build_report(empty, images=True)
    assert re.search(rf'<meta name="{FIGURE_COUNT_META}" content="0">', html)
    assert "No hyperparameter varies" in html and "Not computed: 0 completed trials" in html
    assert "No checkpoint was recorded for this trial." in html  # the failed trial, shown without an image
    assert "1 of 1 trials failed." in html and "nothing was picked" in html


def test_settings_shared_by_every_group_are_cut_from_the_labels():
    labels = pd.Series(["infogan dataset=sprites width=0.5", "gan+codes dataset=sprites lambda_info=0 width=0.5",
                        "infogan dataset=sprites width=0.5", "infogan dataset=sprites lambda_info=2 width=0.5"])  # fmt: skip
    short, common = shorten_labels(labels)
    assert short.tolist() == ["infogan", "gan+codes lambda_info=0", "infogan", "infogan lambda_info=2"]
    assert common == "dataset=sprites width=0.5"
    assert shorten_labels(pd.Series(["infogan defaults", "infogan lambda_info=2"]))[1] == ""


def test_numbers_in_tables_have_no_exponents():
    assert [fmt(0.12345), fmt(12.345), fmt(12345.6), fmt(float("nan"))] == ["0.123", "12.3", "12346", "—"]
