"""What the report reads: an analysed experiment's parquet tables (analysis/schema.py) as
DataFrames, plus the per-trial facts every section shares (failed or not, which hyperparameters
vary). The report never opens the Tune folder; only the traversal grids open checkpoints.

`infogan-study analyze EXPERIMENT` writes the tables into the experiment folder (or its --out
folder, which the report then takes as EXPERIMENT); `load_tables` refuses anything else with a
one-line error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.schema import FLAG_COLUMNS, SCHEMAS, read_analysis, read_table
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError

DIS = "score/disentanglement"  # headline disentanglement (= gen/cat_acc, generator-side), higher is better
FD = "quality/fd"  # Frechet distance in the project classifier's features, lower is better
Q_REAL = "q/real_hungarian_acc"  # Q's clustering of real held-out images (the paper's protocol), shown beside
MI = "mi/final"  # the MI bound at the end of training, shown beside
CENTRALITY = "selection/centrality"  # ModelCentrality (InfoGAN-CR), label-free
PICK = "selection/score"  # what the label-free pick maximises (analyze's PICK_SIGNAL, on the candidates)
CHECK = DIS  # what the label-free pick is checked against: the generator-side score
FAILED_STATUSES = ("diverged", "error")  # failed: the run itself broke; a finished run with a flag is flagged
NOT_HYPERPARAMETERS = ("seed",)  # vary across the repeats of one configuration by design
SUCCESS_THRESHOLD = 0.9  # a seed succeeds when gen/cat_acc reaches this (report --success-threshold)


def label_free_pick(scores: dict[str, float]) -> tuple[str, tuple[str, ...]]:
    """The pick among trial id -> selection/score (NaN: not a candidate; `analysis.selection`): the highest score, and
    every trial that ties with it (itself included; ids in order). ('', ()) when none has a score."""
    scored = {tid: value for tid, value in scores.items() if math.isfinite(value)}
    if not scored:
        return "", ()
    best = max(scored.values())
    tied = tuple(sorted(tid for tid, value in scored.items() if value == best))
    return tied[0], tied


@dataclass(frozen=True)
class ReportTables:
    """The analysed experiment. `trials` has the TRIALS_SCHEMA columns plus bools `failed` and `flagged`."""

    experiment: str  # display name
    folder: Path  # the folder holding the tables (relative checkpoint paths start here)
    trials: pd.DataFrame  # (num_trials, TRIALS_SCHEMA + 2)
    curves: pd.DataFrame  # long: trial_id, step, metric, value
    selection: pd.DataFrame  # long: pool, data_trial, rep_trial, factor_vae (may be empty)
    common: str = ""  # settings shared by every group, cut from the group labels ("k=v k=v")
    labels: bool = True  # False: analyzed with --label-free-only (ranked by the label-free score)
    pick_signal: str = ""  # the selection/* column the label-free pick maximises ('' if not recorded)
    success_threshold: float = SUCCESS_THRESHOLD
    traversals: pd.DataFrame | None = None  # trial_id, code, png, width, note; None: not drawn by this analysis


def check_experiment(experiment: str | Path) -> Path:
    """The experiment folder, if it holds trials.parquet (else a BadInputError naming the fix)."""
    experiment = Path(experiment)
    if not experiment.is_dir():
        raise BadInputError(f"{experiment} is not a folder; pass an experiment folder (e.g. results/<name>)")
    if not (experiment / "trials.parquet").is_file():
        raise BadInputError(f"no trials.parquet in {experiment}; run `infogan-study analyze {experiment}` first")
    return experiment


def load_tables(experiment: str | Path, *, success_threshold: float = SUCCESS_THRESHOLD) -> ReportTables:
    """Read trials, curves and (if present) selection and traversals; refuse other schema versions or
    no trials."""
    folder = check_experiment(experiment)
    table = read_table("trials", folder / "trials.parquet")
    how = read_analysis(table)
    trials = table.to_pandas()
    if trials.empty:
        raise BadInputError(f"{folder / 'trials.parquet'} has no trials; run some trials, then `infogan-study analyze`")
    curves = read_table("curves", folder / "curves.parquet").to_pandas()
    if (folder / "selection.parquet").is_file():
        selection = read_table("selection", folder / "selection.parquet").to_pandas()
    else:
        selection = pd.DataFrame({name: [] for name in SCHEMAS["selection"].names})
    traversals = None
    if (folder / "traversals.parquet").is_file():
        traversals = read_table("traversals", folder / "traversals.parquet").to_pandas()
    for col in FLAG_COLUMNS:
        trials[col] = trials[col].fillna(False).astype(bool)
    for col in ("reason", "failure_reason", "checkpoint", "group_label", "status"):
        trials[col] = trials[col].fillna("").astype(str)
    group = trials["group"].fillna("")
    trials["group"] = group.where(group != "", trials["trial_id"])  # an ungrouped trial is its own group
    labels = trials["group_label"].where(trials["group_label"] != "", trials["group"])
    trials["group_label"], common = shorten_labels(labels)
    trials["failed"] = is_failed(trials)
    trials["flagged"] = ~trials["failed"] & (trials["failure_reason"] != "")
    names = trials["experiment"].dropna().unique()
    name = str(names[0]) if len(names) == 1 else folder.resolve().name
    return ReportTables(name, folder, trials.reset_index(drop=True), curves, selection, common,
                        bool(how.get("labels", True)), str(how.get("pick_signal", "")), success_threshold,
                        traversals)  # fmt: skip


def shorten_labels(labels: pd.Series) -> tuple[pd.Series, str]:
    """Cut the `k=v` settings every label shares from labels shaped "kind k=v k=v" (analyze's
    group_label): "infogan dataset=mnist lambda_info=2" -> "infogan lambda_info=2". Returns the
    short labels and the shared settings ("dataset=mnist")."""
    distinct = labels.unique()
    if len(distinct) < 2:
        return labels, ""
    token_sets = [{t for t in str(label).split(" ")[1:] if "=" in t} for label in distinct]
    shared = set.intersection(*token_sets)
    if not shared:
        return labels, ""

    def short(label: str) -> str:
        kind, *rest = label.split(" ")
        return " ".join([kind, *(t for t in rest if t not in shared)])

    order = [t for t in str(distinct[0]).split(" ") if t in shared]  # the settings in config order
    return labels.map(lambda label: short(str(label))), " ".join(order)


def is_failed(trials: pd.DataFrame) -> pd.Series:
    """A trial failed if its run broke: it diverged or errored. One that finished with a failure flag
    (MI stuck, D over-confident, mode collapse) is flagged, not failed."""
    return trials["status"].isin(FAILED_STATUSES)


def ranking_score(tables: ReportTables) -> str:
    """The column configurations are ranked by: the generator-side score, or without labels the
    label-free pick's score."""
    return DIS if tables.labels else PICK


def varying_params(trials: pd.DataFrame) -> list[str]:
    """Config fields (in InfoGANConfig order, seed excluded) that take more than one value."""
    return [
        name
        for name in InfoGANConfig.field_names()
        if name not in NOT_HYPERPARAMETERS and trials[name].nunique(dropna=False) > 1
    ]


def resolve_checkpoint(tables: ReportTables, checkpoint: str) -> Path | None:
    """The checkpoint path of a trial (relative paths start at the experiment folder), None if ''."""
    if not checkpoint:
        return None
    path = Path(checkpoint)
    return path if path.is_absolute() else tables.folder / path


def group_order(trials: pd.DataFrame, score: str = DIS) -> list[str]:
    """Group ids, best first: mean `score` across seeds (descending), then mean FD (ascending);
    groups without a score go last."""
    means = trials.groupby("group", sort=False)[[score, FD]].mean()
    means = means.assign(_neg=-means[score]).sort_values(["_neg", FD], na_position="last", kind="stable")
    return [str(g) for g in means.index]
