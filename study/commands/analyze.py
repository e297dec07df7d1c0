"""`infogan-study analyze EXPERIMENT`: score every trial of a Tune experiment into parquet.

Writes trials.parquet, curves.parquet, selection.parquet and traversals.parquet (`analysis.schema`) into the
experiment folder or --out. An experiment at a URI (`--storage-path s3://...`) is scored in a
temporary local copy (`analysis.storage`) and the tables are uploaded into it (or to --out, a
folder or a URI), with the classifiers cached in ~/.cache/infogan-study as the study's driver
does. Scoring runs in this process by default, in --workers N local
processes, or as one Ray task per trial (1 CPU each) on the cluster at --address (probed first,
like the study commands': a wrong address is one line within seconds). An experiment whose
checkpoints are all gone is refused (exit 2), and so is one none of whose trials saved a
checkpoint (every trial errored or diverged before its first): there is nothing to score. One that
lost some gets a warning on stderr. A study tracked in MLflow (`sweep --tracking mlflow`) gets
each trial's scores in its run too (`study/tracking.py`), read back from trials.parquet.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any

from trainables.errors import BadInputError

NAME = "analyze"
HELP = "score every trial of a Tune experiment into parquet (trials, curves, selection, traversals)"
EPILOG = (
    "exit status: 0 scored (a study tracked with --tracking mlflow also gets the scores in its MLflow runs); "
    "2 bad input or nothing to score (one line on stderr, nothing written); 130 interrupted"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "experiment", help="the Tune experiment folder or URI (<storage_path>/<name>, e.g. s3://b/results/x)"
    )
    p.add_argument("--out", metavar="DIR|URI", help="write the parquet files here (default: the experiment folder)")
    p.add_argument("--checkpoint", choices=("final", "best"), default="final",
                   help="score each trial's final checkpoint, or its best by the study's metric (its first "
                        "objective, which the trials kept their best checkpoints by) (default final)")  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help="a few hundred samples per score instead of the published protocols (noisy; DCI and "
                        "Inception FID skipped): for a first look, tests and benchmarks")  # fmt: skip
    p.add_argument("--address", metavar="ADDR",
                   help="score on a Ray cluster: auto, ray://host:port or local (a task per trial, 1 CPU)")  # fmt: skip
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="score in N local processes (default 0: in this process)")  # fmt: skip
    p.add_argument("--no-selection", action="store_true",
                   help="skip the population's label-free signals (ModelCentrality: FactorVAE over every pair of "
                        "models; agreement between seeds); selection.parquet is then empty")  # fmt: skip
    p.add_argument("--centrality-max-models", type=int, default=16, metavar="M",
                   help="at most M models in the population that ModelCentrality compares (its cost grows as "
                        "M^2; the most balanced candidates first) (default 16)")  # fmt: skip
    p.add_argument("--label-free-only", action="store_true",
                   help="use no labels: only the label-free selection signals (for data without labels); the "
                        "report then ranks by them and says so")  # fmt: skip
    p.add_argument("--data-root", metavar="DIR", help="read datasets from DIR instead of each trial's data_root")
    p.add_argument("--device", default="cpu", help="score on cpu, cuda or auto (not with --address) (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.workers < 0:
        raise BadInputError(f"--workers {args.workers}: pass 0 (this process) or more")
    if args.workers and args.address:
        raise BadInputError("--workers and --address both given: pick local processes or a Ray cluster")
    if args.device not in ("cpu", "cuda", "auto"):
        raise BadInputError(f"--device {args.device}: use cpu, cuda or auto")
    if args.address and args.address not in ("auto", "local"):
        from study.ray_runtime import CONNECT_TIMEOUT_S, probe_address

        probe_address(args.address, timeout_s=CONNECT_TIMEOUT_S / 3)  # a wrong address: one line, in seconds

    from analysis import is_uri, local_copy, user_cache
    from trainables.loop import resolve_device

    device = resolve_device(args.device).type
    if device == "cuda" and args.address:
        raise BadInputError("--device cuda with --address: Ray tasks request CPUs only; score on the cluster's CPUs")
    if not is_uri(args.experiment):
        return _analyze(args, args.experiment, out=args.out, device=device)
    if args.address and args.address != "local":
        raise BadInputError(f"--address {args.address} with an experiment at {args.experiment}: the tasks would "
                            "read this machine's temporary copy; score here (--workers N) or where the storage is "
                            "mounted")  # fmt: skip
    with local_copy(args.experiment) as folder:
        local_out = args.out if args.out and not is_uri(args.out) else None
        return _analyze(args, folder, out=local_out, device=device, cache=user_cache(),
                        upload_to=None if local_out else args.out or args.experiment)  # fmt: skip


def _analyze(args: argparse.Namespace, experiment_path: Any, *, out: str | None, device: str,
             cache: str | None = None, upload_to: str | None = None) -> int:  # fmt: skip
    from analysis import FULL, QUICK, analyze_experiment, read_experiment, serial_map, upload

    experiment = read_experiment(experiment_path)  # a bad folder is refused before Ray is connected
    _check_something_to_score(experiment)
    progress = not args.quiet
    start = time.perf_counter()
    with _mapper(args, progress) as mapper:
        files = analyze_experiment(
            experiment, out=out, checkpoint=args.checkpoint, counts=QUICK if args.quick else FULL,
            centrality_max_models=args.centrality_max_models, selection=not args.no_selection,
            labels=not args.label_free_only,
            data_root=args.data_root, device=device, cache=cache,
            mapper=mapper or (lambda fn, items, desc: serial_map(fn, items, desc, progress=progress)),
        )  # fmt: skip
    where = str(files.trials.parent)
    if upload_to is not None:
        upload(files.paths, upload_to)
        where = upload_to
    print(f"analyzed {files.num_trials} trials ({files.num_scored} scored) in {time.perf_counter() - start:.1f} s "
          f"-> {where}: {', '.join(p.name for p in files.paths)}")  # fmt: skip
    _log_to_mlflow(experiment_path, files.trials)
    if files.lost_checkpoints:
        print(f"infogan-study: warning: {len(files.lost_checkpoints)} trial(s) saved checkpoints that are no longer "
              f"on disk, so they have no scores: {', '.join(files.lost_checkpoints)}", file=sys.stderr)  # fmt: skip
    return 0


def _check_something_to_score(experiment: Any) -> None:
    """Refuse, before anything is written, an experiment none of whose trials has a checkpoint to
    score (every one errored, or diverged, before its first); lost checkpoints say so themselves
    (`analysis.collect.check_scorable`)."""
    if any(t.checkpoints_saved for t in experiment.trials):
        return
    if any(t.config is not None and t.choose_checkpoint("final") for t in experiment.trials):
        return
    counts: dict[str, int] = {}
    for t in experiment.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    states = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    raise BadInputError(f"nothing to score in {experiment.path}: none of its {len(experiment.trials)} trial(s) saved "
                        f"a checkpoint ({states}); `infogan-study status {experiment.name}` shows why")  # fmt: skip


def _log_to_mlflow(experiment_path: Any, trials_parquet: Any) -> None:
    """A study launched with --tracking mlflow: each trial's scores into its MLflow run."""
    from study.plan import read_spec

    spec = read_spec(str(experiment_path))
    if spec is None or spec.tracking != "mlflow":
        return
    import dataclasses
    from pathlib import Path

    from study.tracking import log_scores, tracking_uri

    folder = Path(experiment_path)  # where the study is now (its SQLite store moved with it)
    spec = dataclasses.replace(spec, storage_path=str(folder.parent), name=folder.name, launched_as=spec.launch_name)
    try:
        logged = log_scores(spec, trials_parquet)
    except BadInputError as err:  # the parquet files are written: they stand, and the runs lack the scores
        print(f"infogan-study: warning: {err}", file=sys.stderr)
        return
    print(f"mlflow: scores of {logged} trial(s) added to their runs at {tracking_uri(spec)}")


Mapper = Callable[[Callable[[Any], Any], Sequence[Any], str], list[Any]]


@contextlib.contextmanager
def _mapper(args: argparse.Namespace, progress: bool) -> Iterator[Mapper | None]:
    """A parallel map for --workers or --address (None: in-process), torn down at the end."""
    if args.address:
        yield _ray_mapper(args.address, progress)
    elif args.workers:
        from analysis import one_thread_worker

        context = multiprocessing.get_context("spawn")  # no fork after torch has started its threads
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=context, initializer=one_thread_worker) as pool:
            yield lambda fn, items, desc: _pool_map(pool, fn, items, desc, progress)
    else:
        yield None


def _pool_map(pool: Executor, fn: Callable[[Any], Any], items: Sequence[Any], desc: str, progress: bool) -> list[Any]:
    from concurrent.futures.process import BrokenProcessPool

    from tqdm.auto import tqdm

    futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
    results: list[Any] = [None] * len(items)
    try:
        for future in tqdm(
            as_completed(futures), total=len(items), desc=desc, unit="model", disable=not progress or not items
        ):
            results[futures[future]] = future.result()
    except BrokenProcessPool:
        raise BadInputError("a scoring process died (out of memory?); retry with fewer --workers") from None
    return results


def _ray_mapper(address: str, progress: bool) -> Mapper:
    """One Ray task per item (1 CPU); the cluster must run this project's environment. Ray starts
    on the first map (a HOST:PORT or ray:// address was probed before anything else)."""

    def map_(fn: Callable[[Any], Any], items: Sequence[Any], desc: str) -> list[Any]:
        import ray
        from tqdm.auto import tqdm

        _connect(ray, address)
        remote = ray.remote(num_cpus=1)(fn)
        refs = [remote.remote(item) for item in items]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        with tqdm(total=len(refs), desc=desc, unit="model", disable=not progress or not refs) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
                for ref in done:
                    results[index[ref]] = ray.get(ref)
                if done:
                    bar.update(len(done))
        return results

    return map_


def _connect(ray: Any, address: str) -> None:
    """ray.init once (a no-op when this process is already connected)."""
    try:
        ray.init(address=address, ignore_reinit_error=True, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BadInputError(
            f"--address {address}: no Ray cluster there ({reason}); "
            "start one with `ray start --head` or leave out --address"
        ) from None
