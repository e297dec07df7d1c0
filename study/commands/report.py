"""`infogan-study report EXPERIMENT`: one self-contained HTML page (verdict, ranking with success
rates, every seed, hyperparameters, importance, MI curves, Pareto front, traversals, failures and
flags, label-free pick) from the parquet
tables of `infogan-study analyze`. Prints the path of the page.

An experiment at a URI (s3://...) is read from a temporary local copy of its tables
(`analysis.storage`); the page is written on this machine, to -o or ./NAME-report.html."""

from __future__ import annotations

import argparse
import contextlib
import posixpath
from collections.abc import Iterator
from pathlib import Path

NAME = "report"
HELP = "write an HTML report (opens offline) of an analysed experiment; run `analyze` first"
EPILOG = (
    "exit status: 0 written (its path on stdout); 2 bad input: no analysed experiment, damaged parquet files, "
    "an unwritable -o (one line on stderr, nothing written)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", metavar="EXPERIMENT", help="an experiment folder or URI, after `analyze`")
    p.add_argument("-o", "--out", metavar="FILE",
                   help="output HTML file (default EXPERIMENT/report.html; ./NAME-report.html for a URI)")  # fmt: skip
    p.add_argument("--no-images", dest="images", action="store_false",
                   help="leave out the latent traversal grids (drawn by analyze)")  # fmt: skip
    p.add_argument("--success-threshold", type=float, default=0.9, metavar="ACC",
                   help="a seed succeeds when its generator-side accuracy gen/cat_acc reaches ACC: the ranking's "
                        "success rates and the verdict use it (default 0.9)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from analysis import is_uri, write_report

    if not is_uri(args.experiment):
        print(write_report(args.experiment, args.out, images=args.images, success_threshold=args.success_threshold))
        return 0
    out = Path(args.out) if args.out else Path.cwd() / f"{posixpath.basename(args.experiment.rstrip('/'))}-report.html"
    with _local_tables(args.experiment) as folder:
        print(write_report(folder, out, images=args.images, success_threshold=args.success_threshold))
    return 0


@contextlib.contextmanager
def _local_tables(uri: str) -> Iterator[Path]:
    """A local copy of the experiment's top-level parquet tables (the traversal grids among them:
    `analyze` draws them, so no checkpoint is fetched)."""
    from analysis import local_copy

    tables = lambda rel: "/" not in rel and rel.endswith(".parquet")  # noqa: E731
    with local_copy(uri, wanted=tables, missing=f"run `infogan-study analyze {uri}` first") as folder:
        yield folder
