"""The project's own packages use Ray Tune and scikit-learn through their public APIs only: no
module reads Tune's internal state files or Ray's temp folder, and none touches a private
(underscore) module or attribute of Ray or scikit-learn. Those change between releases without
notice, and an upgrade would then break `status`, `analyze` or `resume` silently. What the packed
optimiser relies on in torch beyond its documented API is pinned here too, and `study` reaches
`analysis` through its public surface only.

Our own private helpers (`_name`, `self._x`, `module._helper` of our packages) are fine.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("trainables", "study", "analysis", "search_spaces")
# Tune's internal state files, Ray's session folder and Tune's staging copies there.
FORBIDDEN_TEXT = ("experiment_state", "/tmp/ray", "driver_artifacts")
LIBRARIES = ("ray", "sklearn")


def _modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.AST) -> list[str] | None:
    """['ray', 'tune', 'x'] for `ray.tune.x`; None if the chain does not start at a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def private_uses(source: str) -> list[str]:
    """What in `source` reaches into Ray's or scikit-learn's private names, as `line: text`."""
    tree = ast.parse(source)
    library_names: set[str] = set()  # local names bound to ray/sklearn modules or objects
    own_names: set[str] = set()  # local names bound to our own packages
    imported: set[str] = set()  # the libraries this module imports
    found = []

    def library(module: str) -> bool:
        return module.split(".")[0] in LIBRARIES

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                if library(alias.name):
                    library_names.add(local)
                    imported.add(alias.name.split(".")[0])
                    if any(_private(p) for p in alias.name.split(".")):
                        found.append(f"{node.lineno}: import {alias.name}")
                elif alias.name.split(".")[0] in PACKAGES:
                    own_names.add(local)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                local = alias.asname or alias.name
                if library(node.module):
                    library_names.add(local)
                    imported.add(node.module.split(".")[0])
                    if any(_private(p) for p in [*node.module.split("."), alias.name]):
                        found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                elif node.module.split(".")[0] in PACKAGES:
                    own_names.add(local)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if any(text.startswith(f"{lib}.") for lib in LIBRARIES) and any(_private(p) for p in text.split(".")):
                found.append(f"{node.lineno}: {text!r}")
    uses_sklearn = "sklearn" in imported
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        chain = _dotted(node)
        root = chain[0] if chain else None
        if root in ("self", "cls") or root in own_names:
            continue
        if root in library_names or root in LIBRARIES:
            found.append(f"{node.lineno}: {'.'.join(chain)}")
        elif uses_sklearn and root is not None:
            # an estimator held in a local variable: `model._predictors`
            found.append(f"{node.lineno}: {'.'.join(chain)} (scikit-learn is imported here)")
        elif uses_sklearn and root is None:
            found.append(f"{node.lineno}: <expression>.{node.attr} (scikit-learn is imported here)")
    return sorted(set(found), key=lambda f: int(f.split(":")[0]))


@pytest.mark.parametrize("module", list(_modules()), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_reads_tune_internal_files_or_ray_temp(module: Path) -> None:
    text = module.read_text()
    assert not [s for s in FORBIDDEN_TEXT if s in text], f"{module.relative_to(REPO)} mentions Tune internals"


@pytest.mark.parametrize("module", list(_modules()), ids=lambda p: str(p.relative_to(REPO)))
def test_no_private_ray_or_sklearn_names(module: Path) -> None:
    assert private_uses(module.read_text()) == [], module.relative_to(REPO)


def test_the_checker_catches_what_it_should_and_spares_our_helpers() -> None:
    bad = (
        "import ray\nfrom ray._private import ray_constants\nimport ray.train._internal.storage as s\n"
        "from ray.tune.utils.util import _load_newest_checkpoint\nx = ray._private.worker.global_worker\n"
        "from sklearn.ensemble import HistGradientBoostingClassifier\nm = HistGradientBoostingClassifier()\n"
        "trees = m._predictors\nname = 'ray._private.ray_constants'\n"
    )
    assert [f.split(":")[0] for f in private_uses(bad)] == ["2", "3", "4", "5", "8", "9"]
    good = (
        "from sklearn.svm import LinearSVC\nfrom analysis.metrics import _sampling\nimport numpy as np\n\n"
        "class A:\n    def f(self):\n        return self._x, _sampling._split(np.zeros(2)), LinearSVC().coef_\n"
        "def _helper():\n    return _helper\n"
    )
    assert private_uses(good) == []


def _python(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_UV_RUN_RUNTIME_ENV"} | env
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


def test_the_uv_worker_switch_is_its_environment_variable_set_before_ray() -> None:
    """`study` sets RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 (Ray reads it when imported), keeps a user's
    choice, and can tell when Ray was imported first (then it is too late)."""
    show = "import os, study.cli; from study.ray_runtime import uv_switch_missed; "
    assert _python(show + "print(os.environ['RAY_ENABLE_UV_RUN_RUNTIME_ENV'], uv_switch_missed())") == "0 False"
    kept = _python(show + "print(os.environ['RAY_ENABLE_UV_RUN_RUNTIME_ENV'])", RAY_ENABLE_UV_RUN_RUNTIME_ENV="1")
    assert kept == "1"
    late = _python("import ray, study; from study.ray_runtime import uv_switch_missed; print(uv_switch_missed())")
    assert late == "True"


# ---------------------------------------------------------------------------------- our analysis surface
def test_study_imports_analysis_through_its_public_surface() -> None:
    """`study` imports `analysis` names from the package (its `__all__`), never from its modules."""
    deep = []
    for module in sorted((REPO / "study").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analysis."):
                deep.append(f"{module.relative_to(REPO)}:{node.lineno}: from {node.module}")
            elif isinstance(node, ast.ImportFrom) and node.module == "analysis":
                import analysis

                deep += [f"{module.relative_to(REPO)}: {a.name}" for a in node.names if a.name not in analysis.__all__]
    assert deep == []


def test_every_public_analysis_name_resolves_and_reading_a_folder_needs_no_heavy_import() -> None:
    import analysis

    for name in analysis.__all__:
        assert getattr(analysis, name) is getattr(importlib.import_module(analysis._HOMES[name]), name)
    heavy = "('torch', 'sklearn', 'plotly', 'ray')"
    assert (
        _python(f"import sys\nfrom analysis import read_experiment\nprint([m for m in {heavy} if m in sys.modules])")
        == "[]"
    )


# ---------------------------------------------------------------------------------- torch
# The packed optimiser (`trainables/packed/_optim.py`) and a pack member's checkpoint
# (`PackedTrainer.member_state_dict`) rely on these behaviours of torch.optim and autograd, which
# torch's documentation does not spell out. A torch upgrade that changes one fails here, by name.


def test_fused_adam_steps_the_state_it_is_handed_in_place() -> None:
    """`_optim.py` hands fused Adam per-parameter states whose tensors are views of its flat
    buffers: Adam must keep them (not replace them) and update them in place."""
    flat = torch.zeros(12)
    exp_avg, exp_avg_sq = flat[:6].view(2, 3), flat[6:].view(2, 3)
    p = torch.nn.Parameter(torch.ones(2, 3))
    adam = torch.optim.Adam([p], lr=0.1, betas=(0.5, 0.9), eps=1e-8, fused=True)
    adam.state[p] = {"step": torch.zeros((), dtype=torch.float32), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    p.grad = torch.full((2, 3), 2.0)
    adam.step()
    assert adam.state[p]["exp_avg"] is exp_avg and adam.state[p]["exp_avg_sq"] is exp_avg_sq
    # m = (1 - 0.5) * 2 = 1, v = (1 - 0.9) * 4 = 0.4; the step: 0.1 * (1 / 0.5) / (sqrt(0.4 / 0.1) + 1e-8) = 0.1
    torch.testing.assert_close(flat, torch.tensor([1.0] * 6 + [0.4] * 6))
    torch.testing.assert_close(p.detach(), torch.full((2, 3), 0.9))
    assert adam.state[p]["step"].item() == 1.0


def test_the_optimisers_own_state_layout_is_what_a_member_checkpoint_writes() -> None:
    """A member's optimiser states are handed to a single run's optimisers (`optimizer.state[p] =
    ...`) in the layout they keep themselves, and written by their `state_dict` keyed by parameter
    position: fused Adam's step is a float32 scalar tensor, SGD keeps a momentum buffer."""
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2, 2))]
    for p in params:
        p.grad = torch.ones_like(p)
    adam, sgd = torch.optim.Adam(params, fused=True), torch.optim.SGD(params, lr=0.1, momentum=0.5, fused=True)
    adam.step()
    sgd.step()
    assert [sorted(adam.state[p]) for p in params] == [["exp_avg", "exp_avg_sq", "step"]] * 2
    step = adam.state[params[0]]["step"]
    assert step.dtype == torch.float32 and step.dim() == 0 and step.device == params[0].device
    assert [sorted(sgd.state[p]) for p in params] == [["momentum_buffer"]] * 2
    handed = torch.optim.Adam(params, fused=True)
    for p, state in zip(params, [adam.state[p] for p in params]):
        handed.state[p] = {k: v.clone() for k, v in state.items()}
    written = handed.state_dict()
    assert list(written["state"]) == [0, 1]
    fresh = torch.optim.Adam(params, fused=True)
    fresh.load_state_dict(written)
    torch.testing.assert_close(fresh.state[params[1]]["exp_avg_sq"], adam.state[params[1]]["exp_avg_sq"])


def test_parameters_and_gradients_can_live_in_a_flat_buffer() -> None:
    """`_optim.py` makes each parameter a view of one flat buffer (`p.data = view`) and, on its
    elementwise paths, each gradient too (`p.grad = view`): autograd must accumulate into such a
    gradient in place, so the flat buffer holds every gradient after `backward`."""
    flat, grads = torch.arange(6.0), torch.zeros(6)
    p = torch.nn.Parameter(torch.empty(2, 3))
    p.data = flat.view(2, 3)
    p.grad = grads.view(2, 3)
    (p * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(grads, torch.tensor([1.0, 2.0, 3.0] * 2))
    flat.add_(1.0)  # an update of the buffer is an update of the parameter
    torch.testing.assert_close(p.detach(), torch.arange(6.0).view(2, 3) + 1)
