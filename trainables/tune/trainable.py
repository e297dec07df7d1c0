"""The Ray Tune function trainable: a thin adapter from a trial's config to the Ray-free loop.

`infogan_trainable` builds the `InfoGANConfig` from the trial's config (an unknown key or a bad
value makes the trial error at once with the config's one-line message), resumes from
the newest checkpoint in the trial's folder (after a node loss or `infogan-study resume`; without
a folder, from `tune.get_checkpoint()`), and trains: one run by
`trainables.loop.train`, or, when the trial config is a pack ({"members": [member trial configs]},
`sweep --pack`), K runs as one network by `trainables.packed.train_packed`, each still a trial of
the study. Each report becomes
a Tune result (`trainables/tune/report.py`). A diverged run returns normally, so the trial ends
TERMINATED with a readable reason instead of an error and a burst of retries; a pack member that
diverges stops alone.

The trial record (`trainables/trial_record.py`): the launcher tells the trainable its experiment
folder; the trial's folder in it is `trial_<trial id>` (`trial_dirname`, the name the launcher
gives Tune), so a trial writes its record from its first moment (an error before any report is
recorded too), before each report, after it and at the end. A trial that Tune stops early records
`stopped`. The bare `infogan_trainable` in a Tuner of your own writes no record (`analyze` then
reads Tune's files).

The probe: the launcher hands every trial (through `tune.with_parameters`, a few small
classifiers at most) a factory of the analysis's generator-side probe, and each report then
carries `gen/cat_acc` and `gen/valid`: how well the categorical code decides the factor read off
G's images, the study's right objective where the MI bound is no guide.

Data: each trial loads its dataset itself from `config.data_root` (a shared path on a cluster;
the launcher makes it absolute). We do not pass the data by `tune.with_parameters`, which would
put the arrays in Ray's object store once and hand every trial a zero-copy view: the procedural
datasets are generated from the seed in well under a second, the torchvision ones are a few tens
of MB read from disk, and a trial trains for minutes, so loading costs little. Loading in the
trial also keeps the trainable independent of which dataset a space varies (`dataset` can be a
grid key), keeps tuner.pkl small and restorable without the driver holding every dataset in
memory, and lets a GPU trial put the data straight on its device.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from ray import tune

from trainables.data import ImageData, load_data
from trainables.errors import one_line
from trainables.loop import train
from trainables.models import InfoGAN
from trainables.packed import train_packed
from trainables.trial_record import DEFAULT_SCORE, PACK_KEY, Record, RecordStore, build_config
from trainables.tune.report import TrialReporter

ProbeFactory = Callable[[ImageData], Callable[[InfoGAN], dict[str, float]] | None]


def cpu_share() -> int:
    """Whole CPUs this trial was given by Ray (at least one thread)."""
    resources = tune.get_context().get_trial_resources().required_resources
    return max(1, int(resources.get("CPU", 1)))


def open_record(
    experiment_path: str | None, trial_config: dict[str, Any], score: tuple[str, str]
) -> tuple[Record, RecordStore | None]:
    """The trial's record, and where it is kept (None: nowhere); a restarted trial's (after a
    failure, or `resume`) continues where its record had got to."""
    context = tune.get_context()
    trial_id = context.get_trial_id()
    record = Record.start(trial_id, trial_config, score, trial_name=context.get_trial_name())
    if experiment_path is None:
        return record, None
    store = RecordStore(experiment_path, trial_id)
    earlier = store.read()
    if earlier is not None:
        record.continue_from(earlier)
    else:
        store.make_folder()
    return record, store


def checkpoint_to_resume(record: Record, store: RecordStore | None) -> tune.Checkpoint | None:
    """Where the trial continues from: the newest checkpoint its folder holds, else (no folder:
    the bare trainable) the one Tune hands it (after a failure or `resume`). Tune's own state can
    be older than the trial's folder (a driver killed between two of Tune's snapshots, which come
    on Tune's clock, at least 10 s apart): Tune then hands it an older checkpoint, one the trial
    has since pruned (`RecordStore.prune`), or none, although newer ones are on disk. The trial
    never prunes its newest, so the folder's newest is at least as new as Tune's."""
    if store is None:
        return tune.get_checkpoint()
    newest = store.newest_checkpoint(record)
    return None if newest is None else tune.Checkpoint(path=newest, filesystem=store.fs)


def infogan_trainable(
    trial_config: dict[str, Any],
    *,
    experiment_path: str | None = None,
    checkpoint_score: tuple[str, str] = DEFAULT_SCORE,
    probe: ProbeFactory | None = None,
    prune: bool = True,
) -> None:
    """Tune function trainable: one InfoGAN run (or a pack of runs), resumable from the trial's
    last checkpoint; with `experiment_path` (the launcher's), it keeps the trial's record there,
    its checkpoints ranked by `checkpoint_score` (metric, mode), and with `prune` deletes those
    beyond its newest and best CHECKPOINTS_KEPT (Tune then keeps all it is told of).
    `probe(data)`: the evaluation reported beside the losses (the analysis's generator-side probe,
    gen/cat_acc)."""
    pack = PACK_KEY in trial_config
    record, store = open_record(experiment_path, trial_config, checkpoint_score)
    reporter = TrialReporter([], record, store, prune=prune)
    reporter.write()
    try:
        reporter.configs = [build_config(c) for c in trial_config[PACK_KEY]] if pack else [build_config(trial_config)]
        torch.set_num_threads(cpu_share())
        device = "cuda" if torch.cuda.is_available() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES per trial
        checkpoint = checkpoint_to_resume(record, store)
        data = load_data(reporter.configs[0], device=device)
        evaluate = probe(data) if probe is not None else None
        with checkpoint.as_directory() if checkpoint is not None else nullcontext(None) as resume_dir:
            run = {"device": device, "resume_from": resume_dir, "data": data, "evaluate": evaluate}
            if pack:
                results = train_packed(reporter.configs, report=reporter.pack, **run)
            else:
                results = [train(reporter.configs[0], report=reporter.single, **run)]
    except Exception as err:
        record.fail(one_line(err, limit=None))
        reporter.write()
        raise
    for run_record, result in zip(record.runs, results):
        run_record.update(result.status, result.reason, result.metrics)
    if pack:  # the pack's own word: it ran to its end, or Tune stopped it
        record.update("stopped" if reporter.stopped else "completed", "")
    reporter.write()
    if reporter.stopped:
        raise SystemExit(0)  # Tune's way out of a stopped trial (see STOPPED_BY_TUNE)
    for run_record, result in zip(record.runs, results):
        if result.status == "diverged":
            name = run_record.trial_id if pack else record.trial_name
            print(f"infogan-study: trial {name} {result.reason}", file=sys.stderr)


def with_trial_resources(
    *,
    cpus: float,
    gpus: float,
    experiment_path: str | None = None,
    checkpoint_score: tuple[str, str] = DEFAULT_SCORE,
    probe: Any = None,
    prune: bool = True,
) -> Callable[[dict[str, Any]], None]:
    """The trainable with its per-trial resource request (fractional GPUs pack trials on a GPU),
    where its records go, the (metric, mode) its checkpoints are ranked by, whether it prunes them
    itself (`prune`), and its probe (handed to every trial through Ray's object store by
    `tune.with_parameters`). `tune.with_resources` sets an attribute on the function it is given,
    so it gets a fresh wrapper (same name, so trial names and `Tuner.restore` see
    `infogan_trainable`)."""

    def trainable(trial_config: dict[str, Any], probe: Any = None) -> None:
        infogan_trainable(trial_config, experiment_path=experiment_path, checkpoint_score=checkpoint_score,
                          probe=probe, prune=prune)  # fmt: skip

    trainable.__name__ = infogan_trainable.__name__
    wrapped = tune.with_parameters(trainable, probe=probe) if probe is not None else trainable
    return tune.with_resources(wrapped, trial_resources(cpus=cpus, gpus=gpus))


def trial_resources(*, cpus: float, gpus: float) -> dict[str, float]:
    """What each trial asks Ray for (`tune.with_resources`'s form): fractional GPUs share a GPU."""
    return {"cpu": cpus, "gpu": gpus}
