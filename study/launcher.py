"""Run, resume and finish a study with Ray Tune (and Optuna for searches).

The pieces are the libraries' own: `tune.Tuner` with the thin function trainable, Tune's
checkpoints (the trainable reports one per report interval and keeps its newest and its best two
by the study's first objective, so `analyze --checkpoint best` finds the best one) and
`FailureConfig(max_failures)` so a trial whose node or process dies restarts from its last
checkpoint; `ASHAScheduler` for early stopping; `OptunaSearch` with a
`TPESampler` whose study lives in an Optuna storage (a journal file in the experiment folder by
default, so `optuna-dashboard <file>` opens it; an RDB URL when given).

`Tuner.restore(..., resume_errored=True)` continues an interrupted study: Tune restores the trial
table, the searcher (OptunaSearch pickles its study handle and the sampler with its RNG state) and
the scheduler; trials that finished are not rerun, unfinished and errored ones continue from their
checkpoints. Only Tune's public API touches Tune's saved state: `resume` first loads it the way
`Tuner.restore` will (`ExperimentAnalysis`, the search algorithm's `restore_from_dir`), because
Tune, when that state does not load, logs the error and starts the whole study over; we stop with
one line instead. What the project itself shows about trials comes from their records
(`trainables/trial_record.py`, `study/status.py`).

Before Ray starts (`preflight`), everything a study needs is checked, and nothing is written
until Ray is connected. Ctrl-C: Tune catches the first one, saves its state and stops the trials;
the driver then prints the table and `infogan-study resume NAME --storage-path DIR` and exits
with status 130 (`_finish`), as it does when a second Ctrl-C breaks Tune off; Ctrl-C after that,
while Ray shuts down, is ignored.

Console output: Tune's own is off (`RunConfig(verbose=0)`), and a `StudyProgress` callback keeps
one live progress line, until `--verbose` asks for Tune's output and Ray's logs. A study launched
with `--tracking mlflow` also gets Tune's `MLflowLoggerCallback` (`study/tracking.py`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune import ExperimentAnalysis
from ray.tune.logger import JsonLoggerCallback, TBXLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchAlgorithm, SearchGenerator
from ray.tune.search.optuna import OptunaSearch

from study.plan import (
    StudySpec,
    asha_settings,
    check_trial_data,
    check_trial_memory,
    find_spec,
    is_uri,
    known_studies,
    write_spec,
)
from study.progress import StudyProgress
from study.ray_runtime import CONNECT_TIMEOUT_S, check_local_fit, probe_address, ray_session, starts_local_instance
from study.status import StudyView, format_table, load_study
from study.tracking import mlflow_callbacks, tracking_uri
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError, one_line
from trainables.trial_record import CHECKPOINTS_KEPT, trial_dirname
from trainables.tune import with_trial_resources

# Checkpoints kept per trial: the newest and the best CHECKPOINTS_KEPT by the study's first
# objective. The trial deletes the others itself (`RecordStore.prune`, by Tune's ranking); Tune is
# told to keep them all (`num_to_keep=None`): a Tune that deletes checkpoints forces an experiment
# snapshot whenever a trial has saved `num_to_keep` since the last one, and each snapshot copies
# every trial's files so far, so the driver's cost per trial grew with the study (docs/design.md).
# A study launched before this (its spec's `pruned_by` is "tune") is resumed as it was launched:
# Tune restores its own num_to_keep, and its trials do not prune (both deleting would race).
# Tune's documented switches a new study's driver runs with (`driver_settings`), unless the user
# set them. Tune's automatic loggers off: `build_tuner` passes the two the project uses (JSON:
# result.json and params.json, which analyze and status read; TensorBoard: the event files the
# README points to), so Tune no longer adds its CSV logger. Each logger's files sit in the
# driver's staging folder, which every experiment snapshot copies whole to the storage path, so a
# file per trial less is a copy less per trial in every snapshot (docs/design.md, "The driver's
# Tune settings").
DRIVER_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}


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
    if any(s.study_name == spec.launch_name for s in storage.get_all_studies()):
        raise BadInputError(f"the Optuna storage already holds a study named {spec.name}; pick another --name")


def fail_orphaned_optuna_trials(spec: StudySpec) -> int:
    """Mark trials still RUNNING in the Optuna study as FAIL once Tune has finished.

    Two ways to get there: a driver killed after asking Optuna for a trial but before Tune
    snapshotted that trial (Tune suggests a fresh one on resume), and a trial whose objective was
    NaN (a diverged run: Optuna refuses the value). Left RUNNING they would confuse the dashboard
    and the sampler's view of pending trials."""
    storage = optuna_storage(spec)
    study_id = storage.get_study_id_from_name(spec.launch_name)
    running = [t.number for t in storage.get_all_trials(study_id) if t.state == optuna.trial.TrialState.RUNNING]
    for number in running:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    return len(running)


# ---------------------------------------------------------------------------------- Tune pieces
def _scheduler(spec: StudySpec, param_space: dict[str, Any]) -> TrialScheduler:
    if spec.scheduler == "none":
        return FIFOScheduler()
    if len(spec.objectives) != 1:
        raise BadInputError("--scheduler asha stops trials on one metric; give a single objective")
    max_t, grace_period, reduction_factor = asha_settings(spec, param_space)
    objective = spec.objectives[0]
    return ASHAScheduler(
        time_attr="training_iteration",
        metric=objective.metric,
        mode=objective.mode,
        max_t=max_t,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
    )


def _searcher(spec: StudySpec) -> OptunaSearch:
    metrics = [o.metric for o in spec.objectives]
    modes = [o.mode for o in spec.objectives]
    return OptunaSearch(
        metric=metrics[0] if len(metrics) == 1 else metrics,
        mode=modes[0] if len(modes) == 1 else modes,
        sampler=study_sampler(spec),
        study_name=spec.launch_name,
        storage=optuna_storage(spec),
    )


def study_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """Optuna's TPE, random for the first `startup_trials` trials, seeded (a search repeats)."""
    return optuna.samplers.TPESampler(n_startup_trials=spec.startup_trials, seed=0)


def _search_algorithm(spec: StudySpec) -> SearchAlgorithm:
    """The search algorithm as Tune wraps it for this study (to load its saved state)."""
    if spec.kind != "search":
        return BasicVariantGenerator(max_concurrent=spec.max_concurrent or 0)
    searcher = _searcher(spec)
    return SearchGenerator(ConcurrencyLimiter(searcher, spec.max_concurrent) if spec.max_concurrent else searcher)


def checkpoint_score(spec: StudySpec) -> tuple[str, str]:
    """(metric, mode) that ranks a trial's checkpoints: the study's first objective."""
    return spec.objectives[0].metric, spec.objectives[0].mode


def study_probe(spec: StudySpec) -> Any:
    """The generator probe every trial reports (gen/cat_acc, gen/valid), with the classifiers its
    datasets need trained once here, on the driver, into the storage folder's `.cache` (shared
    with `analyze`; `~/.cache/infogan-study` for s3:// or gs:// storage, as `analyze` uses
    there). None for a spec without datasets."""
    if not spec.datasets:
        return None
    from analysis import prepare_probe, user_cache

    cache = user_cache() if is_uri(spec.storage_path) else Path(spec.storage_path) / ".cache"
    return prepare_probe([InfoGANConfig.from_dict(values) for values in spec.datasets], cache)


def trainable_of(spec: StudySpec, probe: Any = None) -> Any:
    """The trainable of the study's trials: their resources, records, checkpoint ranking and probe."""
    return with_trial_resources(
        cpus=spec.cpus_per_trial, gpus=spec.gpus_per_trial,
        experiment_path=spec.experiment_path, checkpoint_score=checkpoint_score(spec), probe=probe,
        prune=spec.pruned_by == "trial",
    )  # fmt: skip


def _loggers() -> list[tune.Callback]:
    """Tune's result loggers a study keeps: JSON always, TensorBoard when tensorboardX imports."""
    try:
        return [JsonLoggerCallback(), TBXLoggerCallback()]
    except ImportError:  # (Tune itself skips TensorBoard then)
        return [JsonLoggerCallback()]


@contextlib.contextmanager
def driver_settings() -> Iterator[None]:
    """`DRIVER_ENV` around a new study's fit (Tune reads these when the fit starts), except those
    the user set. A resumed study runs with Tune's defaults: it gets back the loggers it was
    launched with, and Tune adds the ones missing (a study launched before these settings gets
    all three back; one launched after also writes progress.csv from then on)."""
    added = {k: v for k, v in DRIVER_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def build_tuner(spec: StudySpec, param_space: dict[str, Any], *, reuse_actors: bool = True,
                callbacks: Sequence[tune.Callback] = (), stop: Any = None, probe: Any = None,
                trainable: Any = None, verbose: bool = False) -> tune.Tuner:  # fmt: skip
    """The Tuner of a new study. Reusing actors (every trial asks for the same resources) skips a
    process start and the torch import per trial; benchmarks/sweep_efficiency.py measures it with
    a timing callback. `stop`: Tune's stop criterion (a dict or a function), for tests;
    `trainable`: another trainable in the study's Tune set-up (benchmarks/driver_memory.py).
    Output: one live progress line (`StudyProgress`, a Tune callback) with Tune's own output off,
    or with `verbose` Tune's output as it comes. A tracked study adds Tune's MLflow callback
    (`study/tracking.py`). Tune saves the callbacks with the study, so `resume` keeps them."""
    tune_config = tune.TuneConfig(
        search_alg=_searcher(spec) if spec.kind == "search" else None,
        scheduler=_scheduler(spec, param_space),
        num_samples=1 if spec.pack else spec.num_samples,  # a packed sweep's samples are drawn into its packs
        max_concurrent_trials=spec.max_concurrent,
        trial_dirname_creator=trial_dirname,
        reuse_actors=reuse_actors,
    )
    return tune.Tuner(
        trainable or trainable_of(spec, probe), param_space=param_space, tune_config=tune_config,
        run_config=study_run_config(spec, callbacks=callbacks, stop=stop, verbose=verbose),
    )  # fmt: skip


def study_run_config(spec: StudySpec, *, callbacks: Sequence[tune.Callback] = (), stop: Any = None,
                     verbose: bool = False) -> tune.RunConfig:  # fmt: skip
    """A new study's RunConfig: where it is stored, failures retried, the checkpoints Tune keeps
    (ranked by the first objective; all of them when the trials prune their own), and its callbacks."""
    shown = [] if verbose else [StudyProgress(objective=spec.objectives[0] if spec.objectives else None)]
    return tune.RunConfig(
        name=spec.name,
        storage_path=spec.storage_path,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=None if spec.pruned_by == "trial" else CHECKPOINTS_KEPT,  # (see CHECKPOINTS_KEPT's comment)
            checkpoint_score_attribute=checkpoint_score(spec)[0],
            checkpoint_score_order=checkpoint_score(spec)[1],
        ),
        stop=stop,
        callbacks=[*callbacks, *shown, *_loggers(), *mlflow_callbacks(spec)],
        verbose=1 if verbose else 0,
    )


# ---------------------------------------------------------------------------------- entry points
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


class _NoTuneResumeHint(logging.Filter):
    """Drops Tune's hint to resume an interrupted run with `Tuner.restore(...)` (its Python API);
    the CLI prints its own `infogan-study resume` line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


def resume_command(spec: StudySpec, address: str | None) -> str:
    """The command line that continues the study."""
    return f"infogan-study resume {spec.name} --storage-path {spec.storage_path}" + (
        f" --address {address}" if address else ""
    )


@contextlib.contextmanager
def _tune_output(verbose: bool) -> Iterator[None]:
    """Tune's console output for the study: as Tune makes it with `verbose`; else none. Tune's
    newer output engine prints its experiment header and TensorBoard hint even at verbose=0, so
    outside --verbose the fit runs on its legacy engine (RAY_AIR_NEW_OUTPUT=0, Tune's documented
    switch), silent at verbose=0, unless the user set the switch. MLflow's store notices likewise."""
    quiet = not verbose and "RAY_AIR_NEW_OUTPUT" not in os.environ
    mlflow_log = logging.getLogger("mlflow")
    level = mlflow_log.level
    if quiet:
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        mlflow_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        if quiet:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
            mlflow_log.setLevel(level)


def _fit(tuner: tune.Tuner) -> tune.ResultGrid | None:
    """`tuner.fit()`; None when a second Ctrl-C (SIGINT) broke it off. Tune catches the first
    Ctrl-C itself: it saves its state, stops the trials and returns (see `_finish`). Once it has
    returned, further Ctrl-C are ignored until the study's table and resume line are printed
    (`_sigint_restored` puts the handler back after): one landing in Ray's shutdown would end the
    driver with a traceback and without the resume line."""
    tune_log = logging.getLogger("ray.tune.tune")
    hint = _NoTuneResumeHint()
    tune_log.addFilter(hint)
    try:
        return tuner.fit()
    except KeyboardInterrupt:
        return None
    finally:
        tune_log.removeFilter(hint)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_restored() -> Iterator[None]:
    """Puts back, on leaving, the SIGINT handler of before the study (`_fit` ignores SIGINT once
    Tune has returned)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _interrupted(spec: StudySpec, view: StudyView | None) -> bool:
    """Whether the study stopped before every trial ended: Tune's last saved state (written before
    it stops the trials of an interrupted run) has trials not yet started or not ended, or fewer
    trials than the study runs."""
    if view is None:
        return True
    unfinished = any(t.state in ("UNFINISHED", "PENDING") for t in view.trials)
    return unfinished or len(view.trials) < spec.trials


def _finish(spec: StudySpec, results: tune.ResultGrid | None, address: str | None) -> int:
    """Print the trial table (ranked by the study's first objective) and where things are; exit
    status 130 with the resume line if the study was interrupted (Ctrl-C), 1 if a trial errored."""
    try:
        view: StudyView | None = load_study(spec.experiment_path)
    except BadInputError:  # interrupted before the first trial started
        view = None
    interrupted = results is None or _interrupted(spec, view)
    if not interrupted and spec.kind == "search":  # (an interrupted search's RUNNING trials resume)
        orphans = fail_orphaned_optuna_trials(spec)
        if orphans:
            print(f"marked {orphans} Optuna trial(s) left RUNNING (interrupted driver or NaN objective) as FAIL")
    if view is not None:
        print(format_table(view, objectives=spec.objectives))
    print(f"results: {spec.experiment_path}")
    if interrupted:
        print(f"infogan-study: interrupted; continue with: {resume_command(spec, address)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if spec.kind == "search" and spec.optuna_storage is None:
        print(f"optuna study {spec.launch_name!r}: optuna-dashboard {spec.optuna_journal}")
    if spec.tracking == "mlflow":
        print(f"mlflow runs: mlflow ui --backend-store-uri {tracking_uri(spec)}")
    if results.num_errors:
        print(f"{results.num_errors} trial(s) errored; see the table above, fix, then "
              f"`{resume_command(spec, address)}` retries them", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def preflight(spec: StudySpec, param_space: dict[str, Any] | None, *, address: str | None) -> None:
    """Everything that can be refused before Ray starts, cheapest first: the scheduler, the
    address (reachable) or this machine (a trial fits), the trials' data (read once here: on a
    cluster, the driver must see the shared data_root too), on this machine each trial's network at
    its batch size against the free memory (as `train` checks it), and last, as opening it may
    create a journal file, a new search's Optuna storage."""
    if param_space is not None:
        _scheduler(spec, param_space)
    if starts_local_instance(address):
        check_local_fit(cpus=spec.cpus_per_trial, gpus=spec.gpus_per_trial)
    elif address not in (None, "auto"):
        probe_address(address, timeout_s=CONNECT_TIMEOUT_S / 3)
    check_trial_data(spec.datasets)
    if starts_local_instance(address) and param_space is not None:
        check_trial_memory(param_space, gpus=spec.gpus_per_trial)
    if spec.kind == "search" and param_space is not None:
        check_optuna_storage(spec)


def run_study(spec: StudySpec, param_space: dict[str, Any], *, address: str | None, announce: str = "",
              verbose: bool = False) -> int:  # fmt: skip
    """Start a new sweep or search (its arguments already checked) and wait for it. Nothing is
    written before Ray is connected; Ctrl-C ends it with the resume line and exit status 130."""
    preflight(spec, param_space, address=address)
    with _sigint_restored():
        with ray_session(address, verbose=verbose):
            probe = study_probe(spec)
            if announce:
                print(announce, flush=True)
            write_spec(spec)
            with _tune_output(verbose), driver_settings():
                results = _fit(build_tuner(spec, param_space, probe=probe, verbose=verbose))
        return _finish(spec, results, address)


def find_study(name: str, storage_path: str, *, restorable: bool = True) -> StudySpec:
    """The spec of an existing study (that Tune can restore, unless `restorable` is False), or a
    one-line error listing the known ones; rebased on where its folder is now (`plan.find_spec`)."""
    spec = find_spec(name, storage_path)
    if restorable and not tune.Tuner.can_restore(spec.experiment_path):
        known = known_studies(storage_path)
        raise BadInputError(f"no study named {name!r} in {storage_path} that Tune can restore (it has no saved Tune "
                            f"state; known: {', '.join(known)}); check --storage-path")  # fmt: skip
    return spec


def _cannot_restore(spec: StudySpec, err: BaseException) -> BadInputError:
    why = one_line(err)
    return BadInputError(
        f"Tune cannot restore study {spec.name}: its saved state in {spec.experiment_path} does not load ({why}), "
        f"as when the driver is stopped while Tune saves it; start the study again with a new --name "
        f"(`infogan-study analyze {spec.experiment_path}` still reads the trials that ran)"
    )


def check_restorable(spec: StudySpec) -> None:
    """Load Tune's saved state of the study the way `Tuner.restore` will, through Tune's public API
    (the trial table, then the search algorithm's state), so that a damaged state is a one-line
    error here rather than a study Tune silently starts over."""
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)  # it warns for every trial that has not reported yet
    try:
        ExperimentAnalysis(spec.experiment_path)
        if not is_uri(spec.experiment_path):  # (Tune copies a URI's state to the driver first)
            algorithm = _search_algorithm(spec)
            if algorithm.has_checkpoint(spec.experiment_path):
                algorithm.restore_from_dir(spec.experiment_path)
    except BadInputError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever fails to load, the study cannot be restored
        raise _cannot_restore(spec, err) from None
    finally:
        log.setLevel(level)


def resume_study(name: str, *, storage_path: str, address: str | None, verbose: bool = False) -> int:
    """Continue an interrupted study: finished trials stay, the rest resume from checkpoints.
    Tune restores the study's callbacks and output setting as launched; `verbose` shows Ray's logs."""
    spec = find_study(name, storage_path)
    preflight(spec, None, address=address)
    check_restorable(spec)
    with _sigint_restored():
        with ray_session(address, verbose=verbose):
            probe = study_probe(spec)
            try:
                tuner = tune.Tuner.restore(spec.experiment_path, trainable=trainable_of(spec, probe),
                                           resume_errored=True)  # fmt: skip
            except Exception as err:  # noqa: BLE001 - tuner.pkl unreadable: same answer
                raise _cannot_restore(spec, err) from None
            with _tune_output(verbose):
                results = _fit(tuner)
        return _finish(spec, results, address)
