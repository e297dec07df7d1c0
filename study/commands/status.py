"""`infogan-study status NAME`: the table of a study's trials and their states, from the trials'
records and Tune's public view of the study (`study/status.py`), ranked by the study's first
objective; Ray is not started. The study is looked up before Ray is imported."""

from __future__ import annotations

import argparse

from study.options import add_location_arguments

NAME = "status"
HELP = "print a study's trials, their state and last metrics"
EPILOG = "exit status: 0 printed; 2 bad input (one line on stderr: no such study, or its record is damaged)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the study's name (its folder under --storage-path)")
    add_location_arguments(parser, address=False)


def run(args: argparse.Namespace) -> int:
    from study.plan import find_spec, normalize_storage_path

    spec = find_spec(args.name, normalize_storage_path(args.storage_path))

    from study.status import format_table, load_study

    rank = f"; best {spec.objectives[0]} first" if spec.objectives else ""
    print(f"{spec.kind} {spec.name} ({spec.space}) in {spec.experiment_path}{rank}")
    print(format_table(load_study(spec.experiment_path), objectives=spec.objectives))
    return 0
