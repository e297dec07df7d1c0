"""The Ray Tune adapters of the Ray-free training core: a thin function trainable from a trial's
config to `trainables.loop.train` (one run) or `trainables.packed.train_packed` (a pack of runs,
`sweep --pack`), and the trial's record (`trainables/trial_record.py`) kept beside Tune's files.

Nothing else in `trainables` imports Ray; everything here depends on the core, never the reverse.
- `trainable.py`: `infogan_trainable` and `with_trial_resources` (what the launcher hands Tune).
- `report.py`: each report of the loop as `tune.report(metrics, checkpoint=...)`, with the record
  written around it.
"""

from __future__ import annotations

from trainables.tune.report import KEY_METRICS, STOPPED_BY_TUNE
from trainables.tune.trainable import cpu_share, infogan_trainable, with_trial_resources

__all__ = ["KEY_METRICS", "STOPPED_BY_TUNE", "cpu_share", "infogan_trainable", "with_trial_resources"]
