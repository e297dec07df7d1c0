"""Errors a user can fix.

`BadInputError` carries a one-line message that names the problem and the fix. The CLI prints it
as `infogan-study: error: <message>` and exits with status 2; library callers (the Tune trainable,
the analysis) read the message as the reason.
"""

from __future__ import annotations


class BadInputError(ValueError):
    """Invalid input from the user: an unknown or out-of-range setting, unreadable data, etc."""
