"""Seed populations: how often each configuration succeeds, and whether neighbours in the ranking
can be told apart on the seeds run.

On MNIST the outcome of one configuration is close to two-valued across seeds (each category
finds its own digit, or two digits share one), so a mean ± std hides what a researcher asks:
how likely is a seed of this configuration to succeed? Per configuration (ranking order):

- every seed's score (the ranking's score, and FD), for the strip plot;
- success rate: the share of scored seeds whose gen/cat_acc reaches `threshold` (default 0.9),
  with its 95% Wilson score interval (Wilson 1927; `scipy.stats.binomtest(...).proportion_ci`);
- against the next configuration down: the difference in mean score with a 95% percentile
  bootstrap interval over seeds (seeds resampled within each configuration,
  `scipy.stats.bootstrap`; optimistic with very few seeds), "cannot be told apart" when the
  interval holds 0, the Mann-Whitney U p-value beside it, and roughly how many seeds per
  configuration a two-sided 5% test would need to see the difference seen here with 80% power
  (normal approximation with the pooled seed spread: n = 2 (z_0.975 + z_0.8)^2 s^2 / d^2).

Without labels (`analyze --label-free-only`) the score is `selection/score` and no success rate
is computed. All randomness is seeded: the page is the same on every render.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from analysis.report._data import DIS, FD, ReportTables, group_order, ranking_score

BOOTSTRAP_RESAMPLES = 4000
POWER_Z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)  # two-sided 5% test, 80% power


class Interval(NamedTuple):
    low: float
    high: float


class GroupPopulation(NamedTuple):
    group: str
    label: str
    scores: list[float]  # (n_scored,) the ranking score of each scored seed, trial id order
    trial_ids: list[str]  # (n_scored,)
    fd: list[float]  # (n_fd,) FD of each seed that has one
    n_seeds: int  # seeds run, scored or not
    successes: int  # scored seeds at or above the threshold (labels only; 0 without)
    rate: float  # successes / n_scored (NaN: none scored, or no labels)
    interval: Interval  # 95% Wilson interval of the rate (NaN, NaN when not computed)


class Comparison(NamedTuple):
    better: str  # group id, higher in the ranking
    worse: str
    difference: float  # mean score of `better` minus `worse`'s
    interval: Interval  # 95% percentile bootstrap interval of the difference (NaN, NaN: too few seeds)
    p_value: float  # two-sided Mann-Whitney U (NaN: too few seeds)
    apart: bool  # the interval excludes 0
    more_seeds: int | None  # extra seeds per configuration to settle it (None: not estimable)


class PopulationInfo(NamedTuple):
    score: str  # the column ranked by: score/disentanglement, or selection/score without labels
    threshold: float  # success: gen/cat_acc >= threshold
    labels: bool  # False: no success rates
    groups: list[GroupPopulation]  # ranking order
    comparisons: list[Comparison]  # groups[i] against groups[i + 1]


def wilson_interval(successes: int, n: int) -> Interval:
    """95% Wilson score interval of a proportion successes / n (NaN, NaN for n = 0)."""
    if n == 0:
        return Interval(math.nan, math.nan)
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return Interval(float(ci.low), float(ci.high))


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def compare(better: np.ndarray, worse: np.ndarray, *, seed: int = 0) -> tuple[Interval, float, int | None]:
    """Bootstrap interval of mean(better) - mean(worse), Mann-Whitney p and the seeds to settle it,
    for two samples of per-seed scores (n_a,), (n_b,). Fewer than 2 seeds on a side: NaN, NaN, None."""
    if len(better) < 2 or len(worse) < 2:
        return Interval(math.nan, math.nan), math.nan, None
    boot = stats.bootstrap((better, worse), _mean_difference, n_resamples=BOOTSTRAP_RESAMPLES,
                           method="percentile", vectorized=True, rng=np.random.default_rng(seed))  # fmt: skip
    interval = Interval(float(boot.confidence_interval.low), float(boot.confidence_interval.high))
    p = float(stats.mannwhitneyu(better, worse, alternative="two-sided").pvalue)
    return interval, p, seeds_to_settle(better, worse)


def seeds_to_settle(a: np.ndarray, b: np.ndarray) -> int | None:
    """Extra seeds per configuration for a two-sided 5% test to see the observed difference in means
    with 80% power (normal approximation, pooled spread); 0 if the seeds run suffice; None when no
    difference or no spread was seen (nothing to extrapolate from)."""
    d = abs(float(np.mean(a) - np.mean(b)))
    pooled = ((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2)
    if d == 0 or pooled == 0:
        return None
    needed = math.ceil(2 * POWER_Z**2 * pooled / d**2)
    return max(0, needed - min(len(a), len(b)))


def get_population_info(tables: ReportTables) -> PopulationInfo:
    trials, score = tables.trials, ranking_score(tables)
    groups = []
    for group in group_order(trials, score):
        g = trials[trials["group"] == group].sort_values("trial_id")
        scored = g.dropna(subset=[score])
        values = scored[score].to_numpy(float)
        if tables.labels:
            successes = int((scored[DIS] >= tables.success_threshold).sum())
            rate = successes / len(scored) if len(scored) else math.nan
            interval = wilson_interval(successes, len(scored))
        else:
            successes, rate, interval = 0, math.nan, Interval(math.nan, math.nan)
        groups.append(GroupPopulation(
            group=group, label=str(g["group_label"].iloc[0]), scores=values.tolist(),
            trial_ids=scored["trial_id"].astype(str).tolist(), fd=g[FD].dropna().to_numpy(float).tolist(),
            n_seeds=len(g), successes=successes, rate=rate, interval=interval,
        ))  # fmt: skip
    comparisons = []
    for i, (a, b) in enumerate(itertools.pairwise(groups)):
        if not a.scores or not b.scores:
            continue
        x, y = np.asarray(a.scores), np.asarray(b.scores)
        interval, p, more = compare(x, y, seed=i)
        apart = bool(interval.low > 0 or interval.high < 0)
        comparisons.append(Comparison(a.group, b.group, float(x.mean() - y.mean()), interval, p, apart, more))
    return PopulationInfo(score, tables.success_threshold, tables.labels, groups, comparisons)


def comparison_text(c: Comparison, fmt: object) -> str:
    """One phrase on a comparison: 'cannot be told apart (...)' or 'ahead (...)'."""
    if math.isnan(c.interval.low):
        return "cannot be told apart: fewer than 2 scored seeds on a side"
    bounds = f"difference {fmt(c.difference, 2)}, 95% CI {fmt(c.interval.low, 2)} to {fmt(c.interval.high, 2)}"
    p = f", Mann-Whitney p = {fmt(c.p_value, 2)}"
    if c.apart:
        return f"ahead of the next ({bounds}{p})"
    if c.more_seeds is None:
        return f"cannot be told apart from the next ({bounds}{p}; no difference or spread seen to extrapolate from)"
    return (
        f"cannot be told apart from the next ({bounds}{p}); about {c.more_seeds} more seeds each would settle "
        "a difference this size"
    )


def strip_frame(info: PopulationInfo) -> pd.DataFrame:
    """Long format for the strip plot: group label, score, FD per seed (NaN where missing)."""
    rows = []
    for g in info.groups:
        rows += [{"label": g.label, "metric": info.score, "value": v} for v in g.scores]
        rows += [{"label": g.label, "metric": FD, "value": v} for v in g.fd]
    return pd.DataFrame(rows, columns=["label", "metric", "value"])
