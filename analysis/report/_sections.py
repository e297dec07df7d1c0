"""The report's table sections: the ranking of configurations, the failure summary and the
label-free pick. Each is computed into a NamedTuple (`get_x_info(tables)`), which the tests
check, then drawn as HTML (`x_html(info)`).

A configuration group is one InfoGANConfig without its seed; its seeds are repeats. Scores are
averaged over the seeds that produced one (a diverged seed has NaN scores and counts as failed).
"""

from __future__ import annotations

import math
from html import escape
from typing import NamedTuple

import numpy as np
import pandas as pd

from analysis.report._data import CENTRALITY, CHECK, DIS, FD, MI, Q_REAL, ReportTables, group_order
from analysis.schema import FLAG_COLUMNS

PICK_BADGE = ' <span class="pick" title="highest ModelCentrality: the label-free pick">★ pick</span>'


def fmt(x: float, digits: int = 3) -> str:
    """A number for a table cell: `digits` significant digits, whole numbers above 10**digits (no
    exponents), an em dash for NaN."""
    if x is None or math.isnan(x):
        return "—"
    return f"{x:.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}"


def best_trial_of(rows: pd.DataFrame) -> str:
    """The group's trial with the highest disentanglement (ties: lower FD); '' if none scored."""
    scored = rows.dropna(subset=[DIS])
    if scored.empty:
        return ""
    return str(scored.sort_values([DIS, FD], ascending=[False, True], kind="stable").iloc[0]["trial_id"])


def pick_trial(trials: pd.DataFrame) -> str:
    """ModelCentrality's label-free pick: the trial with the highest centrality ('' if none)."""
    scored = trials.dropna(subset=[CENTRALITY])
    return "" if scored.empty else str(scored.loc[scored[CENTRALITY].idxmax(), "trial_id"])


def _header(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"


# ---------------------------------------------------------------------------------- ranking
class GroupRow(NamedTuple):
    group: str
    label: str
    model_kind: str
    n_seeds: int
    n_failed: int
    dis_mean: float  # over the seeds with a score
    dis_std: float  # sample std (ddof=1); NaN with fewer than 2 scored seeds
    q_real_mean: float  # Q's clustering of real images (NaN without labels)
    q_real_std: float
    mi_mean: float  # final MI bound
    fd_mean: float
    fd_std: float
    best_trial: str  # '' if no seed was scored
    has_pick: bool  # the label-free pick is one of this group's trials


class RankingInfo(NamedTuple):
    rows: list[GroupRow]  # best first
    pick: str  # trial id of the label-free pick ('' if no centrality)


def get_ranking_info(tables: ReportTables) -> RankingInfo:
    trials = tables.trials
    pick = pick_trial(trials)
    rows = []
    for group in group_order(trials):
        g = trials[trials["group"] == group]
        rows.append(GroupRow(
            group=group, label=str(g["group_label"].iloc[0]), model_kind=str(g["model_kind"].iloc[0]),
            n_seeds=len(g), n_failed=int(g["failed"].sum()),
            dis_mean=float(g[DIS].mean()), dis_std=float(g[DIS].std(ddof=1)),
            q_real_mean=float(g[Q_REAL].mean()), q_real_std=float(g[Q_REAL].std(ddof=1)), mi_mean=float(g[MI].mean()),
            fd_mean=float(g[FD].mean()), fd_std=float(g[FD].std(ddof=1)),
            best_trial=best_trial_of(g), has_pick=bool(pick) and pick in set(g["trial_id"]),
        ))  # fmt: skip
    return RankingInfo(rows, pick)


def _pm(mean: float, std: float) -> str:
    return fmt(mean) + ("" if math.isnan(std) else f" ± {fmt(std, 2)}")


def ranking_html(info: RankingInfo) -> str:
    head = _header("#", "configuration", "disentanglement ↑ (gen/cat_acc)", "FD ↓", "Q on real images",
                   "final MI bound", "seeds", "failed", "best trial")  # fmt: skip
    body = []
    for i, r in enumerate(info.rows, 1):
        pick = PICK_BADGE if r.has_pick else ""
        body.append(
            f'<tr class="{"failed" if r.n_failed == r.n_seeds else ""}"><td>{i}</td><td>{escape(r.label)}{pick}</td>'
            f"<td><b>{_pm(r.dis_mean, r.dis_std)}</b></td><td>{_pm(r.fd_mean, r.fd_std)}</td>"
            f"<td>{_pm(r.q_real_mean, r.q_real_std)}</td><td>{fmt(r.mi_mean)}</td><td>{r.n_seeds}</td>"
            f"<td>{r.n_failed}</td><td><code>{escape(r.best_trial) or '—'}</code></td></tr>"
        )
    return f'<table class="ranking">{head}{"".join(body)}</table>'


# ---------------------------------------------------------------------------------- failures
class FailedTrial(NamedTuple):
    trial_id: str
    group: str
    label: str
    status: str
    flags: list[str]  # raised flags, e.g. ["diverged"]
    first_step: float  # earliest step at which a flag held (NaN: none recorded)
    last_step: float  # last reported step in curves.parquet (NaN: no curves)
    reason: str


class FailureGroup(NamedTuple):
    group: str
    label: str
    n_failed: int
    n_trials: int
    modes: dict[str, int]  # flag or status -> count of trials


class FailureInfo(NamedTuple):
    groups: list[FailureGroup]  # groups with a failure, most failed first
    trials: list[FailedTrial]  # grouped like `groups`
    n_trials: int


def get_failure_info(tables: ReportTables) -> FailureInfo:
    trials = tables.trials
    last_step = tables.curves.groupby("trial_id")["step"].max()
    failed = []
    for _, t in trials[trials["failed"]].iterrows():
        flags = [c.removeprefix("flag/") for c in FLAG_COLUMNS if t[c]]
        steps = [float(t[f"flag/{f}_step"]) for f in flags if not math.isnan(t[f"flag/{f}_step"])]
        failed.append(FailedTrial(
            trial_id=str(t["trial_id"]), group=str(t["group"]), label=str(t["group_label"]),
            status=str(t["status"]), flags=flags,
            first_step=min(steps, default=float("nan")), last_step=float(last_step.get(t["trial_id"], np.nan)),
            reason=str(t["failure_reason"] or t["reason"]),
        ))  # fmt: skip
    groups = []
    for group, rows in pd.DataFrame(failed, columns=FailedTrial._fields).groupby("group", sort=False):
        modes: dict[str, int] = {}
        for flags, status in zip(rows["flags"], rows["status"]):
            for mode in flags or [status]:
                modes[mode] = modes.get(mode, 0) + 1
        n_trials = int((trials["group"] == group).sum())
        groups.append(FailureGroup(str(group), str(rows["label"].iloc[0]), len(rows), n_trials, modes))
    groups.sort(key=lambda g: -g.n_failed / g.n_trials)
    order = {g.group: i for i, g in enumerate(groups)}
    failed.sort(key=lambda f: order[f.group])
    return FailureInfo(groups, failed, len(trials))


def failure_html(info: FailureInfo) -> str:
    if not info.trials:
        return f"<p>No failures: all {info.n_trials} trials completed without a failure flag.</p>"
    summary = "".join(
        f"<li><b>{escape(g.label)}</b>: {g.n_failed} of {g.n_trials} seeds "
        f"({', '.join(f'{escape(m)} × {n}' for m, n in g.modes.items())})</li>"
        for g in info.groups
    )
    rows = "".join(
        f"<tr><td><code>{escape(f.trial_id)}</code></td><td>{escape(f.label)}</td><td>{escape(f.status)}</td>"
        f"<td>{escape(', '.join(f.flags)) or '—'}</td><td>{fmt(f.first_step, 6)}</td><td>{fmt(f.last_step, 6)}</td>"
        f"<td>{escape(f.reason)}</td></tr>"
        for f in info.trials
    )
    head = _header("trial", "configuration", "status", "flags", "flagged at step", "last step", "reason")
    n = len(info.trials)
    details = f"<details><summary>the {n} failed trials</summary><table>{head}{rows}</table></details>"
    return f"<p>{n} of {info.n_trials} trials failed.</p><ul>{summary}</ul>{details}"


# ---------------------------------------------------------------------------------- label-free pick
class SelectionInfo(NamedTuple):
    pick: str  # '' when no trial has a centrality
    pick_label: str
    pick_centrality: float
    n_candidates: int  # trials with a centrality: the pick chose among these
    pick_score: float  # CHECK score of the pick (NaN: not scored)
    best_trial: str  # the candidate with the highest CHECK score ('' if none is scored)
    best_score: float
    median_score: float  # a random candidate's expected score, roughly
    pick_rank: int  # 1 = the pick is the best scored candidate (0 if none is scored)


def get_selection_info(tables: ReportTables) -> SelectionInfo:
    trials = tables.trials
    pick = pick_trial(trials)
    if not pick:
        return SelectionInfo("", "", float("nan"), 0, float("nan"), "", float("nan"), float("nan"), 0)
    candidates = trials.dropna(subset=[CENTRALITY])
    row = candidates[candidates["trial_id"] == pick].iloc[0]
    labelled = candidates.dropna(subset=[CHECK]).sort_values(CHECK, ascending=False, kind="stable")
    pick_score = float(row[CHECK])
    if labelled.empty or math.isnan(pick_score):
        best, best_score, median, rank = "", float("nan"), float("nan"), 0
    else:
        best, best_score = str(labelled["trial_id"].iloc[0]), float(labelled[CHECK].iloc[0])
        median, rank = float(labelled[CHECK].median()), int((labelled[CHECK] > pick_score).sum()) + 1
    return SelectionInfo(pick, str(row["group_label"]), float(row[CENTRALITY]), len(candidates), pick_score,
                         best, best_score, median, rank)  # fmt: skip


def selection_html(info: SelectionInfo) -> str:
    if not info.pick:
        return "<p>No trial has a ModelCentrality score (selection/centrality); nothing was picked.</p>"
    text = (
        f"<p>Without labels, ModelCentrality (InfoGAN-CR) picks <code>{escape(info.pick)}</code> "
        f"({escape(info.pick_label)}, centrality {fmt(info.pick_centrality)}) among {info.n_candidates} candidates.</p>"
    )
    if not info.best_trial:
        return text + "<p>No generator-side score: how good the pick is cannot be checked here.</p>"
    if info.pick_rank == 1:
        versus = "the best of the candidates"
    else:
        versus = (
            f"rank {info.pick_rank} of the candidates; the best, <code>{escape(info.best_trial)}</code>, "
            f"scores {fmt(info.best_score)} (gap {fmt(info.best_score - info.pick_score, 2)})"
        )
    return text + (
        f"<p>Checked against the generator-side score ({CHECK}, which needs an evaluator): the pick scores <b>{fmt(info.pick_score)}</b>, {versus}; "
        f"the candidates' median is {fmt(info.median_score)}.</p>"
    )
