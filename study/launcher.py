"""Run, resume and finish a study with Ray Tune (and Optuna for searches).

The pieces are the libraries' own: `tune.Tuner` with the thin function trainable, Tune's
checkpoints (the trainable reports one per report interval; two are kept per trial) and
`FailureConfig(max_failures)` so a trial whose node or process dies restarts from its last
checkpoint; `ASHAScheduler` for early stopping; `OptunaSearch` with a `TPESampler` whose study
lives in an Optuna storage (a journal file in the experiment folder by default, so
`optuna-dashboard <file>` opens it; an RDB URL when given). `Tuner.restore(..., resume_errored=True)`
continues an interrupted study: Tune restores the trial table, the searcher (OptunaSearch pickles
its study handle and the sampler with its RNG state) and the scheduler; trials that finished are
not rerun, unfinished and errored ones continue from their checkpoints.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from study import tune_state
from study.plan import StudySpec, is_uri, join_path, known_studies, read_spec, write_spec
from study.ray_runtime import check_local_fit, ray_session, starts_local_instance
from study.status import format_table, load_trials
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.tune_trainable import with_trial_resources

CHECKPOINTS_KEPT = 2
# Tune forces an experiment-state snapshot every CHECKPOINTS_KEPT checkpoints of a trial (so the
# state never points at a deleted checkpoint) and warns when that happens often; with a report
# every few seconds it does, by design, and a local snapshot takes ~10 ms.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


# ---------------------------------------------------------------------------------- Optuna
def optuna_storage(spec: StudySpec) -> optuna.storages.BaseStorage:
    """The search's Optuna storage: an RDB URL, a journal file path, or the experiment's journal."""
    target = spec.optuna_storage or spec.optuna_journal
    try:
        if "://" in target:
            return optuna.storages.RDBStorage(target)
        from optuna.storages.journal import JournalFileBackend

        Path(target).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(target))
    except Exception as err:  # noqa: BLE001 - any driver/OS error means the same: unusable storage
        raise BadInputError(f"--optuna-storage {target}: cannot open ({type(err).__name__}: {err})") from None


def check_optuna_storage(spec: StudySpec) -> None:
    """Before starting: the storage opens and holds no study of this name yet."""
    if spec.optuna_storage is None and is_uri(spec.storage_path):
        raise BadInputError(
            f"--storage-path {spec.storage_path}: the Optuna study needs a file system or a database; "
            "add --optuna-storage postgresql://... or a journal file on shared storage"
        )
    if spec.optuna_storage is None:
        return  # the experiment folder is new (check_new_study), so is its journal
    storage = optuna_storage(spec)
    if any(s.study_name == spec.name for s in storage.get_all_studies()):
        raise BadInputError(f"the Optuna storage already holds a study named {spec.name}; pick another --name")


def fail_orphaned_optuna_trials(spec: StudySpec) -> int:
    """Mark trials still RUNNING in the Optuna study as FAIL once Tune has finished.

    Two ways to get there: a driver killed after asking Optuna for a trial but before Tune
    snapshotted that trial (Tune suggests a fresh one on resume), and a trial whose objective was
    NaN (a diverged run: Optuna refuses the value). Left RUNNING they would confuse the dashboard
    and the sampler's view of pending trials."""
    storage = optuna_storage(spec)
    study_id = storage.get_study_id_from_name(spec.name)
    running = [t.number for t in storage.get_all_trials(study_id) if t.state == optuna.trial.TrialState.RUNNING]
    for number in running:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    return len(running)


# ---------------------------------------------------------------------------------- Tune pieces
def _max_iterations(param_space: dict[str, Any]) -> int:
    """Reports per trial (ASHA's max_t): steps / report_every, from the space or the defaults."""
    defaults = InfoGANConfig()
    steps = param_space.get("steps", defaults.steps)
    every = param_space.get("report_every", defaults.report_every)
    if not isinstance(steps, int) or not isinstance(every, int):
        raise BadInputError("--scheduler asha needs steps and report_every fixed for the whole study")
    return max(1, math.ceil(steps / every))


def _scheduler(spec: StudySpec, param_space: dict[str, Any]) -> TrialScheduler:
    if spec.scheduler == "none":
        return FIFOScheduler()
    if len(spec.objectives) != 1:
        raise BadInputError("--scheduler asha stops trials on one metric; give a single objective")
    max_t = _max_iterations(param_space)
    objective = spec.objectives[0]
    return ASHAScheduler(
        time_attr="training_iteration",
        metric=objective.metric,
        mode=objective.mode,
        max_t=max_t,
        grace_period=max(1, max_t // 9),  # a trial gets at least ~11% of its budget
        reduction_factor=3,
    )


def _searcher(spec: StudySpec) -> OptunaSearch:
    metrics = [o.metric for o in spec.objectives]
    modes = [o.mode for o in spec.objectives]
    return OptunaSearch(
        metric=metrics[0] if len(metrics) == 1 else metrics,
        mode=modes[0] if len(modes) == 1 else modes,
        sampler=optuna.samplers.TPESampler(n_startup_trials=spec.startup_trials, seed=0),
        study_name=spec.name,
        storage=optuna_storage(spec),
    )


def trial_dirname(trial: Trial) -> str:
    """Short trial folder names (Tune's default repeats every parameter)."""
    return f"trial_{trial.trial_id}"


def build_tuner(spec: StudySpec, param_space: dict[str, Any], *, reuse_actors: bool = True,
                callbacks: Sequence[tune.Callback] = ()) -> tune.Tuner:  # fmt: skip
    """The Tuner of a new study. Reusing actors (every trial asks for the same resources) skips a
    process start and the torch import per trial; benchmarks/sweep_efficiency.py measures it with
    a timing callback."""
    tune_config = tune.TuneConfig(
        search_alg=_searcher(spec) if spec.kind == "search" else None,
        scheduler=_scheduler(spec, param_space),
        num_samples=spec.num_samples,
        max_concurrent_trials=spec.max_concurrent,
        trial_dirname_creator=trial_dirname,
        reuse_actors=reuse_actors,
    )
    run_config = tune.RunConfig(
        name=spec.name,
        storage_path=spec.storage_path,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
        callbacks=list(callbacks) or None,
        verbose=1,
    )
    trainable = with_trial_resources(cpus=spec.cpus_per_trial, gpus=spec.gpus_per_trial)
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config)


# ---------------------------------------------------------------------------------- entry points
def _finish(spec: StudySpec, results: tune.ResultGrid) -> int:
    """Print the trial table and where things are; exit status 1 if any trial errored."""
    if spec.kind == "search":
        orphans = fail_orphaned_optuna_trials(spec)
        if orphans:
            print(f"marked {orphans} Optuna trial(s) left RUNNING (interrupted driver or NaN objective) as FAIL")
    print(format_table(load_trials(spec.experiment_path), objectives=spec.objectives))
    print(f"results: {spec.experiment_path}")
    if spec.kind == "search" and spec.optuna_storage is None:
        print(f"optuna study {spec.name!r}: optuna-dashboard {spec.optuna_journal}")
    if results.num_errors:
        print(f"{results.num_errors} trial(s) errored; see the table above, fix, then "
              f"`infogan-study resume {spec.name}` retries them", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def run_study(spec: StudySpec, param_space: dict[str, Any], *, address: str | None, announce: str = "") -> int:
    """Start a new sweep or search (everything already checked) and wait for it."""
    _scheduler(spec, param_space)  # its bad input, before Ray starts
    if starts_local_instance(address):
        check_local_fit(cpus=spec.cpus_per_trial, gpus=spec.gpus_per_trial)
    with ray_session(address):
        if announce:
            print(announce, flush=True)
        write_spec(spec)
        results = build_tuner(spec, param_space).fit()
    return _finish(spec, results)


def find_study(name: str, storage_path: str) -> StudySpec:
    """The spec of an existing, restorable study, or a one-line error listing the known ones."""
    path = join_path(storage_path, name)
    spec = read_spec(path)
    if spec is None or not tune.Tuner.can_restore(path):
        known = known_studies(storage_path)
        listing = f"known: {', '.join(known)}" if known else "none there yet"
        raise BadInputError(f"no study named {name!r} in {storage_path} ({listing}); check --storage-path")
    return spec


def resume_study(name: str, *, storage_path: str, address: str | None) -> int:
    """Continue an interrupted study: finished trials stay, the rest resume from checkpoints."""
    spec = find_study(name, storage_path)
    if starts_local_instance(address):
        check_local_fit(cpus=spec.cpus_per_trial, gpus=spec.gpus_per_trial)
    if not is_uri(spec.experiment_path):
        for file_name in tune_state.repair(Path(spec.experiment_path)):
            print(f"repaired {file_name} (truncated when the driver stopped) from Tune's staging copy")
    with ray_session(address):
        trainable = with_trial_resources(cpus=spec.cpus_per_trial, gpus=spec.gpus_per_trial)
        tuner = tune.Tuner.restore(spec.experiment_path, trainable=trainable, resume_errored=True)
        results = tuner.fit()
    return _finish(spec, results)
