"""`infogan-study`: one console entry point with subcommands.

Each subcommand is a module in `study/commands/` that defines `NAME`, `HELP`, `EPILOG` (its exit
statuses, shown under its `--help`), `add_arguments(parser)` and `run(args) -> int`. Modules are
found by listing the package, so a new command is a new file. Every command module is imported to
build the parser, so none imports torch, Ray or Optuna at module level: `run` checks its arguments
first and imports what it needs after (`tests/test_cli_train.py` and
`tests/study/test_study_bad_input.py` hold the commands to that). `BadInputError` from anywhere
becomes one line on stderr and exit 2; Ctrl-C exit status 130 (`sweep`, `search` and `resume`
also print the `infogan-study resume` line that continues the study).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
from collections.abc import Sequence

import study.commands
from trainables.errors import BadInputError

# The order commands are listed in `--help`; commands not named here follow alphabetically.
ORDER = ("demo", "train", "spaces", "sweep", "search", "resume", "status", "list", "analyze", "report")
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


def _command_modules() -> list:
    names = [m.name for m in pkgutil.iter_modules(study.commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return [importlib.import_module(f"study.commands.{n}") for n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infogan-study",
        description=(
            "Hyperparameter studies of InfoGAN on Ray Tune and Optuna: which configurations disentangle, and why."
        ),
        epilog="exit status: 0 done, 2 bad input (one line on stderr, nothing written), 130 interrupted; "
        "each command's --help says its own",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP, epilog=module.EPILOG)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. `argv` None: this process's command line (the program's
    entry point), which also keeps Ctrl-C from breaking into the interpreter's exit once a command
    was interrupted (Ray's exit handlers still shut its processes down, and a traceback from one of
    them would follow the resume line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args._run(args) or 0)
    except BadInputError as err:
        print(f"infogan-study: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("infogan-study: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED and argv is None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(main())
