"""`infogan-study sweep SPACE --dataset ...`: a grid or random sweep over a named space with Tune."""

from __future__ import annotations

import argparse

from study.options import EXIT_STATUS, TENSORBOARD, add_launch_arguments

NAME = "sweep"
HELP = "run a grid/random sweep over a search space with Ray Tune (ASHA early stopping optional)"
EPILOG = f"{EXIT_STATUS}. {TENSORBOARD}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", metavar="SPACE", help="a space from `infogan-study spaces`, or a .py file")
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="replicate every configuration over N seeds: 0..N-1, or S..S+N-1 with --seed-start",
    )
    parser.add_argument("--seed-start", type=int, metavar="S", help="the first seed of --seeds (default 0)")
    parser.add_argument("--metric", metavar="METRIC[:max|min]",
                        help="a metric the trials report: ASHA stops on it, each trial keeps its best "
                             "checkpoints by it, and the final table ranks the trials by its last value "
                             "(default gen/cat_acc:max where the dataset has an evaluator, e.g. mnist, "
                             "basicprop-line; else mi/cat:max)")  # fmt: skip
    parser.add_argument("--pack", type=int, metavar="K",
                        help="train up to K compatible configurations (same architecture, data, batch, steps; "
                             "they may differ in seed, lambda_info, cont_weight, instance noise, learning rates "
                             "and betas) as one network per Tune trial; each stays a trial in status, analyze and "
                             "the report. Not with --scheduler asha (it stops trials one by one) nor "
                             "--tracking")  # fmt: skip
    add_launch_arguments(parser, kind="sweep")


def run(args: argparse.Namespace) -> int:
    from study.options import describe_plan, plan_from_args

    spec, param_space = plan_from_args(
        args,
        kind="sweep",
        space=args.space,
        seeds=args.seeds,
        seed_start=args.seed_start,
        objectives=[args.metric] if args.metric else None,
        pack=args.pack,
    )
    if args.dry_run:
        print(describe_plan(spec, param_space))
        return 0
    from study.launcher import run_study

    return run_study(spec, param_space, address=args.address, announce=describe_plan(spec, param_space),
                     verbose=args.verbose)  # fmt: skip
