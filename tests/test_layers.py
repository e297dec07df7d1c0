"""How `trainables` is layered: the training core imports no Ray (only the Tune adapters in
`trainables/tune/` do), nothing in `trainables` imports the packages above it (`search_spaces`,
`study`, `analysis`), and its modules import each other without a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADAPTERS = "trainables.tune"  # the one place in trainables that may import Ray
ABOVE = ("search_spaces", "study", "analysis")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


MODULES = {_module_name(p): _imports(p) for p in sorted((REPO / "trainables").rglob("*.py"))}


def _core() -> list[str]:
    return [m for m in MODULES if m != ADAPTERS and not m.startswith(f"{ADAPTERS}.")]


def test_the_training_core_and_the_record_reader_import_without_ray() -> None:
    """With `ray` made unimportable, every module of the core imports, and so does the reader of
    experiment folders; the Tune adapters do not (so the check itself can fail)."""
    code = (
        "import importlib, sys\n"
        "sys.modules['ray'] = None  # any `import ray...` now raises ImportError\n"
        f"for name in {[*_core(), 'analysis.tune_folder']!r}:\n"
        "    importlib.import_module(name)\n"
        "try:\n"
        f"    importlib.import_module({ADAPTERS!r})\n"
        "except ImportError:\n"
        "    print('adapters need ray')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
    assert done.stdout.strip() == "adapters need ray"


def test_only_the_tune_adapters_import_ray_and_nothing_imports_upwards() -> None:
    ray_users = sorted(m for m, imports in MODULES.items() if any(i.split(".")[0] == "ray" for i in imports))
    assert ray_users == [f"{ADAPTERS}.report", f"{ADAPTERS}.trainable"]
    upwards = {m: sorted(i for i in imports if i.split(".")[0] in ABOVE) for m, imports in MODULES.items()}
    assert {m: i for m, i in upwards.items() if i} == {}


def test_the_trainables_modules_import_each_other_without_a_circle() -> None:
    edges = {m: {i for i in imports if i in MODULES and i != m} for m, imports in MODULES.items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, f"import circle: {' -> '.join([*path[path.index(module) :], module])}"
        if module in done:
            return
        for imported in sorted(edges[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert edges["trainables.tune.trainable"] >= {"trainables.loop", "trainables.packed", "trainables.trial_record"}
