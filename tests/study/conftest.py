"""Import `study` before any test module imports Ray: it sets RAY_ENABLE_UV_RUN_RUNTIME_ENV=0,
which Ray reads once, at import (otherwise each local worker under `uv run pytest` would build its
own virtualenv)."""

import study  # noqa: F401
