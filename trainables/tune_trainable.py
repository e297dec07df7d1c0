"""The Ray Tune function trainable: a thin adapter from a trial's config to `trainables.loop.train`,
and the trial's own record.

The loop knows nothing of Ray. This module builds the `InfoGANConfig` from the trial's config
(an unknown key or a bad value makes the trial error at once with the config's one-line message),
resumes from `tune.get_checkpoint()` (set after a node loss or `infogan-study resume`; else from
the newest checkpoint still in the trial's folder, `TrialRecord.checkpoint_to_resume`), and turns
each report into `tune.report(metrics, checkpoint=...)`. How the run stands is the loop's word
(`report_status`, `TrainResult`): every report carries its `status` and `reason`, and a diverged
run returns normally, so the trial ends TERMINATED with a readable reason instead of an error and
a burst of retries. A diverged report carries no checkpoint (its weights are blown up, and it
would only compete with good ones for the checkpoints Tune keeps).

The trial record: `infogan-trial.json` in the trial's folder, beside Tune's result.json. It is
what `status`, `analyze` and `resume` read about a trial, instead of Tune's internal state files
(which change between Ray releases):

    {"format": 1, "trial_id": "...", "trial_name": "...", "config": {the trial config},
     "status": "running" | "completed" | "diverged" | "stopped" | "error", "reason": "one line",
     "step": 120, "steps": 600, "metrics": {the last report},
     "checkpoint_score": {"metric": "mi/cat", "mode": "max"},  # how Tune ranks the kept checkpoints
     "checkpoints": [{"name": "checkpoint_000005", "step": 120, "metrics": {...}}, ...]}

The launcher tells the trainable its experiment folder; the trial's folder in it is
`trial_<trial id>`, the name the launcher gives Tune (`trial_dirname`), so a trial writes its
record from its first moment (an error before any report is recorded too). Each checkpoint
describes itself (`infogan-checkpoint.json` beside checkpoint.pt: its step and metrics), and the
record lists the checkpoints in the trial folder as they describe themselves: the ones Tune still
keeps (the best few by the study's metric, and the latest). The record is written at the start,
before each report (which may block until Tune stops the trial), after it and at the end; it is
replaced atomically (a temp file and os.replace; one object PUT on s3/gs). A trial that Tune
stops early records `stopped`. The bare `infogan_trainable` in a Tuner of your own writes no
record (`analyze` then reads Tune's files).

The probe: the launcher hands every trial (through `tune.with_parameters`, a few small
classifiers at most) a factory of the analysis's generator-side probe, and each report then
carries `gen/cat_acc` and `gen/valid`: how well the categorical code decides the factor read off
G's images, the study's right objective where the MI bound is no guide.

Data: each trial loads its dataset itself from `config.data_root` (a shared path on a cluster;
the launcher makes it absolute). We do not pass the data by `tune.with_parameters`, which would put the arrays
in Ray's object store once and hand every trial a zero-copy view: the procedural datasets are
generated from the seed in well under a second, the torchvision ones are a few tens of MB read
from disk, and a trial trains for minutes, so loading costs little. Loading in the trial also keeps
the trainable independent of which dataset a space varies (`dataset` can be a grid key), keeps
tuner.pkl small and restorable without the driver holding every dataset in memory, and lets a GPU
trial put the data straight on its device.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import sys
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pyarrow.fs
import torch
from ray import tune

from search_spaces import VARIANT_KEY
from trainables.config import InfoGANConfig
from trainables.data import ImageData, load_data
from trainables.loop import ReportFn, report_status, train
from trainables.models import InfoGAN

# Shown first (Tune's progress table shows the first four reported metrics) and by `status`.
KEY_METRICS = ("mi/cat", "loss/d", "loss/g", "diverged")
RECORD_FILE = "infogan-trial.json"  # analysis.tune_folder reads it
CHECKPOINT_FILE = "infogan-checkpoint.json"  # in each checkpoint: its step and metrics
RECORD_FORMAT = 1
PACK_KEY = "members"  # the trial config of a pack (`sweep --pack`): {"members": [member trial configs]}
DEFAULT_SCORE = ("mi/cat", "max")  # how `analyze --checkpoint best` ranks checkpoints when no study says
# Tune ends a function trainable it stops (scheduler, stop criterion, driver shutting down) by
# raising SystemExit(0) inside its `tune.report`: the run then ends as "stopped", its record is
# written, and the SystemExit goes on up (returning normally instead would make Tune's wrapper
# report once more, and that report would wait for ever).
STOPPED_BY_TUNE = "by Tune (its scheduler, a stop criterion or the driver stopping)"


def build_config(trial_config: dict[str, Any]) -> InfoGANConfig:
    """The run's config from a trial config: field names plus the optional `variant` label."""
    return InfoGANConfig.from_dict({k: v for k, v in trial_config.items() if k != VARIANT_KEY})


def cpu_share() -> int:
    """Whole CPUs this trial was given by Ray (at least one thread)."""
    resources = tune.get_context().get_trial_resources().required_resources
    return max(1, int(resources.get("CPU", 1)))


def _numbers(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The numeric metrics, NaN and inf as null (the record is strict JSON)."""
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {k: v if math.isfinite(v) else None for k, v in numbers.items()}


def trial_folder_name(trial_id: str) -> str:
    """The trial's folder name under the experiment (the launcher's `trial_dirname_creator`)."""
    return f"trial_{trial_id}"


def trial_dirname(trial: Any) -> str:
    """`TuneConfig(trial_dirname_creator=...)`: short trial folder names (Tune's default repeats
    every parameter), which also tell each trial where its record goes."""
    return trial_folder_name(trial.trial_id)


class TrialRecord:
    """The trial's `infogan-trial.json`, kept in memory and rewritten whole. Without an experiment
    path (the bare `infogan_trainable` in a Tuner of your own) nothing is written."""

    def __init__(self, experiment_path: str | None, trial_config: dict[str, Any], score: tuple[str, str]):
        context = tune.get_context()
        trial_id = context.get_trial_id()
        self.data: dict[str, Any] = {
            "format": RECORD_FORMAT, "trial_id": trial_id, "trial_name": context.get_trial_name(),
            "config": trial_config, "status": "running", "reason": "", "step": 0,
            "steps": trial_config.get("steps", InfoGANConfig().steps), "metrics": {},
            "checkpoint_score": {"metric": score[0], "mode": score[1]}, "checkpoints": [],
        }  # fmt: skip
        self.fs: pyarrow.fs.FileSystem | None = None
        self.folder: str | None = None  # the trial's folder on `fs`
        if experiment_path is None:
            return
        if "://" in experiment_path:
            self.fs, root = pyarrow.fs.FileSystem.from_uri(experiment_path)
        else:
            self.fs, root = pyarrow.fs.LocalFileSystem(), str(Path(experiment_path).resolve())
        self.folder = f"{root.rstrip('/')}/{trial_folder_name(trial_id)}"
        try:  # a restarted trial (after a failure, or `resume`): where it had got to
            with self.fs.open_input_stream(f"{self.folder}/{RECORD_FILE}") as f:
                earlier = json.loads(f.read().decode())
            self.data.update(step=earlier.get("step", 0), metrics=earlier.get("metrics", {}))
        except (OSError, ValueError, AttributeError):
            self.fs.create_dir(self.folder, recursive=True)

    def _list_checkpoints(self) -> None:
        self.data["checkpoints"] = self._checkpoints()

    def update(self, status: str, reason: str, metrics: dict[str, float] | None = None) -> None:
        self.data.update(status=status, reason=reason)
        if metrics:
            self.data.update(metrics=_numbers(metrics), step=int(metrics.get("step", self.data["step"])))

    def _checkpoints(self, inside: str = "") -> list[dict[str, Any]]:
        """The trial's checkpoints in storage, as their own CHECKPOINT_FILE describes them (a pack
        member's: the ones holding its folder `inside`)."""
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
                    described = json.loads(f.read().decode())
            except (OSError, ValueError):  # Tune deleted it meanwhile
                continue
            entries.append({"name": posixpath.basename(folder), "step": described["step"],
                            "metrics": described["metrics"]})  # fmt: skip
        return sorted(entries, key=lambda e: (e["step"], e["name"]))

    def checkpoint_to_resume(self) -> tune.Checkpoint | None:
        """Where the trial continues from: the checkpoint Tune hands it (after a failure or
        `resume`), else the newest one its folder still holds. Tune's own state can be older than
        the trial's folder (a driver killed between two of Tune's snapshots), and Tune then
        restarts the trial from step 0 although its checkpoints are on disk."""
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None or self.folder is None:
            return checkpoint
        on_disk = self._resumable()
        if not on_disk:
            return None
        return tune.Checkpoint(path=f"{self.folder}/{on_disk[-1]['name']}", filesystem=self.fs)

    def _resumable(self) -> list[dict[str, Any]]:
        """The checkpoints in the trial's folder a restart can continue from, oldest first."""
        return self._checkpoints()

    def write(self) -> None:
        """Replace the record (with the checkpoints in storage now)."""
        if self.folder is None:
            return
        self._list_checkpoints()
        text = json.dumps(self.data, indent=1, default=str)
        if isinstance(self.fs, pyarrow.fs.LocalFileSystem):  # never a half-written record
            target = Path(self.folder, RECORD_FILE)
            tmp = target.with_name(f".{RECORD_FILE}.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, target)
        else:  # an object store: one PUT, which readers see whole or not at all
            with self.fs.open_output_stream(f"{self.folder}/{RECORD_FILE}") as f:
                f.write(text.encode())


def _reporter(config: InfoGANConfig, record: TrialRecord) -> ReportFn:
    """The loop's report callback; `report.stopped` is set when Tune stopped the trial."""

    def _tune_report(row: dict[str, Any], checkpoint: tune.Checkpoint | None) -> str | None:
        """`tune.report`; returns STOPPED_BY_TUNE when Tune stops the trial there."""
        try:
            tune.report(row, checkpoint=checkpoint)
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise
            report.stopped = True
            return STOPPED_BY_TUNE
        return None

    def report(metrics: dict[str, float], save_checkpoint: Callable[[str | Path], Any]) -> str | None:
        status, reason = report_status(metrics, config)
        row: dict[str, Any] = {k: metrics[k] for k in KEY_METRICS if k in metrics}
        row.update(metrics)
        row.update(status=status, reason=reason, model_kind=config.model_kind)
        record.update(status, reason, metrics)
        record.write()  # before the report: Tune may stop the trial inside it
        if status == "diverged":
            return _tune_report(row, None)
        with tempfile.TemporaryDirectory(prefix="infogan-ckpt-") as tmp:
            save_checkpoint(tmp)
            described = {"step": int(metrics["step"]), "metrics": _numbers(metrics)}
            Path(tmp, CHECKPOINT_FILE).write_text(json.dumps(described, indent=1))
            try:
                return _tune_report(row, tune.Checkpoint.from_directory(tmp))  # copied to storage here
            finally:
                record.write()  # with the new checkpoint (Tune may have deleted older ones)

    report.stopped = False
    return report


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def infogan_trainable(
    trial_config: dict[str, Any],
    *,
    experiment_path: str | None = None,
    checkpoint_score: tuple[str, str] = DEFAULT_SCORE,
    probe: Callable[[ImageData], Callable[[InfoGAN], dict[str, float]] | None] | None = None,
) -> None:
    """Tune function trainable: one InfoGAN run, resumable from the trial's last checkpoint; with
    `experiment_path` (the launcher's), it keeps the trial's record there. `probe(data)`: the
    evaluation reported beside the losses (the analysis's generator-side probe, gen/cat_acc)."""
    record = TrialRecord(experiment_path, trial_config, checkpoint_score)
    record.write()
    try:
        config = build_config(trial_config)
        torch.set_num_threads(cpu_share())
        device = "cuda" if torch.cuda.is_available() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES per trial
        checkpoint = record.checkpoint_to_resume()
        report = _reporter(config, record)
        data = load_data(config, device=device)
        evaluate = probe(data) if probe is not None else None
        with checkpoint.as_directory() if checkpoint is not None else nullcontext(None) as resume_dir:
            result = train(config, device=device, report=report, resume_from=resume_dir, data=data, evaluate=evaluate)
    except Exception as err:
        record.update("error", _one_line(err))
        record.write()
        raise
    record.update(result.status, result.reason, result.metrics)
    record.write()
    if report.stopped:
        raise SystemExit(0)  # Tune's way out of a stopped trial (see STOPPED_BY_TUNE)
    if result.status == "diverged":
        print(f"infogan-study: trial {record.data['trial_name']} {result.reason}", file=sys.stderr)


def with_trial_resources(
    *,
    cpus: float,
    gpus: float,
    experiment_path: str | None = None,
    checkpoint_score: tuple[str, str] = DEFAULT_SCORE,
    probe: Any = None,
) -> Callable[[dict[str, Any]], None]:
    """The trainable with its per-trial resource request (fractional GPUs pack trials on a GPU),
    where its records go, the (metric, mode) its checkpoints are ranked by, and its probe (handed
    to every trial through Ray's object store by `tune.with_parameters`). `tune.with_resources`
    sets an attribute on the function it is given, so it gets a fresh wrapper (same name, so trial
    names and `Tuner.restore` see `infogan_trainable`). A trial config holding PACK_KEY is a pack
    of configurations, trained as one network (`trainables.tune_pack`)."""

    def trainable(trial_config: dict[str, Any], probe: Any = None) -> None:
        if PACK_KEY in trial_config:  # a pack of configurations (`sweep --pack`)
            from trainables.tune_pack import packed_trainable

            packed_trainable(trial_config, experiment_path=experiment_path, checkpoint_score=checkpoint_score,
                             probe=probe)  # fmt: skip
            return
        infogan_trainable(trial_config, experiment_path=experiment_path, checkpoint_score=checkpoint_score,
                          probe=probe)  # fmt: skip

    trainable.__name__ = infogan_trainable.__name__
    wrapped = tune.with_parameters(trainable, probe=probe) if probe is not None else trainable
    return tune.with_resources(wrapped, {"cpu": cpus, "gpu": gpus})
