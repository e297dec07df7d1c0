"""The benchmarks are scripts nobody runs in CI: import each one, so that a change to the modules
they use breaks a test here, not the next person who measures something."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SCRIPTS = sorted(p.stem for p in (Path(__file__).parents[1] / "benchmarks").glob("*.py") if p.stem != "__init__")


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 4


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_benchmark_imports_and_has_a_main(name: str) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(getattr(module, "main", None)), f"benchmarks/{name}.py has no main()"
