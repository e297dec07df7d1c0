"""Command-line options shared by `sweep`, `search`, `resume` and `status`, and their checking.

`plan_from_args` turns a parsed `sweep`/`search` command line into a checked `StudySpec` and param
space without starting anything, so every bad input is a one-line error with exit status 2. It
checks in two rounds: first what the flags alone decide (ranges, names, `--set` fields and values,
the objective's syntax, the storage path, the tracking options), importing nothing heavy, so a
typo is answered at once; then, after importing Ray's search spaces (and torch), the space and
every trial's config. Adding the options imports nothing heavy either (the CLI builds every
parser for every command). `describe_plan` is what `--dry-run` prints.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from trainables.config import check_value, coerce_value, parse_set_options
from trainables.errors import BadInputError

if TYPE_CHECKING:
    from study.plan import StudySpec

DEFAULT_STORAGE = "./results"
SEARCH_SAMPLES = 20  # a search's default: TPE's 10 random start-up trials, then 10 it proposes
TRACKING = ("none", "mlflow")
EXIT_STATUS = (
    "exit status: 0 every trial ended (completed, diverged or stopped early); 1 a trial errored (the table says "
    "which; `resume` retries it); 2 bad input (one line on stderr, nothing started or written); 130 interrupted "
    "(Ctrl-C: the line that resumes the study is on stderr)"
)
TENSORBOARD = (
    "Tune also writes TensorBoard event files into each trial's folder: tensorboard --logdir STORAGE_PATH/NAME."
)


def add_location_arguments(p: argparse.ArgumentParser, *, address: bool = True) -> None:
    p.add_argument(
        "--storage-path",
        default=DEFAULT_STORAGE,
        metavar="DIR|URI",
        help="where studies live: a folder (shared on a cluster) or s3://... (default %(default)s)",
    )
    if address:
        p.add_argument(
            "--address",
            default=None,
            metavar="auto|HOST:PORT|ray://HOST:PORT",
            help="Ray cluster to use (default: a local Ray with this machine's resources)",
        )


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """How a running study shows itself: one live progress line and the final table, or Tune's own
    output with --verbose."""
    p.add_argument("--verbose", action="store_true",
                   help="show Tune's own output (its tables, each trial's configuration) and the trials' logs; "
                        "default: one live progress line, then the table of trials (Ray keeps its logs and the trials' "
                        "output in its session folder, session_latest/logs under Ray's temp dir)")  # fmt: skip


def add_launch_arguments(p: argparse.ArgumentParser, *, kind: str) -> None:
    """Trial settings, scale, placement, tracking and output, shared by sweep and search."""
    g = p.add_argument_group("trial settings (shared by every trial)")
    g.add_argument("--dataset", required=True, help="dataset of every trial (e.g. basicprop-line, mnist)")
    g.add_argument("--steps", type=int, help="training steps per trial (default: the config's, 5000)")
    g.add_argument("--batch-size", type=int, help="batch size (default: the config's, 64)")
    g.add_argument("--data-root", help="dataset folder; on a cluster a path every node can read (default ./data)")
    g.add_argument("--set", dest="set_options", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other config field for every trial (repeatable), e.g. --set width=0.25 "
                        "(`infogan-study train --help-config` lists them)")  # fmt: skip
    g = p.add_argument_group("study")
    if kind == "search":
        g.add_argument("--num-samples", type=int, default=SEARCH_SAMPLES, metavar="N",
                       help="trials Optuna proposes (default %(default)s: the --startup-trials random ones, "
                            "then TPE's)")  # fmt: skip
    else:
        g.add_argument("--num-samples", type=int, default=1, metavar="N",
                       help="draws of a space with random values (each grid point N times, values sampled anew); "
                            "refused above 1 for a space with nothing random, whose repeats would be identical "
                            "trials: use --seeds (default %(default)s)")  # fmt: skip
    g.add_argument("--name", help="study name (default SPACE-DATASET-YYYYmmdd-HHMMSS)")
    g.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="C",
                   help="CPUs per trial, also torch's threads (default %(default)g)")  # fmt: skip
    g.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        metavar="G",
        help="GPUs per trial; fractions share a GPU, 0.25 runs four on one (default %(default)g)",
    )
    g.add_argument(
        "--max-concurrent",
        type=int,
        metavar="N",
        help="at most N trials at once (default: as many as the resources hold)",
    )
    g.add_argument(
        "--max-failures",
        type=int,
        default=2,
        metavar="N",
        help="restarts of a trial from its checkpoint after a crash or lost node (default %(default)s)",
    )
    g = p.add_argument_group("early stopping (Tune's ASHAScheduler; counted in reports, one per report_every steps)")
    g.add_argument(
        "--scheduler",
        choices=("asha", "none"),
        default="none",
        help="asha stops the trials that trail at each rung on the study's metric (default %(default)s)",
    )
    g.add_argument("--grace-period", type=int, metavar="R",
                   help="asha: reports every trial gets before it can be stopped (default: a ninth of a trial's "
                        "reports, at least 1)")  # fmt: skip
    g.add_argument(
        "--reduction-factor",
        type=float,
        metavar="F",
        help="asha: keep the best 1/F of the trials at each rung (default 3)",
    )
    g = p.add_argument_group("tracking and output")
    g.add_argument(
        "--tracking",
        choices=TRACKING,
        default="none",
        help="mlflow: every trial is an MLflow run (its config as params, every report as metrics; "
        "`analyze` adds the scores), through Ray Tune's MLflowLoggerCallback (default %(default)s)",
    )
    g.add_argument("--tracking-uri", metavar="URI",
                   help="the MLflow tracking store (default: sqlite:///STORAGE_PATH/NAME/mlflow.db, open it with "
                        "`mlflow ui --backend-store-uri sqlite:///STORAGE_PATH/NAME/mlflow.db`)")  # fmt: skip
    add_output_arguments(g)
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (trials or packs, resources per trial, objective, scheduler, storage, "
        "tracking) and exit: the arguments are checked, no data is read, Ray is not started",
    )
    add_location_arguments(p)


def trial_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--set options plus the named flags; naming a field twice is an error."""
    from study import plan

    values = parse_set_options(args.set_options)
    named = {"dataset": args.dataset, "steps": args.steps, "batch_size": args.batch_size, "data_root": args.data_root}
    for key, value in named.items():
        if value is None:
            continue
        if key in values:
            raise BadInputError(f"--{key.replace('_', '-')} and --set {key}=... both given; keep one")
        values[key] = coerce_value(key, value)
    for key, value in values.items():  # a setting out of its range is wrong for every trial: say it plainly
        check_value(key, value)
    return plan.common_settings(values)


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise BadInputError(f"--name {name!r}: use letters, digits and . _ + - (it becomes a folder name)")
    return name


def _check_objective_syntax(text: str, flag: str) -> None:
    """`METRIC[:max|min]` (the metric's existence is checked once the trials' datasets are known)."""
    metric, _, mode = text.partition(":")
    if not metric.strip():
        raise BadInputError(f"{flag} {text!r}: expected METRIC[:max|min], e.g. mi/cat:max")
    if mode.strip() and mode.strip().lower() not in ("max", "min"):
        raise BadInputError(f"{flag} {text!r}: the direction must be max or min")


def default_objective(reported: dict[str, str | None]) -> str:
    """What a study optimises unless told: the generator-side accuracy where every trial's data has
    an evaluator to report it (the score the analysis ranks by), else the MI bound."""
    return "gen/cat_acc:max" if "gen/cat_acc" in reported else "mi/cat:max"


def check_flags(args: argparse.Namespace, *, kind: str, objectives: list[str] | None, pack: int | None,
                seeds: int | None, seed_start: int | None) -> None:  # fmt: skip
    """What the flags alone decide, before any heavy import."""
    from study import plan
    from study.tracking import check_tracking

    plan.check_resources(cpus=args.cpus_per_trial, gpus=args.gpus_per_trial, num_samples=args.num_samples,
                         max_concurrent=args.max_concurrent, max_failures=args.max_failures)  # fmt: skip
    if args.name is not None:
        _check_name(args.name)
    if seeds is not None and seeds < 1:
        raise BadInputError(f"--seeds {seeds}: give a number of seeds >= 1")
    if seed_start is not None and (seeds is None or seed_start < 0):
        raise BadInputError(f"--seed-start {seed_start}: give it with --seeds N, and >= 0 (seeds S..S+N-1)")
    for flag, value in (("--grace-period", args.grace_period), ("--reduction-factor", args.reduction_factor)):
        if value is not None and args.scheduler != "asha":
            raise BadInputError(f"{flag} is ASHA's: add --scheduler asha, or drop {flag}")
    if args.grace_period is not None and args.grace_period < 1:
        raise BadInputError(f"--grace-period {args.grace_period}: must be >= 1 (reports)")
    if args.reduction_factor is not None and args.reduction_factor <= 1:
        raise BadInputError(f"--reduction-factor {args.reduction_factor:g}: must be > 1")
    plan.check_pack_option(pack, scheduler=args.scheduler)
    flag = "--metric" if kind == "sweep" else "--objective"
    for text in objectives or []:
        _check_objective_syntax(text, flag)
    trial_settings(args)
    plan.resolve_storage_path(args.storage_path)
    if args.name is not None:
        plan.check_new_study(plan.StudySpec(kind=kind, name=args.name, space="", objectives=(),
                                            storage_path=plan.normalize_storage_path(args.storage_path)))  # fmt: skip
    check_tracking(args.tracking, args.tracking_uri, storage_path=args.storage_path, pack=bool(pack))


def plan_from_args(args: argparse.Namespace, *, kind: str, space: str, seeds: int | None,
                   objectives: list[str] | None, seed_start: int | None = None,
                   **extra: Any) -> tuple[StudySpec, dict[str, Any]]:  # fmt: skip
    """A checked study spec and param space for `sweep` or `search`; starts and writes nothing.
    No objectives: `default_objective` of the study's datasets."""
    check_flags(args, kind=kind, objectives=objectives, pack=extra.get("pack"), seeds=seeds, seed_start=seed_start)

    from search_spaces import grid_size, load_space  # Ray's search spaces (and torch), once the flags are fine
    from study import plan

    space_name, param = load_space(space, seeds=seeds, seed_start=seed_start or 0)
    if kind == "search":
        plan.check_search_space(space_name, param)
    else:
        plan.check_repeats(space_name, param, args.num_samples)
    param_space = plan.build_param_space(space_name, param, trial_settings(args))
    plan.check_trial_configs(param_space)
    datasets = plan.trial_datasets(param_space)
    reported = plan.reported_metrics(datasets)
    flag = "--metric" if kind == "sweep" else "--objective"
    parsed = tuple(plan.parse_objective(o, reported, flag=flag) for o in objectives or [default_objective(reported)])
    storage = plan.resolve_storage_path(args.storage_path)
    pack = plan.check_pack_option(extra.pop("pack", None), scheduler=args.scheduler)
    spec = plan.StudySpec(
        kind=kind,
        name=_check_name(args.name or plan.default_name(space_name, str(param_space.get("dataset")))),
        storage_path=storage,
        space=space_name,
        objectives=parsed,
        scheduler=args.scheduler,
        num_samples=args.num_samples,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures,
        datasets=datasets,
        trials=grid_size(param_space) * args.num_samples,
        pack=pack,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor or 3.0,
        tracking=args.tracking,
        tracking_uri=args.tracking_uri,
        **extra,
    )
    plan.check_new_study(spec)
    if spec.scheduler == "asha":
        if len(spec.objectives) != 1:
            raise BadInputError("--scheduler asha stops trials on one metric; give a single objective")
        plan.asha_settings(spec, param_space)
    if pack:  # Tune's trials are the packs: {"members": [...]} each, every grid point and sample resolved here
        from ray import tune

        from trainables.trial_record import PACK_KEY

        packs = plan.pack_trials(param_space, num_samples=args.num_samples, pack=pack)
        param_space = {PACK_KEY: tune.grid_search(packs)}
    return spec, param_space


def describe_plan(spec: StudySpec, param_space: dict[str, Any]) -> str:
    """The study's plan, a few aligned lines: what runs, on what, optimising what, stopped how,
    written where and tracked where (what `--dry-run` prints and a study announces)."""
    from search_spaces import grid_size
    from study import plan
    from study.tracking import tracking_uri

    grid = grid_size(param_space)
    each = f"{spec.cpus_per_trial:g} CPU + {spec.gpus_per_trial:g} GPU"
    at_once = f"at most {spec.max_concurrent} at once" if spec.max_concurrent else "as many at once as resources hold"
    if spec.pack:
        trials = f"{spec.trials} trial(s) trained in {grid} pack(s) of up to {spec.pack}, each pack {each} ({at_once})"
    elif spec.kind == "search":
        trials = (f"{spec.trials} proposed by Optuna's TPE ({min(spec.startup_trials, spec.trials)} random start-up), "
                  f"each {each} ({at_once})")  # fmt: skip
    else:
        trials = f"{spec.trials} ({grid} grid point(s) x {spec.num_samples} sample(s)), each {each} ({at_once})"
    scheduler = "none (every trial runs its steps)"
    if spec.scheduler == "asha":
        max_t, grace, factor = plan.asha_settings(spec, param_space)
        scheduler = f"asha: max_t {max_t} reports, grace_period {grace}, reduction_factor {factor:g}"
    objectives = ", ".join(map(str, spec.objectives))
    tracking = f"mlflow at {tracking_uri(spec)}" if spec.tracking == "mlflow" else "none"
    rows = [
        ("trials", trials),
        ("space", spec.space),
        ("objective", f"{objectives} (ranks the table; each trial keeps its best checkpoints by the first)"),
        ("scheduler", scheduler),
        ("max failures", f"{spec.max_failures} restart(s) of a trial from its checkpoint"),
        ("storage", spec.experiment_path),
        ("tracking", tracking),
    ]
    return "\n".join([f"{spec.kind} {spec.name}:", *(f"  {key:<13}{value}" for key, value in rows)])
