"""`infogan-study spaces`: list the named search spaces with their one-line descriptions."""

from __future__ import annotations

import argparse

NAME = "spaces"
HELP = "list the named search spaces"
EPILOG = "exit status: 0 listed; 2 a space module that does not load (one line on stderr)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from search_spaces import describe_spaces

    del args
    spaces = describe_spaces()
    width = max(len(name) for name, _ in spaces)
    for name, description in spaces:
        print(f"{name:<{width}}  {description}")
    return 0
