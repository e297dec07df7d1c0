"""The loop's reports as Tune results: `tune.report(row, checkpoint=...)`, the trial's record
written before each (Tune may stop the trial inside it) and after it (with the new checkpoint).

How the run stands is the loop's word (`report_status`): every row carries its `status` and
`reason`. A diverged report carries no checkpoint (its weights are blown up, and it would only
compete with good ones for the checkpoints the trial keeps). Each checkpoint describes itself
(`trial_record.describe_checkpoint`: its step and metrics). After each checkpoint the trial
prunes its folder to its newest and its best `CHECKPOINTS_KEPT` (`RecordStore.prune`).

A pack's row (`sweep --pack`) holds every reporting member's metrics prefixed `m<k>/`
(`member_prefix`, with its status and reason), plus the mean over them of each metric unprefixed
(Tune's progress table, and the score the pack's checkpoints are ranked by); its checkpoint holds
a `member_<k>/` folder per member that did not diverge, each an ordinary run checkpoint.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune

from trainables.config import InfoGANConfig
from trainables.loop import report_status
from trainables.trial_record import Record, RecordStore, describe_checkpoint, member_folder, member_prefix

# Shown first (Tune's progress table shows the first four reported metrics) and by `status`.
KEY_METRICS = ("mi/cat", "loss/d", "loss/g", "diverged")
# Tune ends a function trainable it stops (scheduler, stop criterion, driver shutting down) by
# raising SystemExit(0) inside its `tune.report`: the run then ends as "stopped", its record is
# written, and the SystemExit goes on up (returning normally instead would make Tune's wrapper
# report once more, and that report would wait for ever).
STOPPED_BY_TUNE = "by Tune (its scheduler, a stop criterion or the driver stopping)"

SaveFn = Callable[[str | Path], Any]


def mean_row(by_member: dict[int, dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the reporting members (finite values only; NaN without any)."""
    keys = [k for k in KEY_METRICS if any(k in m for m in by_member.values())]
    keys += sorted({k for m in by_member.values() for k in m} - set(keys))
    row = {}
    for key in keys:
        values = [m[key] for m in by_member.values() if key in m and math.isfinite(m[key])]
        row[key] = sum(values) / len(values) if values else math.nan
    return row


class TrialReporter:
    """The loop's report callback for a trial: `single` (`trainables.loop.ReportFn`) for one run,
    `pack` (`trainables.packed.PackReportFn`) for a pack's members. `stopped` turns True when Tune
    stops the trial inside a report (the report then returns STOPPED_BY_TUNE, the loop's reason)."""

    def __init__(self, configs: list[InfoGANConfig], record: Record, store: RecordStore | None, *,
                 prune: bool = True) -> None:  # fmt: skip
        self.configs, self.record, self.store, self.prune = configs, record, store, prune
        self.stopped = False

    def write(self) -> None:
        """Replace the record (without an experiment path, the bare trainable keeps none)."""
        if self.store is not None:
            self.store.write(self.record)

    def single(self, metrics: dict[str, float], save_checkpoint: SaveFn) -> str | None:
        config = self.configs[0]
        status, reason = report_status(metrics, config)
        row: dict[str, Any] = {k: metrics[k] for k in KEY_METRICS if k in metrics}
        row.update(metrics)
        row.update(status=status, reason=reason, model_kind=config.model_kind)
        self.record.update(status, reason, metrics)
        return self._report(row, save_checkpoint, {} if status == "diverged" else {"": metrics})

    def pack(self, by_member: dict[int, dict[str, float]], save_checkpoint: SaveFn) -> str | None:
        row: dict[str, Any] = mean_row(by_member)
        row["members_reporting"] = len(by_member)
        for k, metrics in by_member.items():
            status, reason = report_status(metrics, self.configs[k])
            self.record.runs[k].update(status, reason, metrics)
            row.update({f"{member_prefix(k)}{key}": value for key, value in metrics.items()})
            row.update({f"{member_prefix(k)}status": status, f"{member_prefix(k)}reason": reason})
        return self._report(row, save_checkpoint, {member_folder(k): m for k, m in by_member.items()})

    def _report(self, row: dict[str, Any], save_checkpoint: SaveFn, saved: dict[str, dict[str, float]]) -> str | None:
        """`tune.report(row)` with a checkpoint whose folders `saved` ({folder in it: the metrics
        it describes}; '' for the checkpoint itself) describe themselves; no checkpoint if empty."""
        self.write()  # before the report: Tune may stop the trial inside it
        if not saved:
            return self._tune_report(row, None)
        with tempfile.TemporaryDirectory(prefix="infogan-ckpt-") as tmp:
            save_checkpoint(tmp)
            for inside, metrics in saved.items():
                if Path(tmp, inside).is_dir():  # (a pack member diverging now has none)
                    describe_checkpoint(Path(tmp, inside), int(metrics["step"]), metrics)
            try:
                return self._tune_report(row, tune.Checkpoint.from_directory(tmp))  # copied to storage here
            finally:
                self.write()  # with the new checkpoint
                if self.prune and self.store is not None and self.store.prune(self.record):
                    self.write()  # without the ones pruned

    def _tune_report(self, row: dict[str, Any], checkpoint: tune.Checkpoint | None) -> str | None:
        try:
            tune.report(row, checkpoint=checkpoint)
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise
            self.stopped = True
            return STOPPED_BY_TUNE
        return None
