"""The trial record: what a study's trials leave in the experiment folder beside Tune's own files.

One source for the format, written by the Tune trainables (`trainables/tune/`) and read by
`analysis.tune_folder` (so `status`, `analyze` and `resume` read the same thing). Ray-free: a
reader needs neither Ray nor torch.

In `<experiment>/trial_<trial id>/` (`trial_folder_name`, the launcher's trial folder name):
- `infogan-trial.json` (RECORD_FILE), replaced whole (never half-written) at every report:

    {"format": 1, "trial_id": "...", "trial_name": "...", "config": {the trial config},
     "status": "running" | "completed" | "diverged" | "stopped" | "error", "reason": "one line",
     "step": 120, "steps": 600, "metrics": {the last report},
     "checkpoint_score": {"metric": "mi/cat", "mode": "max"},  # how Tune ranks the kept checkpoints
     "checkpoints": [{"name": "checkpoint_000005", "step": 120, "metrics": {...}}, ...]}

  A pack (`sweep --pack`: one trial whose config is {"members": [member trial configs]},
  PACK_KEY) adds "pack": true and "members": one record per member (no "format", no
  "trial_name"), with id `<trial id>-m<k>` (`member_id`); its Tune results hold member k's
  metrics prefixed `m<k>/` (`member_prefix`), its checkpoints member k's in `member_<k>/`
  (`member_folder`).
- in each checkpoint folder (each member folder of a pack's): `infogan-checkpoint.json`
  (CHECKPOINT_FILE), {"step": 120, "metrics": {...}}: a checkpoint describes itself.
- in the experiment folder, the study's `infogan-study.json` (SPEC_FILE, written by `study.plan`).

A trial config may carry a `variant` label (VARIANT_KEY, from a `variant_grid` space) beside the
config's fields; `build_config` drops it. Metrics are strict JSON: NaN and inf are written as
null and read back as NaN.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs

from trainables.config import InfoGANConfig

RECORD_FILE = "infogan-trial.json"
CHECKPOINT_FILE = "infogan-checkpoint.json"
PRUNED_FILE = "infogan-pruned.txt"  # all a pruned checkpoint folder keeps (`RecordStore.prune`)
SPEC_FILE = "infogan-study.json"
RECORD_FORMAT = 1
PACK_KEY = "members"  # a pack's trial config: {"members": [member trial configs]}
VARIANT_KEY = "variant"  # the label of a `variant_grid` row: in a trial config, not a config field
DEFAULT_SCORE = ("mi/cat", "max")  # how checkpoints are ranked when no study says (`analyze --checkpoint best`)
# Checkpoints a trial keeps besides its newest: the best CHECKPOINTS_KEPT by its score (`prune`).
CHECKPOINTS_KEPT = 2
ENDED = ("completed", "diverged")  # a run's status that no later error changes


def build_config(trial_config: dict[str, Any]) -> InfoGANConfig:
    """The run's config from a trial config: field names plus the optional `variant` label."""
    return InfoGANConfig.from_dict({k: v for k, v in trial_config.items() if k != VARIANT_KEY})


# ---------------------------------------------------------------------------------- naming
def trial_folder_name(trial_id: str) -> str:
    """The trial's folder in the experiment."""
    return f"trial_{trial_id}"


def trial_dirname(trial: Any) -> str:
    """`TuneConfig(trial_dirname_creator=...)`: short trial folder names (Tune's default repeats
    every parameter), which also tell each trial where its record goes. Tune pickles this function
    by reference into a study's saved state, so its module path stays (`trainables/tune_trainable.py`
    keeps the one studies saved before it moved here)."""
    return trial_folder_name(trial.trial_id)


def member_id(trial_id: str, k: int) -> str:
    """Member k's trial id: the pack trial's id and its index."""
    return f"{trial_id}-m{k:02d}"


def member_prefix(k: int) -> str:
    """The prefix of member k's metrics in the pack's Tune results."""
    return f"m{k:02d}/"


def member_folder(k: int) -> str:
    """Member k's checkpoint folder inside a pack checkpoint."""
    return f"member_{k:02d}"


def member_metrics(report: dict[str, Any], k: int) -> dict[str, Any]:
    """Member k's own metrics in a pack's Tune result (its prefix removed; {} if it did not report)."""
    prefix = member_prefix(k)
    return {key[len(prefix) :]: value for key, value in report.items() if key.startswith(prefix)}


# ---------------------------------------------------------------------------------- the record
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics of a report, as floats."""
    return {k: float(v) for k, v in metrics.items() if _is_number(v)}


def json_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The numeric metrics as strict JSON numbers: NaN and inf as null."""
    return {k: v if math.isfinite(v) else None for k, v in numbers(metrics).items()}


def read_metrics(data: Any) -> dict[str, float]:
    """The metrics of a JSON object as floats (null -> NaN; anything else not a number is dropped)."""
    items = data.items() if isinstance(data, dict) else ()
    return {str(k): math.nan if v is None else float(v) for k, v in items if v is None or _is_number(v)}


def _int(value: Any, default: int) -> int:
    return int(value) if _is_number(value) and math.isfinite(value) else default


@dataclass
class CheckpointEntry:
    """A checkpoint as it describes itself: its folder's name in the trial folder, step and metrics."""

    name: str
    step: int  # -1 when its description has none
    metrics: dict[str, float] = field(default_factory=dict)  # the report it was saved with

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "step": self.step, "metrics": json_metrics(self.metrics)}


def describe_checkpoint(directory: str | Path, step: int, metrics: dict[str, float]) -> None:
    """Write CHECKPOINT_FILE into a (local) checkpoint folder."""
    described = {"step": int(step), "metrics": json_metrics(metrics)}
    Path(directory, CHECKPOINT_FILE).write_text(json.dumps(described, indent=1))


def read_description(name: str, text: str) -> CheckpointEntry | None:
    """The checkpoint `name` from the text of its CHECKPOINT_FILE (None: not a description)."""
    try:
        described = json.loads(text)
    except ValueError:
        return None
    if not isinstance(described, dict):
        return None
    return CheckpointEntry(name, _int(described.get("step"), -1), read_metrics(described.get("metrics")))


@dataclass
class RunRecord:
    """One run's part of a record: a trial's own, or one member's of a pack."""

    trial_id: str
    config: dict[str, Any]  # the trial config as given
    status: str = "running"  # running | completed | diverged | stopped | error: the loop's words
    reason: str = ""  # '' or one line: why the run ended before its last step
    step: int = 0  # the last reported step
    steps: int = 0  # the run's budget (its config's `steps`)
    metrics: dict[str, float] = field(default_factory=dict)  # the last report
    score: tuple[str, str] = DEFAULT_SCORE  # (metric, mode) Tune ranks the checkpoints by
    checkpoints: list[CheckpointEntry] = field(default_factory=list)  # in storage, by step

    @classmethod
    def start(cls, trial_id: str, config: dict[str, Any], score: tuple[str, str]) -> RunRecord:
        return cls(trial_id, config, steps=config.get("steps", InfoGANConfig().steps), score=score)

    def update(self, status: str, reason: str, metrics: dict[str, float] | None = None) -> None:
        """The run's status at a report (with its metrics) or at its end."""
        self.status, self.reason = status, reason
        if metrics:
            self.metrics = numbers(metrics)
            self.step = int(metrics.get("step", self.step))

    def to_json(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id, "config": self.config, "status": self.status, "reason": self.reason,
            "step": self.step, "steps": self.steps, "metrics": json_metrics(self.metrics),
            "checkpoint_score": {"metric": self.score[0], "mode": self.score[1]},
            "checkpoints": [c.to_json() for c in self.checkpoints],
        }  # fmt: skip

    @staticmethod
    def _fields(data: dict[str, Any]) -> dict[str, Any]:
        """The RunRecord fields of a JSON object, whatever it lacks filled in."""
        score = data.get("checkpoint_score") if isinstance(data.get("checkpoint_score"), dict) else {}
        entries = [e for e in data.get("checkpoints") or [] if isinstance(e, dict) and "name" in e]
        return {
            "trial_id": str(data["trial_id"]) if "trial_id" in data else "",
            "config": data.get("config") if isinstance(data.get("config"), dict) else {},
            "status": str(data.get("status", "running")), "reason": str(data.get("reason") or ""),
            "step": _int(data.get("step"), 0), "steps": _int(data.get("steps"), 0),
            "metrics": read_metrics(data.get("metrics")),
            "score": (str(score.get("metric", DEFAULT_SCORE[0])), str(score.get("mode", DEFAULT_SCORE[1]))),
            "checkpoints": [CheckpointEntry(str(e["name"]), _int(e.get("step"), -1), read_metrics(e.get("metrics")))
                            for e in entries],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**cls._fields(data))


@dataclass
class Record(RunRecord):
    """A trial's whole record (its RECORD_FILE): the trial's run, its Tune name and, for a pack,
    each member's run."""

    trial_name: str = ""
    members: list[RunRecord] | None = None  # a pack's, in member order; None for a trial of its own

    @classmethod
    def start(cls, trial_id: str, config: dict[str, Any], score: tuple[str, str], *, trial_name: str = "") -> Record:
        """A new trial's record (a pack's, with its members', when the config holds PACK_KEY)."""
        record = cls(trial_id, config, steps=config.get("steps", InfoGANConfig().steps), score=score)
        record.trial_name = trial_name
        if PACK_KEY in config:
            members = enumerate(config[PACK_KEY])
            record.members = [RunRecord.start(member_id(trial_id, k), c, score) for k, c in members]
        return record

    @property
    def runs(self) -> list[RunRecord]:
        """The runs the trial trains: its members (a pack), or itself."""
        return self.members if self.members is not None else [self]

    def fail(self, reason: str) -> None:
        """An error ended the trial: its run errored (a pack: each member that had not ended)."""
        if self.members is None:
            self.update("error", reason)
        for member in self.members or []:
            if member.status not in ENDED:
                member.update("error", reason)

    def checkpoint_folders(self) -> list[str]:
        """Where each run's checkpoint is inside the trial's checkpoints: a pack member's folder, or
        the checkpoint itself ('')."""
        return [member_folder(k) for k in range(len(self.members))] if self.members is not None else [""]

    def continue_from(self, earlier: Record) -> None:
        """A restarted trial (after a failure, or `resume`): each run's step and last metrics."""
        for run, before in zip([self, *(self.members or [])], [earlier, *(earlier.members or [])]):
            run.step, run.metrics = before.step, before.metrics

    def to_json(self) -> dict[str, Any]:
        data = {"format": RECORD_FORMAT, "trial_id": self.trial_id, "trial_name": self.trial_name, **super().to_json()}
        if self.members is not None:
            data.update(pack=True, members=[m.to_json() for m in self.members])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        members = data.get("members")
        record = cls(**cls._fields(data), trial_name=str(data.get("trial_name") or ""))
        if isinstance(members, list):
            record.members = [RunRecord.from_json(m) for m in members if isinstance(m, dict)]
        return record


def checkpoints_to_delete(record: Record, keep: int = CHECKPOINTS_KEPT) -> list[str]:
    """The checkpoint folders of `record`'s trial (as its lists hold them) that pruning deletes:
    all but the newest and the best `keep` by the trial's score (metric, mode), ranked as Tune's
    `CheckpointConfig(num_to_keep, checkpoint_score_attribute)` ranks them: NaN (or no value) below
    every number, ties to the later checkpoint. A pack's checkpoint scores the mean of the members'
    values in it (the pack's row, which Tune would rank by, is that mean)."""
    metric, mode = record.score
    values: dict[str, list[float]] = {}
    steps: dict[str, int] = {}
    for run in record.runs:
        for entry in run.checkpoints:
            value = entry.metrics.get(metric, math.nan)
            values.setdefault(entry.name, []).extend([] if math.isnan(value) else [value])
            steps[entry.name] = max(steps.get(entry.name, -1), entry.step)
    sign = 1.0 if mode == "max" else -1.0

    def rank(name: str) -> tuple[bool, float, int, str]:
        found = values[name]
        return bool(found), sign * sum(found) / len(found) if found else 0.0, steps[name], name

    newest = max(values, key=lambda name: (steps[name], name))
    best = sorted(values, key=rank)[-keep:]
    return sorted(set(values) - set(best) - {newest})


def read_record(text: str) -> Record | None:
    """The record in the text of a RECORD_FILE (None: not a record)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return Record.from_json(data) if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------- storage
class RecordStore:
    """A trial folder in the experiment's storage (a local path or an s3:// / gs:// URI): the
    record there, and the checkpoints that describe themselves there."""

    def __init__(self, experiment_path: str, trial_id: str) -> None:
        if "://" in experiment_path:
            self.fs, root = pyarrow.fs.FileSystem.from_uri(experiment_path)
        else:
            self.fs, root = pyarrow.fs.LocalFileSystem(), str(Path(experiment_path).resolve())
        self.folder = f"{root.rstrip('/')}/{trial_folder_name(trial_id)}"

    def read(self) -> Record | None:
        """The record there (None: none yet, or not readable)."""
        try:
            with self.fs.open_input_stream(f"{self.folder}/{RECORD_FILE}") as f:
                return read_record(f.read().decode())
        except (OSError, UnicodeDecodeError):
            return None

    def make_folder(self) -> None:
        self.fs.create_dir(self.folder, recursive=True)

    def write(self, record: Record) -> None:
        """Replace the record, with the checkpoints in storage now (each member's, for a pack)."""
        for run, inside in zip(record.runs, record.checkpoint_folders()):
            run.checkpoints = self.checkpoints(inside)
        text = json.dumps(record.to_json(), indent=1, default=str)
        if isinstance(self.fs, pyarrow.fs.LocalFileSystem):  # never a half-written record
            target = Path(self.folder, RECORD_FILE)
            tmp = target.with_name(f".{RECORD_FILE}.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, target)
        else:  # an object store: one PUT, which readers see whole or not at all
            with self.fs.open_output_stream(f"{self.folder}/{RECORD_FILE}") as f:
                f.write(text.encode())

    def checkpoints(self, inside: str = "") -> list[CheckpointEntry]:
        """The trial's checkpoints in storage as their CHECKPOINT_FILE describes them (a pack
        member's: those holding its folder `inside`), by step."""
        selector = pyarrow.fs.FileSelector(self.folder, allow_not_found=True)
        folders = [i.path for i in self.fs.get_file_info(selector) if i.type == pyarrow.fs.FileType.Directory]
        where = f"{inside}/" if inside else ""
        markers = self.fs.get_file_info([f"{f}/{where}{CHECKPOINT_FILE}" for f in folders]) if folders else []
        entries = []
        for folder, marker in zip(folders, markers):
            if marker.type != pyarrow.fs.FileType.File:
                continue
            try:
                with self.fs.open_input_stream(marker.path) as f:
                    entry = read_description(posixpath.basename(folder), f.read().decode())
            except (OSError, UnicodeDecodeError):  # Tune deleted it meanwhile
                continue
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda e: (e.step, e.name))

    def prune(self, record: Record, keep: int = CHECKPOINTS_KEPT) -> list[str]:
        """Empty the checkpoints `checkpoints_to_delete` names (from the record's lists as last
        written), and return their names. The trial keeps its checkpoints itself: Tune is told to
        keep them all (`num_to_keep=None`), because a Tune that deletes them forces an experiment
        snapshot every `num_to_keep` checkpoints of any trial (docs/design.md). Each pruned folder
        keeps one small PRUNED_FILE: Tune's last snapshot may still name it as the trial's latest,
        and Tune refuses to restart a trial from a checkpoint path that does not exist; the trial
        then continues from its newest described one (`trainables.tune.checkpoint_to_resume`)."""
        doomed = checkpoints_to_delete(record, keep)
        for name in doomed:
            path = f"{self.folder}/{name}"
            with contextlib.suppress(OSError):  # emptied already (a restarted trial pruning again)
                self.fs.delete_dir_contents(path)
            with self.fs.open_output_stream(f"{path}/{PRUNED_FILE}") as f:
                f.write(b"pruned by its trial: the newest and the best checkpoints were kept\n")
        return doomed

    def newest_checkpoint(self, record: Record) -> str | None:
        """The newest checkpoint folder a restart of `record`'s trial can continue from (its path in
        `fs`), or None. A pack's holds a folder per member; a member that diverged stops saving, so
        it is the newest any member describes."""
        entries = {e.name: e for inside in record.checkpoint_folders() for e in self.checkpoints(inside)}
        if not entries:
            return None
        newest = max(entries.values(), key=lambda e: (e.step, e.name))
        return f"{self.folder}/{newest.name}"
