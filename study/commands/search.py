"""`infogan-study search --dataset ... --objective ...`: Optuna TPE search driven by Ray Tune.

One objective or several (multi-objective TPE). The Optuna study is persisted in the experiment
folder (a journal file; `--optuna-storage URL` for a database) so optuna-dashboard can open it and
`infogan-study resume` continues the same study with the same sampler.
"""

from __future__ import annotations

import argparse

from study.options import EXIT_STATUS, TENSORBOARD, add_launch_arguments
from trainables.errors import BadInputError

NAME = "search"
HELP = "run an Optuna TPE search (one or several objectives) through Ray Tune"
EPILOG = f"{EXIT_STATUS}. {TENSORBOARD}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="optuna", help="space with distributions (default %(default)s)")
    parser.add_argument("--objective", action="append", metavar="METRIC[:max|min]",
                        help="a metric the trials report, to optimise (repeat for multi-objective); the final table "
                             "ranks the trials by the first (default gen/cat_acc:max where the "
                             "dataset has an evaluator, e.g. mnist, basicprop-line; else mi/cat:max)")  # fmt: skip
    parser.add_argument("--optuna-storage", metavar="URL|FILE",
                        help="database URL or journal file (default: optuna.journal in the study folder)")  # fmt: skip
    parser.add_argument(
        "--startup-trials", type=int, default=10, metavar="N", help="TPE's random start-up trials (default %(default)s)"
    )
    parser.add_argument("--pack", type=int, metavar="K",
                        help="not for a search: TPE proposes one configuration per trial, each trained alone "
                             "(`sweep --pack K` packs a grid or random space)")  # fmt: skip
    add_launch_arguments(parser, kind="search")


def run(args: argparse.Namespace) -> int:
    from study.options import describe_plan, plan_from_args

    if args.pack is not None:
        raise BadInputError(
            "--pack is for `sweep`: a search keeps one configuration per trial (TPE proposes them "
            "one at a time); use `infogan-study sweep SPACE --pack K` for a grid or random space"
        )
    if args.startup_trials < 0:
        raise BadInputError(f"--startup-trials {args.startup_trials}: must be >= 0")
    objectives = args.objective
    if objectives and len({o.split(":")[0] for o in objectives}) != len(objectives):
        raise BadInputError("the same --objective metric is given twice")
    spec, param_space = plan_from_args(
        args, kind="search", space=args.space, seeds=None, objectives=objectives,
        optuna_storage=args.optuna_storage, startup_trials=args.startup_trials,
    )  # fmt: skip
    if args.dry_run:
        print(describe_plan(spec, param_space))
        return 0
    from study.launcher import run_study

    return run_study(spec, param_space, address=args.address, announce=describe_plan(spec, param_space),
                     verbose=args.verbose)  # fmt: skip
