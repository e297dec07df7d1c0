"""The CLI and launcher: Ray Tune sweeps, Optuna searches, resume, status, cluster use.

Ray's `uv run` integration (each worker gets a freshly built virtualenv) is turned off here through
its documented switch, before any module of this package imports Ray, which reads it at import
time; a user who sets RAY_ENABLE_UV_RUN_RUNTIME_ENV keeps their choice (see `study/ray_runtime.py`).
"""

import os
import sys

RAY_IMPORTED_FIRST = "ray" in sys.modules and "RAY_ENABLE_UV_RUN_RUNTIME_ENV" not in os.environ
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
