"""Checking where a command will write, before it writes anything.

A refused command leaves nothing behind, not even an empty folder: `check_writable` tries a
temporary file in the deepest folder of the destination that exists already (the one the
command would create its folders in) and removes it again. The command creates its folders when
it first writes. Trying is the only reliable test: permission bits say nothing about read-only
mounts, and nothing at all to root.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trainables.errors import BadInputError

# The file in a checkpoint folder (trainables/checkpoint.py), here so that naming it imports no torch.
CHECKPOINT_FILENAME = "checkpoint.pt"


def nearest_existing(path: Path) -> Path:
    """`path` if it exists, else its deepest existing parent."""
    path = Path(os.path.abspath(path.expanduser()))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | Path, *, what: str, fix: str) -> None:
    """Raise a one-line BadInputError ("{what} is not writable (reason: the folder tried); {fix}")
    unless files can be created in the folder `path` (created later if missing); nothing is left
    behind."""
    base = nearest_existing(Path(path))
    try:
        if not base.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(base))
        fd, probe = tempfile.mkstemp(dir=base, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise BadInputError(f"{what} is not writable ({reason}: {base}); {fix}") from None
