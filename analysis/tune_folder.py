"""Read a Ray Tune experiment folder into per-trial records, without Ray.

Tune 2.x writes `<storage_path>/<name>/` as plain files:
- `experiment_state-<time>.json`: every trial (also pending ones without a folder) with its id,
  status (PENDING, RUNNING, PAUSED, TERMINATED, ERROR), config and folder (`relative_logdir`);
- one folder per trial: `params.json` (the trial config: InfoGANConfig fields, maybe a `variant`
  label), `result.json` (one JSON object per `tune.report`, our metrics plus Tune's own keys such
  as `training_iteration` and `checkpoint_dir_name`), `checkpoint_NNNNNN/checkpoint.pt`, and
  `error.txt` for a trial that raised.

`ray.tune.ExperimentAnalysis` reads the same folder without a running cluster, but importing
`ray.tune` takes 3-10 s and it unpickles trial state; the JSON is all the analysis needs.

A trial resumed from an earlier checkpoint reports some steps twice; the later report wins, so
every curve has strictly increasing steps.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainables.checkpoint import FILENAME
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError

Curve = tuple[np.ndarray, np.ndarray]  # steps (T,) int64 increasing, values (T,) float64
VARIANT_KEY = "variant"  # search_spaces.VARIANT_KEY: a label, not a config field (not imported: it pulls in ray.tune)
# Keys Tune adds to every report: bookkeeping, not curves.
TUNE_KEYS = frozenset(
    {"step", "timestamp", "done", "training_iteration", "time_this_iter_s", "time_total_s", "pid",
     "time_since_restore", "iterations_since_restore", "should_checkpoint", "checkpoint_dir_name",
     "trial_id", "date", "hostname", "node_ip", "config", "experiment_tag", "status", "reason", "variant"}
)  # fmt: skip
_TUNE_STATUS = {
    "TERMINATED": "completed",
    "ERROR": "error",
    "RUNNING": "running",
    "PENDING": "pending",
    "PAUSED": "pending",
}


@dataclass(frozen=True)
class CheckpointInfo:
    """One reported checkpoint that still exists on disk."""

    step: int
    path: Path  # the checkpoint directory (holds checkpoint.pt)
    mi_cat: float  # the report's mi/cat (NaN if not reported)
    diverged: bool  # the report flagged divergence: its weights are not worth scoring


@dataclass
class TrialRecord:
    """What the experiment folder says about one trial."""

    trial_id: str
    path: Path | None  # the trial folder (None for a pending trial Tune has not started)
    config: InfoGANConfig | None  # None when params.json is missing or not a valid config
    status: str  # completed | diverged | error | running | pending
    reason: str  # '' or one line: why the trial did not complete
    last_step: int | None  # last reported step (None: no report)
    curves: dict[str, Curve] = field(default_factory=dict)
    checkpoints: list[CheckpointInfo] = field(default_factory=list)  # in step order

    def choose_checkpoint(self, which: str) -> CheckpointInfo | None:
        """The checkpoint to score: `final` (last) or `best` (highest mi/cat), skipping diverged ones."""
        usable = [c for c in self.checkpoints if not c.diverged]
        if not usable:
            return None
        if which == "best" and any(math.isfinite(c.mi_cat) for c in usable):
            return max(usable, key=lambda c: c.mi_cat if math.isfinite(c.mi_cat) else -math.inf)
        return usable[-1]


@dataclass
class Experiment:
    name: str
    path: Path
    trials: list[TrialRecord]  # sorted by trial_id


def read_experiment(path: str | Path) -> Experiment:
    """All trials of the Tune experiment folder `path`, sorted by trial id."""
    path = Path(path)
    if not path.is_dir():
        raise BadInputError(f"{path} is not a folder; pass a Tune experiment folder (<storage_path>/<name>)")
    states = sorted(path.glob("experiment_state-*.json"))
    folders = {p.parent for p in path.glob("*/params.json")}
    if not states and not folders:
        inner = sorted(p.parent.name for p in path.glob("*/experiment_state-*.json"))
        hint = (
            f"it holds the experiments {', '.join(inner)}: pass one of them"
            if inner
            else "pass <storage_path>/<name> of a sweep"
        )
        raise BadInputError(f"{path} is not a Ray Tune experiment folder (no experiment_state-*.json); {hint}")
    entries = _state_entries(states[-1]) if states else {}  # the newest state (names sort by time)
    located = {tid: path / logdir for tid, (_, logdir, _) in entries.items() if logdir and (path / logdir).is_dir()}
    for folder in sorted(folders - set(located.values())):  # not in the state (yet): find its id
        located.setdefault(_folder_trial_id(folder), folder)
    trials = {}
    for trial_id in sorted(entries.keys() | located.keys()):
        status, _, params = entries.get(trial_id, (None, None, None))
        trials[trial_id] = _read_trial(trial_id, located.get(trial_id), params, status)
    if not trials:
        raise BadInputError(f"experiment {path} has no trials yet; start the sweep or wait for its first trial")
    return Experiment(path.name, path, sorted(trials.values(), key=lambda t: t.trial_id))


def _state_entries(state_file: Path) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
    """trial_id -> (Tune status, relative folder, config) from an experiment_state file."""
    try:
        state = json.loads(state_file.read_text())
        entries = {}
        for item in state["trial_data"]:
            trial = json.loads(item[0]) if isinstance(item[0], str) else item[0]
            entries[str(trial["trial_id"])] = (
                str(trial["status"]),
                trial.get("relative_logdir"),
                trial.get("config") or {},
            )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise BadInputError(
            f"cannot read {state_file}: {type(err).__name__}: {err}; is the sweep still writing it?"
        ) from None
    return entries


def _folder_trial_id(folder: Path) -> str:
    """The id of the trial in `folder`: from its first report, else from Tune's folder name
    `<trainable>_<trial id>_<index>_<tag>_<date>`, else the folder name."""
    try:
        with (folder / "result.json").open() as file:
            return str(json.loads(file.readline())["trial_id"])
    except (OSError, ValueError, KeyError, TypeError):
        found = re.search(r"_([0-9a-f]{5}_\d{5})_", folder.name)
        return found.group(1) if found else folder.name


def _read_trial(
    trial_id: str, folder: Path | None, params: dict[str, Any] | None, tune_status: str | None
) -> TrialRecord:
    reports = _read_reports(folder / "result.json") if folder else []
    if folder is not None and (folder / "params.json").is_file():
        with contextlib.suppress(ValueError, OSError):
            params = json.loads((folder / "params.json").read_text())  # else the experiment state's copy
    config, config_error = _config(params)
    steps, curves = _curves(reports)
    last = reports[-1] if reports else {}
    status, reason = _status(tune_status, last, folder, config)
    if config_error:
        reason = "; ".join(r for r in (reason, config_error) if r)
    last_step = int(steps[-1]) if steps.size else None
    return TrialRecord(trial_id, folder, config, status, reason, last_step, curves, _checkpoints(reports, folder))


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
        return InfoGANConfig.from_dict({k: v for k, v in params.items() if k != VARIANT_KEY}), ""
    except BadInputError as err:
        return None, f"invalid config: {err}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
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


def _status(
    tune_status: str | None, last: dict[str, Any], folder: Path | None, config: InfoGANConfig | None
) -> tuple[str, str]:
    """(status, reason) from Tune's status, the last report and error.txt."""
    error = _error_line(folder / "error.txt") if folder else ""
    if tune_status is None:  # not in the experiment state: judge by the files
        finished = last.get("done") or last.get("status") in ("completed", "diverged")
        tune_status = "ERROR" if error else "TERMINATED" if finished else "RUNNING" if last else "PENDING"
    status = _TUNE_STATUS.get(tune_status, tune_status.lower())
    if status == "error":
        return status, error or "the trial raised an error (no error.txt)"
    if last.get("status") == "diverged" or last.get("diverged") == 1.0:
        return "diverged", str(last.get("reason") or f"diverged at step {last.get('step')}")
    step = _number(last.get("step"))
    if status == "completed" and config is not None and step is not None and step < config.steps:
        return status, f"stopped at step {step:.0f} of {config.steps} (by the scheduler or a stop criterion)"
    return status, ""


def _error_line(file: Path) -> str:
    """The exception line of a Tune error.txt (its last non-empty line; the first is a header)."""
    if not file.is_file():
        return ""
    lines = [line.strip() for line in file.read_text(errors="replace").splitlines() if line.strip()]
    text = lines[-1] if lines else "the trial raised an error (empty error.txt)"
    return text if len(text) <= 240 else text[:237] + "..."


def _checkpoints(reports: list[dict[str, Any]], folder: Path | None) -> list[CheckpointInfo]:
    """Reported checkpoints still on disk, by step; unreported checkpoint folders count as diverged=False, mi NaN."""
    if folder is None:
        return []
    found: dict[Path, CheckpointInfo] = {}
    for index, report in enumerate(reports):
        name = report.get("checkpoint_dir_name")
        if name and (folder / name / FILENAME).is_file():
            step = int(report.get("step", report.get("training_iteration", index + 1)))
            mi = _number(report.get("mi/cat"))
            found[folder / name] = CheckpointInfo(
                step, folder / name, math.nan if mi is None else mi, report.get("diverged") == 1.0
            )
    for ckpt in folder.glob(f"checkpoint_*/{FILENAME}"):
        found.setdefault(ckpt.parent, CheckpointInfo(-1, ckpt.parent, math.nan, False))
    return sorted(found.values(), key=lambda c: (c.step, c.path.name))
