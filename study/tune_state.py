"""Check (and, where possible, repair) Tune's experiment state before a resume.

Tune snapshots its state (the trial table `experiment_state-*.json`, the search algorithm's
`basic-variant-state-*.json` / `search_gen_state-*.json` / `searcher-state-*.pkl`) into a staging
folder on the driver, `/tmp/ray/session_*/artifacts/*/<name>/driver_artifacts/`, and then copies
it into the experiment folder. That copy is not atomic: a driver killed during it leaves a
truncated file. `Tuner.restore` then logs "Failed to restore the run state", starts the study over
and reruns trials with broken configs. So `resume` first loads every state file itself; a damaged
one is replaced by the intact copy from the staging folder when this machine still has it (a
local study, or the same head node), and otherwise the resume stops with a one-line error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ray import cloudpickle

from trainables.errors import BadInputError

PATTERNS = ("experiment_state-*.json", "basic-variant-state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")


def _readable(path: Path) -> bool:
    try:
        if path.name.startswith("experiment_state-"):
            json.loads(path.read_text())
        else:
            with path.open("rb") as f:
                cloudpickle.load(f)
        return True
    except Exception:  # noqa: BLE001 - truncated JSON or pickle: any decoding error
        return False


def damaged_files(experiment: Path) -> list[Path]:
    """State files of the experiment folder that do not load."""
    return [p for pattern in PATTERNS for p in sorted(experiment.glob(pattern)) if not _readable(p)]


def _staged_copies(name: str, file_name: str) -> list[Path]:
    """Tune's staging copies of a state file on this machine, newest first."""
    ray_tmp = Path(os.environ.get("RAY_TMPDIR", tempfile.gettempdir())) / "ray"
    copies = ray_tmp.glob(f"session_*/artifacts/*/{name}/driver_artifacts/{file_name}")
    return sorted(copies, key=lambda p: p.stat().st_mtime, reverse=True)


def repair(experiment: Path) -> list[str]:
    """Replace damaged state files by intact staging copies; returns the repaired file names.
    Raises BadInputError for a damaged file without an intact copy."""
    repaired = []
    for damaged in damaged_files(experiment):
        intact = next((c for c in _staged_copies(experiment.name, damaged.name) if _readable(c)), None)
        if intact is None:
            raise BadInputError(
                f"{damaged} is damaged (the driver was stopped while Tune was writing it) and this machine "
                "has no intact copy; resume on the machine that ran the study, or start it again"
            )
        tmp = damaged.with_name(f".{damaged.name}.repair")
        shutil.copyfile(intact, tmp)
        os.replace(tmp, damaged)
        repaired.append(damaged.name)
    return repaired
