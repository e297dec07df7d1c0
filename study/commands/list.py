"""`infogan-study list [--storage-path DIR]`: the studies under a storage path, one line each.

Each study folder (one holding `infogan-study.json`) with its kind, space, trials by state,
objective and last change (the newest file among its record, Tune's state files and its trials'
records and reports). States are read from the trials' own records (`analysis.tune_folder`, no
Ray), in `status`'s words: COMPLETED, DIVERGED, STOPPED, ERROR, UNFINISHED (started, not ended:
running now or interrupted) and PENDING (not started: the study's trial count less the started
ones). `status NAME` adds Tune's view of one study. A study whose record is damaged is listed as
such, and the others still are.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from study.options import DEFAULT_STORAGE
from trainables.errors import BadInputError

NAME = "list"
HELP = "list the studies under a storage path: kind, trials by state, objective, last change"
EPILOG = "exit status: 0 listed (also when there are none); 2 bad input (one line on stderr)"
STATES = ("COMPLETED", "DIVERGED", "STOPPED", "ERROR", "UNFINISHED", "PENDING")
_RECORD_STATE = {"completed": "COMPLETED", "diverged": "DIVERGED", "stopped": "STOPPED", "error": "ERROR"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-path", default=DEFAULT_STORAGE, metavar="DIR",
                   help="the folder the studies were written to (default %(default)s)")  # fmt: skip


def _last_change(folder: Path) -> float:
    """The newest modification time among the study's top files and its trials' record and reports."""
    files = [p for p in folder.iterdir() if p.is_file()]
    files += [p for name in ("infogan-trial.json", "result.json") for p in folder.glob(f"*/{name}")]
    return max((p.stat().st_mtime for p in files), default=folder.stat().st_mtime)


def _trial_counts(folder: Path, planned: int) -> dict[str, int]:
    from analysis import read_experiment

    counts = dict.fromkeys(STATES, 0)
    try:
        trials = read_experiment(folder).trials
    except BadInputError:  # no trial started yet
        trials = []
    for t in trials:
        counts[_RECORD_STATE.get(t.run_status or t.status, "UNFINISHED")] += 1
    counts["PENDING"] += max(0, planned - len(trials))
    return counts


def study_rows(storage: Path) -> list[list[str]]:
    """[name, kind, space, trials by state, objective, last change] per study, by name."""
    from study.plan import SPEC_FILE, read_spec

    rows = []
    for folder in sorted(p.parent for p in storage.glob(f"*/{SPEC_FILE}")):
        changed = time.strftime("%Y-%m-%d %H:%M", time.localtime(_last_change(folder)))
        try:
            spec = read_spec(str(folder))
        except BadInputError:
            rows.append([folder.name, "?", "?", f"its {SPEC_FILE} is damaged", "?", changed])
            continue
        assert spec is not None  # the glob found its record
        counts = _trial_counts(folder, spec.trials)
        total = sum(counts.values())
        by_state = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        objective = ", ".join(map(str, spec.objectives))
        rows.append([folder.name, spec.kind, spec.space, f"{total}: {by_state}" if by_state else "0", objective,
                     changed])  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> int:
    if "://" in args.storage_path:
        raise BadInputError(f"--storage-path {args.storage_path}: `list` reads a local folder; "
                            "`infogan-study status NAME --storage-path URI` reads one study there")  # fmt: skip
    storage = Path(args.storage_path).expanduser().resolve()
    if storage.exists() and not storage.is_dir():
        raise BadInputError(f"--storage-path {storage} is a file; pass the folder the studies were written to")
    rows = study_rows(storage) if storage.is_dir() else []
    if not rows:
        print(f"no studies in {storage}")
        return 0
    header = ["study", "kind", "space", "trials", "objective", "last change"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'} in {storage}")
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0
