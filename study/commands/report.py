"""`infogan-study report EXPERIMENT`: one self-contained HTML page (ranking, hyperparameters,
importance, MI curves, Pareto front, traversals, failures, label-free pick) from the parquet
tables of `infogan-study analyze`. Prints the path of the page."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "write an HTML report (opens offline) of an analysed experiment; run `analyze` first"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", metavar="EXPERIMENT", help="an experiment folder, after `analyze`")
    p.add_argument("-o", "--out", metavar="FILE", help="output HTML file (default EXPERIMENT/report.html)")
    p.add_argument("--no-images", dest="images", action="store_false",
                   help="skip the latent traversal grids (the only part that loads checkpoints)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    print(write_report(args.experiment, args.out, images=args.images))
    return 0
