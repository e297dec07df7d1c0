"""The trial table of a study, from the trials' own records and Tune's public view of the study.

Each trial's record (`infogan-trial.json`, read by `analysis.tune_folder`, the same view `analyze`
has) says how its run went, in the training loop's words; Tune's `ExperimentAnalysis` adds what
only Tune knows: trials it has not started yet, whether an unfinished trial is still scheduled,
how often a trial failed, and trials it ended (stopped early, or errored).

One row per trial: its id, state, the parameters that vary across trials, the last report's step,
key metrics and objectives, Tune's failure count, and a note (the run's reason, or the error).
States: COMPLETED, DIVERGED and STOPPED (ended early by Tune's scheduler or a stop criterion), the
run's own end (the loop's `TrainResult`); ERROR; UNFINISHED (started, not ended: running now, or
interrupted and resumable from its checkpoint); PENDING (not started). `analyze` reports the same
statuses, with STOPPED as completed (and its reason). If Tune's state cannot be read, the table
says so and shows what the records say. A pack (`sweep --pack`) shows as its members, one row
each (id `<pack trial id>-m<k>`), with the pack's Tune state and failure count. No Ray processes are started.
"""

from __future__ import annotations

import contextlib
import logging
import math
import posixpath
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray.tune import ExperimentAnalysis

from analysis import TrialRecord, read_experiment
from study.plan import is_uri
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError, one_line
from trainables.trial_record import PACK_KEY, RECORD_FILE, SPEC_FILE, VARIANT_KEY, build_config
from trainables.tune import KEY_METRICS

HIDDEN_PARAMS = ("data_root",)
# What `status` needs of a trial folder on remote storage (not its checkpoints).
SMALL_FILES = (RECORD_FILE, "params.json", "result.json", "error.txt")


@dataclass
class TrialRow:
    """One trial as `status` shows it."""

    trial_id: str
    state: str  # COMPLETED | DIVERGED | STOPPED | ERROR | UNFINISHED | PENDING
    config: dict[str, Any]  # the space's variant label (if any), the model kind and every config field
    step: int | None  # last reported step
    metrics: dict[str, float]  # the last report
    failures: int | None  # Tune's count; None without Tune's view
    note: str  # the run's reason or the error line
    record: TrialRecord | None = None  # the trial's record (None: not started)


@dataclass
class StudyView:
    trials: list[TrialRow]
    tune_note: str = ""  # why Tune's view is missing, or ""


def _config_dict(params: dict[str, Any]) -> dict[str, Any]:
    """The trial's variant label (from a `variant_grid` space; absent otherwise), its model kind
    (`InfoGANConfig.model_kind`) and every config field (defaults filled in)."""
    try:
        config = build_config(params)
    except BadInputError:  # shown as given
        return {**InfoGANConfig().to_dict(), **params}
    label = {VARIANT_KEY: params[VARIANT_KEY]} if VARIANT_KEY in params else {}
    return {**label, "model_kind": config.model_kind, **config.to_dict()}


def _tune_trials(experiment_path: str) -> tuple[dict[str, Any], str]:
    """Tune's trials by id, or ({}, why they are not available)."""
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)  # it warns for every trial that has not reported yet
    try:
        return {t.trial_id: t for t in ExperimentAnalysis(experiment_path).trials}, ""
    except Exception as err:  # noqa: BLE001 - missing or unreadable state: same note
        why = one_line(err, limit=160)
        return {}, f"Tune's state of this study is not readable ({why}); the states are the records' alone"
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def _local(experiment_path: str) -> Iterator[Path]:
    """The experiment folder on this machine: itself, or a copy of its small files (s3://, gs://)."""
    if not is_uri(experiment_path):
        yield Path(experiment_path)
        return
    fs, root = pyarrow.fs.FileSystem.from_uri(experiment_path)
    with tempfile.TemporaryDirectory(prefix="infogan-status-") as tmp:
        local = Path(tmp) / posixpath.basename(root.rstrip("/"))
        local.mkdir()
        for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True, allow_not_found=True)):
            parts = posixpath.relpath(info.path, root).split("/")
            wanted = parts == [SPEC_FILE] or (len(parts) == 2 and parts[1] in SMALL_FILES)
            if info.type == pyarrow.fs.FileType.File and wanted:
                local.joinpath(*parts).parent.mkdir(exist_ok=True)
                with fs.open_input_stream(info.path) as f:
                    local.joinpath(*parts).write_bytes(f.read())
        yield local


def _state(record: TrialRecord | None, tune_trial: Any) -> tuple[str, str]:
    """(state, note) from the record (how the run went) and Tune's status of the trial."""
    tune_status = getattr(tune_trial, "status", None)
    run = record.run_status if record else ""
    note = record.reason if record else ""
    if run in ("completed", "diverged"):  # the run ended by itself
        return run.upper(), note
    if tune_status == "ERROR" or (tune_status is None and record is not None and record.status == "error"):
        return "ERROR", note or "error (see the trial's error.txt)"
    if run == "stopped" and tune_status in (None, "TERMINATED"):
        return "STOPPED", note
    if tune_status == "TERMINATED":  # ended by Tune, before the trial could record it
        step = record.last_step if record else None
        return "STOPPED", f"stopped by Tune at step {step}" if step is not None else "stopped by Tune"
    reported = record is not None and (record.last_step is not None or run in ("running", "stopped", "error"))
    return ("UNFINISHED" if reported else "PENDING"), (note if run == "error" else "")


def load_study(experiment_path: str) -> StudyView:
    """Every trial of the study: its record joined with Tune's view, by trial id."""
    tune_trials, tune_note = _tune_trials(experiment_path)
    with _local(experiment_path) as folder:
        try:
            records = {r.trial_id: r for r in read_experiment(folder).trials}
        except BadInputError:  # no trial folder yet
            records = {}
    # A pack (`sweep --pack`) is one Tune trial and several trials here: its members, by member id.
    in_packs = {r.pack_id for r in records.values() if r.pack_id}
    members = {}  # member id -> (its pack's Tune trial, its trial config), for packs not started yet
    unstarted_packs = set()
    for tid, trial in tune_trials.items():
        packed = (getattr(trial, "config", None) or {}).get(PACK_KEY)
        if isinstance(packed, list) and tid not in in_packs:
            unstarted_packs.add(tid)
            members.update({f"{tid}-m{k:02d}": (trial, params) for k, params in enumerate(packed)})
    singles = tune_trials.keys() - in_packs - unstarted_packs
    rows = []
    for trial_id in sorted(records.keys() | singles | members.keys()):
        record = records.get(trial_id)
        tune_trial = tune_trials.get(record.pack_id if record is not None and record.pack_id else trial_id)
        if trial_id in members:
            tune_trial = members[trial_id][0]
        state, note = _state(record, tune_trial)
        metrics = {}
        if record is not None and record.last_step is not None:
            metrics = {k: float(v[-1]) for k, (s, v) in record.curves.items() if s.size and s[-1] == record.last_step}
        params = members[trial_id][1] if trial_id in members else getattr(tune_trial, "config", {})
        config = _config_dict(record.params if record and record.params else params)
        failures = getattr(tune_trial, "num_failures", None) if tune_trial is not None else None
        rows.append(TrialRow(trial_id, state, config, record.last_step if record else None, metrics,
                             failures, note, record))  # fmt: skip
    if not rows:
        raise BadInputError(f"study {experiment_path} has no trials yet; wait for Tune to start the first one")
    return StudyView(rows, tune_note)


def varying_params(trials: Sequence[TrialRow]) -> list[str]:
    """Config keys whose values differ between trials (variant, model kind and seed for a single trial)."""
    keys: list[str] = []
    for trial in trials:
        keys += [k for k in trial.config if k not in keys and k not in HIDDEN_PARAMS]
    if len(trials) < 2:
        return [k for k in keys if k in (VARIANT_KEY, "model_kind", "seed")]
    return [k for k in keys if len({repr(t.config[k]) for t in trials if k in t.config}) > 1]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def table_rows(trials: Sequence[TrialRow], *, metrics: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    params = varying_params(trials)
    header = ["trial", "state", *params, "step", *metrics, "failures", "note"]
    rows = [
        [t.trial_id, t.state, *(_fmt(t.config.get(p)) for p in params), _fmt(t.step),
         *(_fmt(t.metrics.get(m)) for m in metrics), _fmt(t.failures), t.note]
        for t in trials
    ]  # fmt: skip
    return header, rows


def ranked(trials: Sequence[TrialRow], objective: Any) -> list[TrialRow]:
    """The trials best first by the last reported value of `objective` (a study Objective: metric,
    mode); trials without a finite value follow, each group in trial-id order."""

    def key(t: TrialRow) -> tuple[int, float, str]:
        value = t.metrics.get(objective.metric)
        if value is None or not math.isfinite(value):
            return 1, 0.0, t.trial_id
        return 0, (-value if objective.mode == "max" else value), t.trial_id

    return sorted(trials, key=key)


def format_table(view: StudyView, *, objectives: Sequence[Any] = ()) -> str:
    """A plain-text table, ranked by the first objective (trial-id order without one), plus a
    one-line count of trials per state (and Tune's note, if any)."""
    metrics = [m for m in KEY_METRICS if m != "diverged"]
    metrics += [o.metric for o in objectives if o.metric not in metrics]
    trials = ranked(view.trials, objectives[0]) if objectives else view.trials
    header, rows = table_rows(trials, metrics=metrics)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    counts: dict[str, int] = {}
    for t in view.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return "\n".join([*lines, f"{len(view.trials)} trials: {summary}", *([view.tune_note] if view.tune_note else [])])
