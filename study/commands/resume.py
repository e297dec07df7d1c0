"""`infogan-study resume NAME`: continue an interrupted sweep or search where it stopped.

Tune restores the study from its own saved state (`Tuner.restore`). That state is loaded first,
through Tune's public API; if it does not load (a driver stopped while Tune was saving it), the
answer is one line and exit status 2, with what to do, instead of Tune quietly starting the study
over. Ctrl-C stops it again with the same resume line and exit status 130, as in `sweep`. The
study is looked up (its record read) before Ray, torch and Optuna are imported, so a wrong name
is answered at once."""

from __future__ import annotations

import argparse

from study.options import EXIT_STATUS, add_location_arguments, add_output_arguments

NAME = "resume"
HELP = "continue an interrupted sweep or search (finished trials stay; others resume from checkpoints)"
EPILOG = EXIT_STATUS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the study's name (its folder under --storage-path)")
    add_location_arguments(parser)
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from study.plan import find_spec, normalize_storage_path

    storage_path = normalize_storage_path(args.storage_path)
    find_spec(args.name, storage_path)  # a wrong name or a damaged record: one line, before the heavy imports

    from study.launcher import resume_study

    return resume_study(args.name, storage_path=storage_path, address=args.address, verbose=args.verbose)
