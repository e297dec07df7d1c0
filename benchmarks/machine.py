"""The machine a benchmark ran on, as every figure in docs/results.md names it.

uv run python benchmarks/machine.py          # e.g. "AMD EPYC 7B13, 2 cores"
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_cpu() -> str:
    """`cpu_name()` and the core count: "AMD EPYC 7B13, 2 cores"."""
    return f"{cpu_name()}, {os.cpu_count()} cores"


def main() -> int:
    print(describe_cpu())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
