"""Which configurations disentangle: scoring a study's checkpoints into parquet tables
(`collect`, `scoring`, `selection`, `metrics`), read from the experiment folder
(`tune_folder`), and the Plotly report built from those tables alone (`report`).

The public surface is `__all__`: what `study` (and a script of yours) imports from `analysis`.
Each name is loaded from its module when first used, so `from analysis import read_experiment`
(`status`) imports neither torch nor scikit-learn nor Plotly.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module it lives in.
_HOMES = {
    "CheckpointInfo": "analysis.tune_folder",
    "Experiment": "analysis.tune_folder",
    "FLAG_COLUMNS": "analysis.schema",
    "FULL": "analysis.scoring",
    "PROBE_METRICS": "analysis.evaluators",
    "QUICK": "analysis.scoring",
    "SCORE_COLUMNS": "analysis.schema",
    "TrialRecord": "analysis.tune_folder",
    "analyze_experiment": "analysis.collect",
    "dataset_for": "analysis.scoring",
    "download": "analysis.storage",
    "is_uri": "analysis.storage",
    "local_copy": "analysis.storage",
    "one_thread_worker": "analysis.scoring",
    "prepare_probe": "analysis.scoring",
    "probe_metrics": "analysis.evaluators",
    "read_experiment": "analysis.tune_folder",
    "serial_map": "analysis.collect",
    "upload": "analysis.storage",
    "user_cache": "analysis.storage",
    "write_report": "analysis.report",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """A public name, from its module (PEP 562: called only for names not yet in this module)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # the next lookup finds it here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
