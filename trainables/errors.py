"""Errors a user can fix, and any error as one line.

`BadInputError` carries a one-line message that names the problem and the fix. The CLI prints it
as `infogan-study: error: <message>` and exits with status 2; library callers (the Tune trainable,
the analysis) read the message as the reason. `one_line` is how an error that was caught is
recorded or shown beside other output (a trial record's reason, a score's note, `status`).
"""

from __future__ import annotations


class BadInputError(ValueError):
    """Invalid input from the user: an unknown or out-of-range setting, unreadable data, etc."""


def one_line(err: BaseException, *, limit: int | None = 200) -> str:
    """'Type: first non-empty line of the message', cut to `limit` characters ('...' marks a cut;
    None: never cut)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
