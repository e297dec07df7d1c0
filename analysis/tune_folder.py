"""Read an experiment folder into per-trial records, without Ray.

Per trial folder `<storage_path>/<name>/<trial>/`, this reads:
- `infogan-trial.json`, the trial's own record (its format: `trainables/trial_record.py`): id,
  config, status and reason in the training loop's words, the checkpoints still on disk with
  their step and metrics, and the metric Tune ranked them by (the study's objective); a
  checkpoint also describes itself (`infogan-checkpoint.json`), for one the record missed;
- `result.json`, Tune's log of every report (one JSON object per line): the curves;
- `params.json` and `error.txt`, Tune's copy of the trial config and the error that ended the
  trial, for trials without a record (those that failed before their first checkpoint, e.g. on a
  bad config, and folders written before records existed) and for a trial whose process died.

Tune's own experiment state (internal files that change between Ray releases) is not read: a trial
Tune has not started yet has no folder and is not part of the experiment here
(`infogan-study status` lists those through Tune's public API).

A pack (`sweep --pack`: one Tune trial training several configurations as one network, see
`trainables/trial_record.py`) is expanded into its members, each a trial: its record is the pack
record's entry, its curves the pack's results prefixed `m<k>/`, its checkpoints the `member_<k>`
folders of the pack's checkpoints; `pack_id` names the pack.

A trial resumed from an earlier checkpoint reports some steps twice; the later report wins, so
every curve has strictly increasing steps.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.files import CHECKPOINT_FILENAME
from trainables.trial_record import (
    CHECKPOINT_FILE,
    DEFAULT_SCORE,
    PACK_KEY,
    RECORD_FILE,
    SPEC_FILE,
    CheckpointEntry,
    Record,
    RunRecord,
    build_config,
    member_folder,
    member_id,
    member_metrics,
    read_description,
    read_record,
)

Curve = tuple[np.ndarray, np.ndarray]  # steps (T,) int64 increasing, values (T,) float64
# Keys Tune adds to every report, and our labels (`variant`: what studies before `model_kind`
# reported as the model kind): bookkeeping, not curves.
TUNE_KEYS = frozenset(
    {"step", "timestamp", "done", "training_iteration", "time_this_iter_s", "time_total_s", "pid",
     "time_since_restore", "iterations_since_restore", "should_checkpoint", "checkpoint_dir_name",
     "trial_id", "date", "hostname", "node_ip", "config", "experiment_tag", "status", "reason", "model_kind",
     "variant"}
)  # fmt: skip


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint of a trial that exists on disk."""

    step: int
    path: Path  # the checkpoint directory (holds checkpoint.pt)
    mi_cat: float  # the report's mi/cat (NaN if not reported)
    diverged: bool  # the report flagged divergence: its weights are not worth scoring
    metrics: dict[str, float] = field(default_factory=dict, compare=False)  # the report it was saved with

    def score(self, metric: str) -> float:
        value = self.metrics.get(metric, self.mi_cat if metric == "mi/cat" else math.nan)
        return math.nan if value is None else float(value)


@dataclass
class TrialRecord:
    """What the experiment folder says about one trial."""

    trial_id: str
    path: Path | None  # the trial folder
    config: InfoGANConfig | None  # None when the trial's config is missing or not a valid config
    status: str  # completed | diverged | error | running | pending
    reason: str  # '' or one line: why the trial did not complete (or how it ended early)
    last_step: int | None  # last reported step (None: no report)
    curves: dict[str, Curve] = field(default_factory=dict)
    checkpoints: list[CheckpointInfo] = field(default_factory=list)  # in step order
    score_metric: str = DEFAULT_SCORE[0]  # what `best` means: the study's metric, by which Tune kept checkpoints
    score_mode: str = DEFAULT_SCORE[1]
    run_status: str = ""  # the record's own word: running | completed | diverged | stopped | error ('' without)
    params: dict[str, Any] = field(default_factory=dict)  # the trial config as given (with a variant label)
    checkpoints_saved: int = 0  # checkpoints the record or Tune's reports name, on disk or not (Tune deletes
    # all but the kept few, never the latest: a trial with some saved and none on disk lost them)
    pack_id: str = ""  # the Tune trial that trained it in a pack (`sweep --pack`); '' for a trial of its own

    @property
    def lost_checkpoints(self) -> bool:
        """It saved checkpoints and none is on disk: deleted, or copied without its checkpoint folders."""
        return self.checkpoints_saved > 0 and not self.checkpoints

    def choose_checkpoint(self, which: str) -> CheckpointInfo | None:
        """The checkpoint to score: `final` (last) or `best` (by the study's metric), skipping diverged ones."""
        usable = [c for c in self.checkpoints if not c.diverged]
        if not usable:
            return None
        sign = 1.0 if self.score_mode == "max" else -1.0
        scored = [c for c in usable if math.isfinite(c.score(self.score_metric))]
        if which == "best" and scored:
            return max(scored, key=lambda c: sign * c.score(self.score_metric))
        return usable[-1]


@dataclass
class Experiment:
    name: str
    path: Path
    trials: list[TrialRecord]  # sorted by trial_id


def _trial_folders(path: Path) -> list[Path]:
    """Sub-folders that hold a trial: its record, or Tune's params.json / result.json."""
    names = (RECORD_FILE, "params.json", "result.json")
    return sorted({p.parent for name in names for p in path.glob(f"*/{name}")})


def read_experiment(path: str | Path) -> Experiment:
    """All trials of the experiment folder `path` (<storage_path>/<name>) that have started, by id."""
    path = Path(path)
    if not path.is_dir():
        raise BadInputError(f"{path} is not a folder; pass a Tune experiment folder (<storage_path>/<name>)")
    folders = _trial_folders(path)
    if not folders:
        if (path / SPEC_FILE).is_file():
            raise BadInputError(f"experiment {path} has no trials yet; start the sweep or wait for its first trial")
        inner = sorted(
            p.name for p in path.iterdir() if (p / SPEC_FILE).is_file() or (p.is_dir() and _trial_folders(p))
        )
        hint = (
            f"it holds the experiments {', '.join(inner)}: pass one of them"
            if inner
            else "pass <storage_path>/<name> of a sweep"
        )
        raise BadInputError(f"{path} is not a Ray Tune experiment folder (no trial folders); {hint}")
    trials: dict[str, TrialRecord] = {}
    for folder in folders:
        for trial in _read_trials(folder):
            trials.setdefault(trial.trial_id, trial)
    return Experiment(path.name, path, sorted(trials.values(), key=lambda t: t.trial_id))


def _read_json(file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_record(folder: Path) -> Record | None:
    try:
        return read_record((folder / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None


def _read_trials(folder: Path) -> list[TrialRecord]:
    """The trial of a trial folder, or the members of a pack (`sweep --pack`), each a trial."""
    record = _read_record(folder)
    reports = _read_reports(folder / "result.json")
    params = record.config if record else _read_json(folder / "params.json")
    if not isinstance(params, dict) or not isinstance(params.get(PACK_KEY), list):
        return [_read_trial(folder, record, reports, params)]
    pack_id = record.trial_id if record and record.trial_id else _folder_trial_id(folder, reports)
    members = (record.members if record else None) or [
        RunRecord(member_id(pack_id, k), c) for k, c in enumerate(params[PACK_KEY])
    ]
    out = []
    for k, member in enumerate(members):
        member_reports = []
        for report in reports:
            own = member_metrics(report, k)
            if own and own.get("diverged") != 1.0 and "checkpoint_dir_name" in report:
                own["checkpoint_dir_name"] = report["checkpoint_dir_name"]  # the pack's, holding this member's
            if own:
                member_reports.append(own)
        trial = _read_trial(folder, member if record else None, member_reports, member.config,
                            trial_id=member.trial_id, inside=member_folder(k))  # fmt: skip
        trial.pack_id = pack_id
        out.append(trial)
    return out


def _read_trial(folder: Path, run: RunRecord | None, reports: list[dict[str, Any]],
                params: dict[str, Any] | None, *, trial_id: str = "", inside: str = "") -> TrialRecord:  # fmt: skip
    """One trial from its record (its run's), reports and config; a pack member's checkpoints are
    the `inside` folders of the pack's checkpoints."""
    trial_id = trial_id or (run.trial_id if run and run.trial_id else _folder_trial_id(folder, reports))
    config, config_error = _config(params)
    steps, curves = _curves(reports)
    status, reason = _status(run, reports, folder)
    if config_error and config_error.removeprefix("invalid config: ") not in reason:
        reason = "; ".join(r for r in (reason, config_error) if r)
    last_step = int(steps[-1]) if steps.size else (run.step if run and run.step else None)
    metric, mode = run.score if run else DEFAULT_SCORE
    checkpoints, saved = _checkpoints(folder, run, reports, inside)
    return TrialRecord(
        trial_id, folder, config, status, reason, last_step, curves, checkpoints, metric, mode,
        run.status if run else "", dict(params or {}), saved,
    )  # fmt: skip


def _folder_trial_id(folder: Path, reports: list[dict[str, Any]]) -> str:
    """The id of a trial without a record: from its first report, else from the folder name
    (`trial_<id>` here, `<trainable>_<id>_<index>_<tag>_<date>` by Tune's default), else the name."""
    if reports and "trial_id" in reports[0]:
        return str(reports[0]["trial_id"])
    found = re.search(r"(?:^|_)([0-9a-f]{5}_\d{5})(?:_|$)", folder.name)
    return found.group(1) if found else folder.name


def _read_reports(file: Path) -> list[dict[str, Any]]:
    """One dict per line of result.json; a torn last line (killed writer) is skipped."""
    if not file.is_file():
        return []
    reports = []
    for line in file.read_text().splitlines():
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict):
            reports.append(report)
    return reports


def _config(params: dict[str, Any] | None) -> tuple[InfoGANConfig | None, str]:
    if params is None:
        return None, "no params.json"
    try:
        return build_config(params), ""
    except BadInputError as err:
        return None, f"invalid config: {err}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and value is not None):
        return None
    return math.nan if value is None else float(value)


def _curves(reports: list[dict[str, Any]]) -> tuple[np.ndarray, dict[str, Curve]]:
    """Reported steps (T,) and {metric: (steps, values)} of every numeric metric; a later report of
    a step replaces an earlier one."""
    by_step: dict[int, dict[str, Any]] = {}
    for index, report in enumerate(reports):
        step = _number(report.get("step", report.get("training_iteration", index + 1)))
        if step is None or not math.isfinite(step):
            continue
        by_step.pop(int(step), None)  # re-insert: a resumed trial's report replaces the earlier one
        by_step[int(step)] = report
    steps = sorted(by_step)
    curves: dict[str, Curve] = {}
    for name in sorted(set().union(*by_step.values()) - TUNE_KEYS):
        present = [s for s in steps if name in by_step[s]]
        try:
            values = np.array([by_step[s][name] for s in present], dtype=np.float64)  # None (null) -> NaN
        except (TypeError, ValueError):
            continue  # a label or a nested value, not a curve
        curves[name] = (np.array(present, dtype=np.int64), values)
    return np.array(steps, dtype=np.int64), curves


def _status(run: RunRecord | None, reports: list[dict[str, Any]], folder: Path) -> tuple[str, str]:
    """(status, reason): the record's (the loop's words); error.txt for a trial whose process died."""
    error = _error_line(folder / "error.txt")
    if run is not None:
        status, reason = run.status, run.reason
        if status in ("completed", "diverged"):
            return status, reason
        if status == "stopped":  # ended early by Tune's scheduler or a stop criterion: a finished trial
            return "completed", reason
        if status == "error":
            return status, reason or error or "the trial raised an error"
        return ("error", error) if error else ("running", "")  # running, interrupted, or its process died
    # No record: failed before its first checkpoint, or a folder from before records existed.
    last = reports[-1] if reports else {}
    if last.get("status") == "diverged" or last.get("diverged") == 1.0:
        return "diverged", str(last.get("reason") or f"diverged by step {last.get('step')}")
    if last.get("status") == "completed":
        return "completed", ""
    if error:
        return "error", error
    return ("running", "") if reports else ("pending", "")


def _error_line(file: Path) -> str:
    """The exception line of a Tune error.txt (its last non-empty line; the first is a header)."""
    if not file.is_file():
        return ""
    lines = [line.strip() for line in file.read_text(errors="replace").splitlines() if line.strip()]
    text = lines[-1] if lines else "the trial raised an error (empty error.txt)"
    text = re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", text)  # without the exception's module path
    return text if len(text) <= 240 else text[:237] + "..."


def _checkpoint_info(step: Any, path: Path, metrics: dict[str, Any]) -> CheckpointInfo:
    numbers = {k: v for k, v in ((k, _number(v)) for k, v in metrics.items()) if v is not None}
    at = _number(step)
    return CheckpointInfo(int(at) if at is not None and math.isfinite(at) else -1, path,
                          numbers.get("mi/cat", math.nan), numbers.get("diverged") == 1.0, numbers)  # fmt: skip


def _read_description(folder: Path) -> CheckpointEntry | None:
    try:
        return read_description(folder.name, (folder / CHECKPOINT_FILE).read_text())
    except (OSError, ValueError):
        return None


def _checkpoints(
    folder: Path, run: RunRecord | None, reports: list[dict[str, Any]], inside: str = ""
) -> tuple[list[CheckpointInfo], int]:
    """The trial's checkpoints on disk, by step, described by the record, else by themselves
    (`infogan-checkpoint.json`: one persisted after the record's last write), else (folders from
    before records existed) by the report that named them in result.json; and how many the record
    and the reports name (saved, whether still on disk or not)."""
    known: dict[str, CheckpointInfo] = {}
    for index, report in enumerate(reports):
        if name := report.get("checkpoint_dir_name"):
            step = report.get("step", report.get("training_iteration", index + 1))
            known[name] = _checkpoint_info(step, folder / name, {k: v for k, v in report.items() if k not in TUNE_KEYS})
    for entry in run.checkpoints if run else []:
        known[entry.name] = _checkpoint_info(entry.step, folder / entry.name, entry.metrics)
    found = []
    for file in folder.glob(f"*/{inside}/{CHECKPOINT_FILENAME}" if inside else f"*/{CHECKPOINT_FILENAME}"):
        name = file.parent.parent.name if inside else file.parent.name
        info, described = known.get(name), _read_description(file.parent)
        if info is None and described is not None:
            info = _checkpoint_info(described.step, file.parent, described.metrics)
        found.append(replace(info, path=file.parent) if info else CheckpointInfo(-1, file.parent, math.nan, False))
    return sorted(found, key=lambda c: (c.step, c.path.name)), len(known)
