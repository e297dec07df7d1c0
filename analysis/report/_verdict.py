"""The report's opening verdict: a few plain sentences written from the parquet tables.

Which configurations disentangle and how often (success rate with its 95% Wilson interval), which
do not, whether the top of the ranking can be told apart on the seeds run, which hyperparameters
matter most (Optuna's fANOVA, when it could be computed), the label-free pick and how it was
chosen, and how many runs failed or were flagged. Without labels it says so and what the ranking
uses instead. Every number comes from the section infos the page also draws.
"""

from __future__ import annotations

import math
from html import escape
from typing import NamedTuple

from analysis.report._data import CHECK, PICK, ReportTables
from analysis.report._figures import ImportanceInfo
from analysis.report._population import GroupPopulation, PopulationInfo, comparison_text
from analysis.report._sections import FailureInfo, SelectionInfo, fmt, rate_text
from analysis.schema import SCORE_DESCRIPTIONS

MAX_NAMED = 4  # configurations named per sentence; the rest are counted


class VerdictInfo(NamedTuple):
    sentences: list[str]  # plain text, in reading order


def _names(groups: list[GroupPopulation], *, rates: bool) -> str:
    named = [
        f"{g.label}: {rate_text(g.successes, len(g.scores), g.interval)}" if rates else g.label
        for g in groups[:MAX_NAMED]
    ]
    more = len(groups) - MAX_NAMED
    return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


def _disentangle(population: PopulationInfo) -> list[str]:
    scored = [g for g in population.groups if g.scores]
    threshold = fmt(population.threshold, 2)
    always = [g for g in scored if g.successes == len(g.scores)]
    some = [g for g in scored if 0 < g.successes < len(g.scores)]
    never = [g for g in scored if g.successes == 0]
    out = []
    if always:
        out.append(f"Disentangle in every seed run (gen/cat_acc ≥ {threshold}): {_names(always, rates=True)}.")
    if some:
        out.append(f"Disentangle in some seeds only: {_names(some, rates=True)}.")
    if never:
        out.append(f"Do not disentangle (no seed reached {threshold}): {_names(never, rates=True)}.")
    if not scored:
        out.append("No configuration has a generator-side score (no evaluator for this dataset).")
    return out


def _order(population: PopulationInfo) -> list[str]:
    comparisons = {c.better: c for c in population.comparisons}
    if len(population.groups) < 2 or population.groups[0].group not in comparisons:
        return []
    top = population.groups[0]
    c = comparisons[top.group]
    if c.apart:
        return [f"The top configuration, {top.label}, is {comparison_text(c, fmt)}."]
    tied = [top.label, population.groups[1].label]
    for g in population.groups[2:]:  # extend the run of neighbours that cannot be told apart
        prev = comparisons.get(population.groups[len(tied) - 1].group)
        if prev is None or prev.apart:
            break
        tied.append(g.label)
    if math.isnan(c.interval.low):
        detail = "fewer than 2 scored seeds on a side"
    else:
        detail = (f"the top two differ by {fmt(c.difference, 2)} in mean score, 95% CI {fmt(c.interval.low, 2)} to "
                  f"{fmt(c.interval.high, 2)}")  # fmt: skip
    more = "" if c.more_seeds is None else f"; about {c.more_seeds} more seeds each would settle a difference this size"
    return [
        f"The top {len(tied)} configurations ({', '.join(tied)}) cannot be told apart "
        f"on the seeds run ({detail}){more}."
    ]


def _importance(importance: ImportanceInfo) -> list[str]:
    if not importance.importances:
        return [f"Hyperparameter importance: {importance.note.removeprefix('Not computed: ')}"]
    name, values = next(iter(importance.importances.items()))
    top = [f"{p} ({fmt(values[p], 2)})" for p in importance.params[:3]]
    caution = " (few trials: read as rough)" if importance.n_trials < 10 else ""
    return [f"Hyperparameters that matter most for {CHECK} ({name} importance{caution}): {', '.join(top)}."]


def _pick(selection: SelectionInfo) -> list[str]:
    if not selection.pick:
        return ["No label-free pick: no model's final MI bound reached 0.5, so no model is a candidate."]
    signal = selection.signal.removeprefix("selection/") or PICK
    definition = SCORE_DESCRIPTIONS.get(selection.signal, "")
    text = (
        f"The label-free pick is {selection.pick} ({selection.pick_label}): the highest {signal} among "
        f"{selection.n_candidates} candidates. {definition}"
    )
    if selection.best_trial:
        if selection.pick_rank == 1:
            text += f" Checked against labels, it is the best candidate ({CHECK} {fmt(selection.pick_score)})."
        else:
            text += (
                f" Checked against labels, its {CHECK} is {fmt(selection.pick_score)}, rank {selection.pick_rank}; "
                f"the best candidate scores {fmt(selection.best_score)}."
            )
    return [text]


def _failures(failures: FailureInfo) -> list[str]:
    if not failures.n_failed and not failures.n_flagged:
        return [f"All {failures.n_trials} trials finished without a failure flag."]

    def modes(kind: str) -> str:
        counts: dict[str, int] = {}
        for t in failures.trials:
            if t.kind == kind:
                for mode in t.flags or [t.status]:
                    counts[mode] = counts.get(mode, 0) + 1
        return f" ({', '.join(f'{m.replace(chr(95), chr(32))} × {n}' for m, n in counts.items())})" if counts else ""

    return [
        f"Of {failures.n_trials} trials, {failures.n_failed} failed{modes('failed')} and {failures.n_flagged} "
        f"finished with a failure flag{modes('flagged')}."
    ]


def get_verdict_info(
    tables: ReportTables,
    population: PopulationInfo,
    importance: ImportanceInfo,
    selection: SelectionInfo,
    failures: FailureInfo,
) -> VerdictInfo:
    sentences: list[str] = []
    if tables.labels:
        sentences += _disentangle(population)
    else:
        sentences.append(
            f"No labels were used (analyze --label-free-only): configurations are ranked by the label-free pick's "
            f"score, {selection.signal or PICK}, and success rates, which need labels, are not shown."
        )
    sentences += _order(population)
    if tables.labels:
        sentences += _importance(importance)
    sentences += _pick(selection)
    sentences += _failures(failures)
    return VerdictInfo([s for s in sentences if s])


def verdict_html(info: VerdictInfo) -> str:
    return '<ul class="verdict">' + "".join(f"<li>{escape(s)}</li>" for s in info.sentences) + "</ul>"
