"""`infogan-study analyze`: a Tune experiment folder in, trials/curves/selection/traversals.parquet out.

Pipeline: read the folder (`analysis.tune_folder`), train each dataset's classifiers once
(cached in the storage folder's .cache/, <experiment>/../.cache), score every trial's final or best
checkpoint (`analysis.scoring`; one call per trial through a `Mapper`: in-process, local processes or
Ray tasks), summarise the MI curves and raise failure flags from the reports, run the label-free selection pools
(`analysis.selection`), then write the three tables (`analysis.schema`) and the traversal grids of the
trials the report will show. Every trial gets a row,
also one that errored, diverged or has no checkpoint, with its status and reason. Every random
draw is seeded from the trial id (or pool), so a re-run writes the same values (`scoring_s`, a
measured time, aside).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from analysis.evaluators import EvaluatorFiles
from analysis.metrics import compute_failure_flags, compute_mi_curve_summary
from analysis.schema import FLAG_COLUMNS, SCHEMAS, SCORE_COLUMNS, write_table
from analysis.scoring import (
    FULL,
    ScoringCounts,
    TrialScores,
    TrialTask,
    data_key,
    prepare_evaluators,
    score_trial,
    seed_from,
)
from analysis.selection import MIN_CANDIDATE_MI, PICK_SIGNAL, Mapper, Member, Selection, pick_score, select_models
from analysis.tune_folder import Curve, Experiment, TrialRecord, read_experiment
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.files import check_writable
from trainables.trial_record import VARIANT_KEY

GROUP_EXCLUDED = ("seed", "data_root")  # a configuration group is the config without these


def group_id(config: InfoGANConfig) -> str:
    """A stable id of the configuration without seed and data_root: 'g' + 10 hex digits."""
    values = {k: v for k, v in config.to_dict().items() if k not in GROUP_EXCLUDED}
    return "g" + hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def group_label(config: InfoGANConfig) -> str:
    """Readable: the model kind and the fields (except seed and data_root) that differ from the defaults."""
    defaults = InfoGANConfig()
    changed = [
        f"{name}={_format(getattr(config, name))}"
        for name in InfoGANConfig.field_names()
        if name not in GROUP_EXCLUDED and getattr(config, name) != getattr(defaults, name)
    ]
    return f"{config.model_kind} " + (" ".join(changed) or "defaults")


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class AnalysisFiles:
    trials: Path
    curves: Path
    selection: Path
    traversals: Path  # the report's traversal grids
    num_trials: int
    num_scored: int
    lost_checkpoints: tuple[str, ...] = ()  # trials whose saved checkpoints are no longer on disk

    @property
    def paths(self) -> list[Path]:
        """Every file written."""
        return [self.trials, self.curves, self.selection, self.traversals]


def check_scorable(experiment: Experiment) -> tuple[str, ...]:
    """The trials whose checkpoints were lost (saved, none on disk: `TrialRecord.lost_checkpoints`);
    a one-line BadInputError when that leaves no trial to score."""
    lost = tuple(t.trial_id for t in experiment.trials if t.config is not None and t.lost_checkpoints)
    if lost and not any(t.choose_checkpoint("final") for t in experiment.trials if t.config is not None):
        raise BadInputError(
            f"no checkpoint left to score in {experiment.path}: {len(lost)} trial(s) saved checkpoints that are "
            "no longer on disk (deleted, or copied without their checkpoint_* folders); put them back, or run "
            "analyze where they are"
        )
    return lost


def serial_map(fn: Callable[[Any], Any], items: Sequence[Any], desc: str, *, progress: bool = False) -> list[Any]:
    """In-process map with an optional tqdm bar (the default `Mapper`)."""
    from tqdm.auto import tqdm

    return [fn(item) for item in tqdm(items, desc=desc, unit="model", disable=not progress or not items)]


def analyze_experiment(
    path: str | Path | Experiment,
    *,
    out: str | Path | None = None,
    checkpoint: str = "final",
    counts: ScoringCounts = FULL,
    centrality_max_models: int = 16,
    selection: bool = True,
    labels: bool = True,
    data_root: str | None = None,
    device: str = "cpu",
    mapper: Mapper | None = None,
    progress: bool = False,
    cache: str | Path | None = None,
) -> AnalysisFiles:
    """Score every trial of a Tune experiment (its folder, or as `read_experiment` read it) and
    write trials/curves/selection/traversals.parquet to `out` (default: the experiment folder), all only
    once everything is computed. Bad input (an unwritable `out`, no checkpoint left to score) is
    refused before anything is written. `selection=False` skips the label-free selection pools
    (ModelCentrality and the agreement between seeds); the per-model signals are always computed.
    `labels=False`: nothing reads the datasets' labels (no evaluators, q/real_*, ground-truth or
    sample-quality scores): the label-free signals only, for data without labels. `cache`: where the
    dataset classifiers are kept (default: the storage folder's .cache, beside the experiment)."""
    if checkpoint not in ("final", "best"):
        raise BadInputError(f"checkpoint={checkpoint!r}: use final or best")
    if centrality_max_models < 2:
        raise BadInputError(f"centrality_max_models={centrality_max_models}: ModelCentrality needs >= 2 models")
    experiment = path if isinstance(path, Experiment) else read_experiment(path)
    lost = check_scorable(experiment)
    out_dir = Path(out) if out is not None else experiment.path
    check_writable(out_dir, what=f"--out {out_dir}" if out is not None else str(out_dir),
                   fix="pass --out DIR with a writable folder")  # fmt: skip
    # the storage folder's cache: the classifiers are shared with the sweeps' probes and other studies
    cache_dir = _writable_dir(Path(cache) if cache is not None else experiment.path.parent / ".cache",
                              fallback=out_dir / ".cache")  # fmt: skip
    mapper = mapper or functools.partial(serial_map, progress=progress)

    trials = {t.trial_id: t for t in experiment.trials}
    chosen = {tid: t.choose_checkpoint(checkpoint) for tid, t in trials.items() if t.config is not None}
    chosen = {tid: c for tid, c in chosen.items() if c is not None}
    evaluator_files = (
        prepare_evaluators([trials[tid].config for tid in chosen], cache_dir, counts, data_root) if labels else {}
    )
    no_evaluator = EvaluatorFiles(None, ())
    tasks = [
        TrialTask(tid, str(c.path), seed_from(tid), counts,
                  evaluator_files.get(data_key(trials[tid].config), no_evaluator), data_root, device, labels)
        for tid, c in chosen.items()
    ]  # fmt: skip
    scored: dict[str, TrialScores] = {s.trial_id: s for s in mapper(score_trial, tasks, "scoring trials")}
    curves = {tid: _code_curves(t) for tid, t in trials.items()}
    summaries = {tid: _mi_summary(c) for tid, c in curves.items()}
    members = [
        Member(tid, group_id(trials[tid].config), _images(trials[tid].config), str(chosen[tid].path),
               str(data_key(trials[tid].config)), s.assignments, summaries[tid]["mi/final"],
               {k: v for k, v in s.scores.items() if k.startswith("selection/")})
        for tid, s in scored.items() if not s.error and trials[tid].config.has_codes
    ]  # fmt: skip
    chosen_models = (
        select_models(members, counts=counts, max_models=centrality_max_models, device=device, mapper=mapper)
        if selection
        else Selection({m.trial_id for m in members if m.mi >= MIN_CANDIDATE_MI}, {}, {}, [], {})
    )

    rows = [_trial_row(experiment.name, t, scored.get(t.trial_id), curves[t.trial_id], summaries[t.trial_id],
                       chosen_models, out_dir) for t in experiment.trials]  # fmt: skip
    tables = {
        "trials": pa.Table.from_pylist(rows, schema=SCHEMAS["trials"]),
        "curves": _curves_table({t.trial_id: t.curves for t in experiment.trials}),
        "selection": pa.Table.from_pylist(chosen_models.rows, schema=SCHEMAS["selection"]),
    }
    how = {"labels": labels, "pick_signal": PICK_SIGNAL, "checkpoint": checkpoint, "population_signals": selection}
    paths = _write_together(tables, out_dir, analysis=how)
    num_scored = sum(1 for s in scored.values() if not s.error)
    return AnalysisFiles(paths["trials"], paths["curves"], paths["selection"], paths["traversals"], len(rows),
                         num_scored, lost)  # fmt: skip


def _writable_dir(path: Path, *, fallback: Path | None = None) -> Path:
    """`path`, created; if it cannot be written, `fallback` (or a one-line error)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
        return path
    except OSError as err:
        if fallback is not None:
            return _writable_dir(fallback)
        raise BadInputError(f"cannot write to {path} ({err.strerror}); pass --out DIR with a writable folder") from None


def _images(config: InfoGANConfig) -> str:
    return config.dataset + (f"@{config.image_size}px" if config.image_size else "")


def _code_curves(trial: TrialRecord) -> dict[str, Curve]:
    """The curves flags and MI summaries read: without `mi/cat*` for a model with no categorical
    code (the trainer reports a constant 0 there, which is no sign of a stuck code)."""
    if trial.config is None or trial.config.n_cat_codes > 0:
        return trial.curves
    return {name: curve for name, curve in trial.curves.items() if not name.startswith("mi/cat")}


def _mi_summary(curves: dict[str, Curve]) -> dict[str, float]:
    if "mi/cat" not in curves:
        return dict.fromkeys(("mi/final", "mi/max", "mi/step_0.9", "mi/auc"), math.nan)
    summary = compute_mi_curve_summary(*curves["mi/cat"])
    return {"mi/final": summary["final"], "mi/max": summary["max"], "mi/step_0.9": summary["step_to_threshold"],
            "mi/auc": summary["auc"]}  # fmt: skip


_NO_CHECKPOINT = {"completed": "no checkpoint on disk", "diverged": "no checkpoint before the divergence",
                  "error": "no checkpoint", "running": "no checkpoint yet", "pending": ""}  # fmt: skip


def _trial_row(
    experiment: str, trial: TrialRecord, score: TrialScores | None, curves: dict[str, Curve],
    mi: dict[str, float], selection: Selection, out_dir: Path,
) -> dict[str, Any]:  # fmt: skip
    """One trials.parquet row: identity, config, status, scores, flags."""
    cfg, tid = trial.config, trial.trial_id
    row: dict[str, Any] = dict.fromkeys(SCORE_COLUMNS, math.nan) | (cfg.to_dict() if cfg else {})
    row |= {"trial_id": tid, "experiment": experiment, "last_step": trial.last_step, "scoring_s": math.nan,
            "group": group_id(cfg) if cfg else "", "group_label": group_label(cfg) if cfg else "invalid config",
            "model_kind": cfg.model_kind if cfg else "", "variant": str(trial.params.get(VARIANT_KEY, "")),
            "checkpoint": "", "quality/inception_fid_note": ""}  # fmt: skip
    status, reasons = trial.status, [trial.reason]
    if score is None or score.error:
        reasons.append(
            f"not scored: {score.error}" if score else _NO_CHECKPOINT.get(status, "no checkpoint") if cfg else ""
        )
        status = "unscored" if status == "completed" else status
    else:
        row |= score.scores | {"checkpoint": _location(score.checkpoint, out_dir),
                               "quality/inception_fid_note": score.inception_note}  # fmt: skip
        reasons += score.notes
    row |= mi | {"selection/centrality": selection.centrality.get(tid, math.nan),
                 "selection/mean_pairwise_nmi": selection.nmi.get(tid, math.nan),
                 "scoring_s": score.seconds if score else math.nan}  # fmt: skip
    row["selection/score"] = pick_score(tid, {k: v for k, v in row.items() if k.startswith("selection/")}, selection)
    flags = compute_failure_flags(curves, class_coverage=score.class_coverage if score else None)
    for name in FLAG_COLUMNS:
        flag = name.removeprefix("flag/")
        row[name], row[f"{name}_step"] = bool(flags[flag]), float(flags[f"{flag}_step"])
    row["failure_reason"] = flags["failure_reason"]
    row["status"], row["reason"] = status, "; ".join(r for r in [*reasons, *selection.notes.get(tid, [])] if r)
    return row


def _location(checkpoint: str, out_dir: Path) -> str:
    """A checkpoint as the report finds it: relative to the tables' folder when inside it (the
    experiment folder moves with its tables), else absolute."""
    path = Path(checkpoint).resolve()
    try:
        return str(path.relative_to(out_dir.resolve()))
    except ValueError:
        return str(path)


def _curves_table(curves: dict[str, dict[str, Curve]]) -> pa.Table:
    """Long format (trial_id, step, metric, value), sorted by trial, metric, step."""
    parts = [
        (tid, name, steps, values) for tid in sorted(curves) for name, (steps, values) in sorted(curves[tid].items())
    ]
    if not parts:
        return SCHEMAS["curves"].empty_table()

    def repeated(labels: list[str]) -> pa.Array:  # each part's label once per step
        return pa.array(
            np.concatenate([np.full(len(s), label, dtype=object) for label, (*_, s, _) in zip(labels, parts)])
        )

    columns = {
        "trial_id": repeated([tid for tid, *_ in parts]),
        "step": np.concatenate([s for *_, s, _ in parts]),
        "metric": repeated([name for _, name, *_ in parts]),
        "value": np.concatenate([v for *_, v in parts]),
    }
    return pa.table(columns, schema=SCHEMAS["curves"])


def _write_together(tables: dict[str, pa.Table], out_dir: Path, *, analysis: dict) -> dict[str, Path]:
    """Write every table to a scratch folder, then the traversal grids of the trials the report
    will show (read from those tables as the report reads them: `traversal_table`), then move them
    all into `out_dir` one after the other; `analysis` (how analyze ran) goes into trials.parquet's
    metadata."""
    from analysis.report._data import load_tables
    from analysis.report._images import traversal_table

    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".analyze-", dir=out_dir))
    try:
        for name, table in tables.items():
            write_table(table, name, scratch / f"{name}.parquet", analysis=analysis if name == "trials" else None)
        shown = dataclasses.replace(load_tables(scratch), folder=out_dir)  # (checkpoint paths start at out_dir)
        write_table(traversal_table(shown), "traversals", scratch / "traversals.parquet")
        names = [*tables, "traversals"]
        for name in names:
            os.replace(scratch / f"{name}.parquet", out_dir / f"{name}.parquet")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {name: out_dir / f"{name}.parquet" for name in names}
