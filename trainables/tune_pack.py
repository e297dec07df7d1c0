"""The Tune trainable of a pack (`infogan-study sweep --pack K`): one Tune trial trains up to K
configurations as one network (`trainables.packed.train_packed`), and each stays a trial of the study.

The trial config is {"members": [member trial configs]} (`PACK_KEY`). What a pack leaves behind:
- each report: one Tune result holding every reporting member's metrics prefixed `m<k>/`
  (`member_prefix`), plus the mean over them of each metric unprefixed (Tune's progress table, and
  the metric Tune ranks the pack's checkpoints by);
- one Tune checkpoint per report holding `member_<k>/` folders: each an ordinary run checkpoint
  (`train --resume`, `analyze`), described by its own `infogan-checkpoint.json`, plus `pack.json`
  (each member's status); Tune restores the pack from it after a node loss or `resume`;
- the record `infogan-trial.json`: the pack's trial id and, under "members", one ordinary trial
  record per member (id `<trial id>-m<k>`, `member_id`), which `analysis.tune_folder` expands into
  member trials (so `status`, `analyze` and the report list members as trials).
A member that diverges is recorded as diverged and stops alone; the pack goes on with the others.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from ray import tune

from trainables.config import InfoGANConfig
from trainables.data import ImageData, load_data
from trainables.loop import report_status
from trainables.models import InfoGAN
from trainables.packed import PackReportFn, member_folder, train_packed
from trainables.tune_trainable import (
    CHECKPOINT_FILE, DEFAULT_SCORE, KEY_METRICS, PACK_KEY, RECORD_FILE, STOPPED_BY_TUNE, TrialRecord, _numbers,
    _one_line, build_config, cpu_share,
)  # fmt: skip


def member_id(trial_id: str, k: int) -> str:
    """Member k's trial id: the pack trial's id and its index."""
    return f"{trial_id}-m{k:02d}"


def member_prefix(k: int) -> str:
    """The prefix of member k's metrics in the pack's Tune results."""
    return f"m{k:02d}/"


class PackRecord(TrialRecord):
    """The pack's `infogan-trial.json`: the pack and a full trial record per member."""

    def __init__(self, experiment_path: str | None, trial_config: dict[str, Any], score: tuple[str, str]):
        super().__init__(experiment_path, trial_config, score)
        trial_id = self.data["trial_id"]
        self.data["pack"] = True
        self.data["members"] = [
            {"trial_id": member_id(trial_id, k), "config": config, "status": "running", "reason": "", "step": 0,
             "steps": config.get("steps", InfoGANConfig().steps), "metrics": {},
             "checkpoint_score": self.data["checkpoint_score"], "checkpoints": []}
            for k, config in enumerate(trial_config[PACK_KEY])
        ]  # fmt: skip
        if self.folder is not None:  # a restarted pack: where each member had got to
            try:
                with self.fs.open_input_stream(f"{self.folder}/{RECORD_FILE}") as f:
                    earlier = json.loads(f.read().decode()).get("members", [])
            except (OSError, ValueError, AttributeError):
                earlier = []
            for member, before in zip(self.data["members"], earlier):
                member.update(step=before.get("step", 0), metrics=before.get("metrics", {}))

    def update_member(self, k: int, status: str, reason: str, metrics: dict[str, float] | None = None) -> None:
        member = self.data["members"][k]
        member.update(status=status, reason=reason)
        if metrics:
            member.update(metrics=_numbers(metrics), step=int(metrics.get("step", member["step"])))

    def _list_checkpoints(self) -> None:
        for k, member in enumerate(self.data["members"]):
            member["checkpoints"] = self._checkpoints(member_folder(k))

    def _resumable(self) -> list[dict[str, Any]]:
        """A pack's checkpoints hold a folder per member (members step together; a diverged one
        stops saving): every pack checkpoint any member describes, oldest first."""
        entries = {e["name"]: e for k in range(len(self.data["members"])) for e in self._checkpoints(member_folder(k))}
        return sorted(entries.values(), key=lambda e: (e["step"], e["name"]))


def _mean_row(by_member: dict[int, dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the reporting members (finite values only; NaN without any)."""
    keys = [k for k in KEY_METRICS if any(k in m for m in by_member.values())]
    keys += sorted({k for m in by_member.values() for k in m} - set(keys))
    row = {}
    for key in keys:
        values = [m[key] for m in by_member.values() if key in m and math.isfinite(m[key])]
        row[key] = sum(values) / len(values) if values else math.nan
    return row


def _pack_reporter(configs: list[InfoGANConfig], record: PackRecord) -> PackReportFn:
    def report(by_member: dict[int, dict[str, float]], save_checkpoint: Callable[[str | Path], Any]) -> str | None:
        row: dict[str, Any] = _mean_row(by_member)
        row["members_reporting"] = len(by_member)
        for k, metrics in by_member.items():
            status, reason = report_status(metrics, configs[k])
            record.update_member(k, status, reason, metrics)
            row.update({f"{member_prefix(k)}{key}": value for key, value in metrics.items()})
            row.update({f"{member_prefix(k)}status": status, f"{member_prefix(k)}reason": reason})
        record.write()  # before the report: Tune may stop the trial inside it
        with tempfile.TemporaryDirectory(prefix="infogan-pack-") as tmp:
            save_checkpoint(tmp)
            for k, metrics in by_member.items():
                folder = Path(tmp, member_folder(k))
                if folder.is_dir():  # (a member diverging now has none)
                    described = {"step": int(metrics["step"]), "metrics": _numbers(metrics)}
                    (folder / CHECKPOINT_FILE).write_text(json.dumps(described, indent=1))
            try:
                tune.report(row, checkpoint=tune.Checkpoint.from_directory(tmp))
            except SystemExit as stop:
                if stop.code not in (0, None):
                    raise
                report.stopped = True
                return STOPPED_BY_TUNE
            finally:
                record.write()
        return None

    report.stopped = False
    return report


def packed_trainable(
    trial_config: dict[str, Any],
    *,
    experiment_path: str | None = None,
    checkpoint_score: tuple[str, str] = DEFAULT_SCORE,
    probe: Callable[[ImageData], Callable[[InfoGAN], dict[str, float]] | None] | None = None,
) -> None:
    """Tune function trainable of a pack: `infogan_trainable` for K members at once."""
    record = PackRecord(experiment_path, trial_config, checkpoint_score)
    record.write()
    try:
        configs = [build_config(c) for c in trial_config[PACK_KEY]]
        torch.set_num_threads(cpu_share())
        device = "cuda" if torch.cuda.is_available() else "cpu"
        checkpoint = record.checkpoint_to_resume()
        report = _pack_reporter(configs, record)
        data = load_data(configs[0], device=device)
        evaluate = probe(data) if probe is not None else None
        with checkpoint.as_directory() if checkpoint is not None else nullcontext(None) as resume_dir:
            results = train_packed(configs, device=device, report=report, resume_from=resume_dir, data=data,
                                   evaluate=evaluate)  # fmt: skip
    except Exception as err:
        for k, member in enumerate(record.data["members"]):
            if member["status"] not in ("completed", "diverged"):
                record.update_member(k, "error", _one_line(err))
        record.write()
        raise
    for k, result in enumerate(results):
        record.update_member(k, result.status, result.reason, result.metrics)
    record.update("completed" if not report.stopped else "stopped", "")
    record.write()
    if report.stopped:
        raise SystemExit(0)
    for member, result in zip(record.data["members"], results):
        if result.status == "diverged":
            print(f"infogan-study: trial {member['trial_id']} {result.reason}", file=sys.stderr)
