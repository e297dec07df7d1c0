"""Kept for the saved state of studies started before the Tune adapters moved to `trainables.tune`.

Tune pickles the launcher's `trial_dirname_creator` by reference into a study's saved state
(tuner.pkl and its trial table), so `infogan-study resume` of such a study imports
`trainables.tune_trainable.trial_dirname`. It lives in `trainables.trial_record` now.
"""

from __future__ import annotations

from trainables.trial_record import trial_dirname

__all__ = ["trial_dirname"]
