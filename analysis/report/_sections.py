"""The report's table sections: the ranking of configurations, failures and flags, and the
label-free pick. Each is computed into a NamedTuple (`get_x_info(tables)`), which the tests
check, then drawn as HTML (`x_html(info)`).

A configuration group is one InfoGANConfig without its seed; its seeds are repeats. Scores are
averaged over the seeds that produced one. A run that diverged or errored *failed*; one that
finished with a failure flag (MI stuck, D over-confident, mode collapse) is *flagged*.
"""

from __future__ import annotations

import math
from html import escape
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from analysis.report._data import CHECK, DIS, FD, MI, PICK, Q_REAL, ReportTables, label_free_pick, ranking_score
from analysis.report._population import Interval, PopulationInfo, comparison_text
from analysis.schema import FLAG_COLUMNS, SCORE_DESCRIPTIONS

PICK_BADGE = ' <span class="pick" title="the label-free pick">★ pick</span>'
SIGNALS = ("selection/q_balance", "selection/q_confidence", "selection/q_info", "selection/centrality",
           "selection/mean_pairwise_nmi")  # fmt: skip


def fmt(x: float, digits: int = 3) -> str:
    """A number for a table cell: `digits` significant digits, whole numbers above 10**digits (no
    exponents), an em dash for NaN."""
    if x is None or math.isnan(x):
        return "—"
    return f"{x:.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}"


def percent(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.0f}%"


def rate_text(successes: int, n: int, interval: Interval) -> str:
    """'5 of 6 seeds (83%, 95% CI 44–97%)'."""
    if n == 0:
        return "no scored seed"
    return (
        f"{successes} of {n} seed{'s' if n > 1 else ''} ({percent(successes / n)}, "
        f"95% CI {percent(interval.low)}–{percent(interval.high)})"
    )


def best_trial_of(rows: pd.DataFrame, score: str = DIS) -> str:
    """The group's trial with the highest `score` (ties: lower FD); '' if none scored."""
    scored = rows.dropna(subset=[score])
    if scored.empty:
        return ""
    return str(scored.sort_values([score, FD], ascending=[False, True], kind="stable").iloc[0]["trial_id"])


def pick_trial(trials: pd.DataFrame) -> str:
    """The label-free pick: the candidate with the highest selection/score ('' if none)."""
    return label_free_pick(dict(zip(trials["trial_id"].astype(str), trials[PICK].astype(float))))[0]


def _header(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"


# ---------------------------------------------------------------------------------- ranking
class GroupRow(NamedTuple):
    group: str
    label: str
    model_kind: str
    n_seeds: int
    n_failed: int  # diverged or errored
    n_flagged: int  # finished with a failure flag
    successes: int  # seeds with gen/cat_acc >= the threshold
    n_scored: int
    interval: Interval  # 95% Wilson interval of successes / n_scored
    score_mean: float  # the ranking score over the seeds with one
    score_std: float  # sample std (ddof=1); NaN with fewer than 2 scored seeds
    q_real_mean: float  # Q's clustering of real images (NaN without labels)
    mi_mean: float  # final MI bound
    fd_mean: float
    fd_std: float
    best_trial: str  # '' if no seed was scored
    has_pick: bool  # the label-free pick is one of this group's trials
    versus_next: str  # how it compares with the next row ('' for the last)


class RankingInfo(NamedTuple):
    rows: list[GroupRow]  # best first
    pick: str  # trial id of the label-free pick ('' if none)
    score: str  # the column ranked by
    labels: bool
    threshold: float


def get_ranking_info(tables: ReportTables, population: PopulationInfo) -> RankingInfo:
    trials, score = tables.trials, ranking_score(tables)
    pick = pick_trial(trials)
    versus = {c.better: comparison_text(c, fmt) for c in population.comparisons}
    rows = []
    for p in population.groups:
        g = trials[trials["group"] == p.group]
        rows.append(GroupRow(
            group=p.group, label=p.label, model_kind=str(g["model_kind"].iloc[0]), n_seeds=len(g),
            n_failed=int(g["failed"].sum()), n_flagged=int(g["flagged"].sum()), successes=p.successes,
            n_scored=len(p.scores), interval=p.interval,
            score_mean=float(g[score].mean()), score_std=float(g[score].std(ddof=1)),
            q_real_mean=float(g[Q_REAL].mean()), mi_mean=float(g[MI].mean()),
            fd_mean=float(g[FD].mean()), fd_std=float(g[FD].std(ddof=1)),
            best_trial=best_trial_of(g, score), has_pick=bool(pick) and pick in set(g["trial_id"]),
            versus_next=versus.get(p.group, ""),
        ))  # fmt: skip
    return RankingInfo(rows, pick, score, tables.labels, tables.success_threshold)


def _pm(mean: float, std: float) -> str:
    return fmt(mean) + ("" if math.isnan(std) else f" ± {fmt(std, 2)}")


def ranking_html(info: RankingInfo) -> str:
    if info.labels:
        names = ("#", "configuration", f"succeeded (gen/cat_acc ≥ {fmt(info.threshold, 2)})",
                 "disentanglement ↑ (gen/cat_acc)", "FD ↓", "Q on real images", "final MI bound", "seeds",
                 "flagged", "failed", "against the next", "best trial")  # fmt: skip
    else:
        names = ("#", "configuration", f"label-free score ↑ ({PICK})", "final MI bound", "seeds", "flagged",
                 "failed", "against the next", "best trial by it")  # fmt: skip
    body = []
    for i, r in enumerate(info.rows, 1):
        pick = PICK_BADGE if r.has_pick else ""
        cells = [str(i), f"{escape(r.label)}{pick}"]
        if info.labels:
            cells += [rate_text(r.successes, r.n_scored, r.interval), f"<b>{_pm(r.score_mean, r.score_std)}</b>",
                      _pm(r.fd_mean, r.fd_std), fmt(r.q_real_mean), fmt(r.mi_mean)]  # fmt: skip
        else:
            cells += [f"<b>{_pm(r.score_mean, r.score_std)}</b>", fmt(r.mi_mean)]
        cells += [str(r.n_seeds), str(r.n_flagged), str(r.n_failed), escape(r.versus_next) or "—",
                  f"<code>{escape(r.best_trial) or '—'}</code>"]  # fmt: skip
        row_class = "failed" if r.n_failed == r.n_seeds else ""
        body.append(f'<tr class="{row_class}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="ranking">{_header(*names)}{"".join(body)}</table>'


# ---------------------------------------------------------------------------------- failures and flags
class ProblemTrial(NamedTuple):
    trial_id: str
    group: str
    label: str
    status: str
    kind: str  # "failed" (diverged or errored) or "flagged" (finished with a failure flag)
    flags: list[str]  # raised flags, e.g. ["mi_stuck"]
    first_step: float  # earliest step at which a flag held (NaN: none recorded)
    last_step: float  # last reported step in curves.parquet (NaN: no curves)
    reason: str


class ProblemGroup(NamedTuple):
    group: str
    label: str
    n_failed: int
    n_flagged: int
    n_trials: int
    modes: dict[str, int]  # flag or status -> count of trials


class FailureInfo(NamedTuple):
    groups: list[ProblemGroup]  # groups with a failure or flag, most affected first
    trials: list[ProblemTrial]  # grouped like `groups`
    n_trials: int
    n_failed: int
    n_flagged: int


def get_failure_info(tables: ReportTables) -> FailureInfo:
    trials = tables.trials
    last_step = tables.curves.groupby("trial_id")["step"].max()
    problems = []
    for _, t in trials[trials["failed"] | trials["flagged"]].iterrows():
        flags = [c.removeprefix("flag/") for c in FLAG_COLUMNS if t[c]]
        steps = [float(t[f"flag/{f}_step"]) for f in flags if not math.isnan(t[f"flag/{f}_step"])]
        problems.append(ProblemTrial(
            trial_id=str(t["trial_id"]), group=str(t["group"]), label=str(t["group_label"]),
            status=str(t["status"]), kind="failed" if t["failed"] else "flagged", flags=flags,
            first_step=min(steps, default=float("nan")), last_step=float(last_step.get(t["trial_id"], np.nan)),
            reason=str(t["failure_reason"] or t["reason"]),
        ))  # fmt: skip
    groups = []
    for group, rows in pd.DataFrame(problems, columns=ProblemTrial._fields).groupby("group", sort=False):
        modes: dict[str, int] = {}
        for flags, status in zip(rows["flags"], rows["status"]):
            for mode in flags or [status]:
                modes[mode] = modes.get(mode, 0) + 1
        n_trials = int((trials["group"] == group).sum())
        n_failed = int((rows["kind"] == "failed").sum())
        groups.append(ProblemGroup(str(group), str(rows["label"].iloc[0]), n_failed, len(rows) - n_failed,
                                   n_trials, modes))  # fmt: skip
    groups.sort(key=lambda g: (-(g.n_failed + g.n_flagged) / g.n_trials, -g.n_failed))
    order = {g.group: i for i, g in enumerate(groups)}
    problems.sort(key=lambda f: order[f.group])
    n_failed = int(trials["failed"].sum())
    return FailureInfo(groups, problems, len(trials), n_failed, int(trials["flagged"].sum()))


def failure_html(info: FailureInfo) -> str:
    if not info.trials:
        return f"<p>No failures and no flags: all {info.n_trials} trials finished cleanly.</p>"
    summary = "".join(
        f"<li><b>{escape(g.label)}</b>: {g.n_failed} failed, {g.n_flagged} flagged of {g.n_trials} seeds "
        f"({', '.join(f'{escape(m)} × {n}' for m, n in g.modes.items())})</li>"
        for g in info.groups
    )
    rows = "".join(
        f"<tr><td><code>{escape(f.trial_id)}</code></td><td>{escape(f.label)}</td><td>{f.kind}</td>"
        f"<td>{escape(f.status)}</td><td>{escape(', '.join(f.flags)) or '—'}</td><td>{fmt(f.first_step, 6)}</td>"
        f"<td>{fmt(f.last_step, 6)}</td><td>{escape(f.reason)}</td></tr>"
        for f in info.trials
    )
    head = _header("trial", "configuration", "failed or flagged", "status", "flags", "flagged at step",
                   "last step", "reason")  # fmt: skip
    details = f"<details><summary>the {len(info.trials)} trials</summary><table>{head}{rows}</table></details>"
    return (
        f"<p>Of {info.n_trials} trials, {info.n_failed} failed (diverged or errored) and {info.n_flagged} finished "
        f"with a failure flag.</p><ul>{summary}</ul>{details}"
    )


# ---------------------------------------------------------------------------------- label-free pick
class SignalCheck(NamedTuple):
    """How one label-free signal would have chosen among the candidates, checked against labels."""

    column: str
    definition: str
    n: int  # candidates with both the signal and the check score
    spearman: float  # rank correlation of the signal with CHECK over them (NaN: n < 3 or constant)
    pick: str  # the candidate it ranks first
    pick_score: float  # its CHECK score
    regret: float  # best candidate's CHECK score minus the pick's


class SelectionInfo(NamedTuple):
    signal: str  # the selection/* column the pick maximises ('' if not recorded)
    pick: str  # '' when no candidate has a score
    tied: tuple[str, ...]  # candidates tied with the pick (itself included)
    pick_label: str
    pick_value: float  # the pick's selection/score
    n_candidates: int  # trials with a selection/score: the pick chose among these
    pick_score: float  # CHECK score of the pick (NaN: no labels)
    best_trial: str  # the candidate with the highest CHECK score ('' if none is scored)
    best_score: float
    median_score: float  # a random candidate's expected score, roughly
    pick_rank: int  # 1 = the pick is the best scored candidate (0 if none is scored)
    checks: list[SignalCheck]  # every signal's own pick and correlation (empty without labels)


def _signal_check(candidates: pd.DataFrame, column: str) -> SignalCheck:
    both = candidates.dropna(subset=[column, CHECK]).sort_values("trial_id")
    definition = SCORE_DESCRIPTIONS.get(column, "")
    if both.empty:
        return SignalCheck(column, definition, 0, math.nan, "", math.nan, math.nan)
    rho = math.nan
    if len(both) >= 3 and both[column].nunique() > 1 and both[CHECK].nunique() > 1:
        rho = float(stats.spearmanr(both[column], both[CHECK]).statistic)
    top = label_free_pick(dict(zip(both["trial_id"].astype(str), both[column].astype(float))))[0]
    score = float(both.loc[both["trial_id"] == top, CHECK].iloc[0])
    return SignalCheck(column, definition, len(both), rho, top, score, float(both[CHECK].max()) - score)


def get_selection_info(tables: ReportTables) -> SelectionInfo:
    trials = tables.trials
    candidates = trials.dropna(subset=[PICK])
    pick, tied = label_free_pick(dict(zip(candidates["trial_id"].astype(str), candidates[PICK].astype(float))))
    if not pick:
        nan = float("nan")
        return SelectionInfo(tables.pick_signal, "", (), "", nan, 0, nan, "", nan, nan, 0, [])
    row = candidates[candidates["trial_id"] == pick].iloc[0]
    labelled = candidates.dropna(subset=[CHECK]).sort_values(CHECK, ascending=False, kind="stable")
    pick_score = float(row[CHECK])
    if labelled.empty or math.isnan(pick_score):
        best, best_score, median, rank = "", float("nan"), float("nan"), 0
    else:
        best, best_score = str(labelled["trial_id"].iloc[0]), float(labelled[CHECK].iloc[0])
        median, rank = float(labelled[CHECK].median()), int((labelled[CHECK] > pick_score).sum()) + 1
    checks = [_signal_check(candidates, c) for c in SIGNALS if candidates[c].notna().any()] if best else []
    return SelectionInfo(tables.pick_signal, pick, tied, str(row["group_label"]), float(row[PICK]),
                         len(candidates), pick_score, best, best_score, median, rank, checks)  # fmt: skip


def _signal_name(column: str) -> str:
    return column.removeprefix("selection/") if column else "the recorded score"


def selection_html(info: SelectionInfo) -> str:
    if not info.pick:
        return (
            "<p>No trial is a candidate (none has a selection/score: no model's final MI bound reached 0.5); "
            "nothing was picked.</p>"
        )
    definition = SCORE_DESCRIPTIONS.get(info.signal, "")
    ties = ""
    if len(info.tied) > 1:
        others = ", ".join(info.tied[1:])
        ties = f" It ties with {len(info.tied) - 1} other candidate(s) ({others}); the first by id is shown."
    text = (
        f"<p>Without labels, the pick is <code>{escape(info.pick)}</code> ({escape(info.pick_label)}): the highest "
        f"<code>{escape(_signal_name(info.signal))}</code> ({fmt(info.pick_value)}) "
        f"among {info.n_candidates} candidates "
        f"(models whose final MI bound reached 0.5). {escape(definition)}{escape(ties)}</p>"
    )
    if not info.best_trial:
        return (
            text
            + "<p>No generator-side score (no labels or no evaluator): how good the pick is cannot be checked here.</p>"
        )
    if info.pick_rank == 1:
        versus = "the best of the candidates"
    else:
        versus = (
            f"rank {info.pick_rank} of the candidates; the best, <code>{escape(info.best_trial)}</code>, "
            f"scores {fmt(info.best_score)} (regret {fmt(info.best_score - info.pick_score, 2)})"
        )
    text += (
        f"<p>Checked against the generator-side score ({CHECK}, which needs labels): the pick scores "
        f"<b>{fmt(info.pick_score)}</b>, {versus}; the candidates' median is {fmt(info.median_score)}.</p>"
    )
    rows = "".join(
        f"<tr><td><code>{escape(_signal_name(c.column))}</code>"
        f"{' (the pick’s)' if c.column == info.signal else ''}</td>"
        f"<td>{escape(c.definition)}</td><td>{c.n}</td><td>{fmt(c.spearman, 2)}</td>"
        f"<td><code>{escape(c.pick) or '—'}</code></td><td>{fmt(c.pick_score)}</td><td>{fmt(c.regret, 2)}</td></tr>"
        for c in info.checks
    )
    head = _header("signal", "what it measures", "candidates", f"Spearman with {CHECK}", "it would pick",
                   f"that model's {CHECK}", "regret")  # fmt: skip
    return text + f"<p>Each label-free signal, checked on these models:</p><table>{head}{rows}</table>"
