"""Named search spaces, one plain Python module each, and the loader that checks them.

A space module defines `DESCRIPTION: str` (one line, shown by `infogan-study spaces`) and
`def space() -> dict`: a Ray Tune param space keyed by `InfoGANConfig` field names, whose values
are constants, `tune.grid_search([...])` or Tune distributions (`tune.uniform`, `tune.choice`, ...).
A module file `seed_ablation.py` is the space `seed-ablation`; a path to any `.py` file with the same
two names works too, so a researcher can try a space without editing this package.

Studies that compare whole configurations rather than a product of values (vanilla GAN vs InfoGAN
vs ...) use `variant_grid`: a grid over a `variant` label, the one key that is not a config field.
The Tune trainable drops the label; the fields each variant sets are resolved from it.

`load_space` checks every key against the config and every fixed value (constants, grid values,
categories, distribution bounds) with `coerce_value`, refuses empty grids, and with `seeds=N`
replicates the space over `seed` 0..N-1 (or from `seed_start`) (disentanglement varies across seeds about as much as
across hyperparameters: Locatello et al. 2019, https://arxiv.org/abs/1811.12359).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ray import tune
from ray.tune.search.sample import Categorical, Domain, Float, Function, Integer

from trainables.config import InfoGANConfig, check_field_name, coerce_value
from trainables.errors import BadInputError
from trainables.trial_record import VARIANT_KEY  # the label of a `variant_grid` row; not a config field

__all__ = [
    "VARIANT_KEY",
    "VariantField",
    "check_space",
    "describe_spaces",
    "grid_size",
    "load_space",
    "space_names",
    "variant_field",
    "variant_grid",
]


class VariantField:
    """`tune.sample_from` callable: the value of one config field for the trial's variant label.

    `values` maps variant label -> value for the variants that set the field; the others get
    `default` (the config default, or the sweep's common `--set` value via `with_default`).
    """

    def __init__(self, field: str, values: Mapping[str, Any], default: Any) -> None:
        self.field = field
        self.values = dict(values)
        self.default = default

    def with_default(self, default: Any) -> VariantField:
        return VariantField(self.field, self.values, default)

    def __call__(self, config: Mapping[str, Any]) -> Any:
        return self.values.get(config[VARIANT_KEY], self.default)

    def __repr__(self) -> str:
        return f"VariantField({self.field!r}, {self.values!r}, default={self.default!r})"


def variant_grid(variants: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A param space that runs each named partial config once: {label: {field: value}} ->
    {"variant": grid over labels, field: sample_from(VariantField) for every field any variant sets}."""
    if not variants:
        raise BadInputError("variant_grid needs at least one variant")
    defaults = InfoGANConfig()
    fields = sorted({name for overrides in variants.values() for name in overrides})
    space: dict[str, Any] = {VARIANT_KEY: tune.grid_search(list(variants))}
    for name in fields:
        check_field_name(name)
        values = {label: overrides[name] for label, overrides in variants.items() if name in overrides}
        space[name] = tune.sample_from(VariantField(name, values, getattr(defaults, name)))
    return space


def variant_field(value: Any) -> VariantField | None:
    """The VariantField behind a space value, or None."""
    if isinstance(value, Function) and isinstance(value.func, VariantField):
        return value.func
    return None


# ---------------------------------------------------------------------------------- discovery
def space_names() -> list[str]:
    """Names of the packaged spaces (module names with '-' for '_')."""
    import search_spaces

    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(search_spaces.__path__))


def _import_space(name_or_path: str) -> tuple[str, ModuleType]:
    if name_or_path.endswith(".py"):
        path = Path(name_or_path).expanduser().resolve()
        if not path.is_file():
            raise BadInputError(f"search space file {name_or_path} does not exist")
        spec = importlib.util.spec_from_file_location(f"_infogan_space_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - a broken user file is bad input, whatever broke
            raise BadInputError(f"cannot import search space {path}: {type(err).__name__}: {err}") from None
        return path.stem.replace("_", "-"), module
    known = space_names()
    if name_or_path not in known:
        raise BadInputError(
            f"unknown search space {name_or_path!r}; known: {', '.join(known)} (or a path to a .py file)"
        )
    return name_or_path, importlib.import_module(f"search_spaces.{name_or_path.replace('-', '_')}")


def _module_api(name: str, module: ModuleType) -> tuple[str, Any]:
    description, space_fn = getattr(module, "DESCRIPTION", None), getattr(module, "space", None)
    if not isinstance(description, str) or not callable(space_fn):
        raise BadInputError(f"search space {name} must define DESCRIPTION: str and space() -> dict")
    return description, space_fn


def describe_spaces() -> list[tuple[str, str]]:
    """(name, one-line description) of every packaged space."""
    out = []
    for name in space_names():
        description, _ = _module_api(name, _import_space(name)[1])
        out.append((name, description.strip().splitlines()[0]))
    return out


# ---------------------------------------------------------------------------------- checking
def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def _candidates(space_name: str, key: str, value: Any) -> list[Any] | None:
    """The fixed values a space value can take (grid values, categories, bounds), or None."""
    vf = variant_field(value)
    if vf is not None:
        return [*vf.values.values(), vf.default]
    if _is_grid(value) or isinstance(value, Categorical):
        candidates = list(value["grid_search"] if _is_grid(value) else value.categories)
        if not candidates:
            raise BadInputError(f"search space {space_name}: the grid for {key} is empty; give at least one value")
        return candidates
    if isinstance(value, Integer):
        return [value.lower, value.upper - 1]  # randint's upper bound is exclusive
    if isinstance(value, Float):
        return [value.lower, value.upper]
    if isinstance(value, Domain):  # another sample_from function: resolved per trial
        return None
    return [value]


def check_space(space_name: str, space: Any) -> None:
    """Raise BadInputError unless `space` is a dict keyed by config fields whose fixed values
    (constants, grid values, categories, distribution bounds) are valid on top of its constants."""
    if not isinstance(space, dict) or not space:
        raise BadInputError(f"search space {space_name}: space() must return a non-empty dict")
    try:
        for key in space:
            if key != VARIANT_KEY:
                check_field_name(key)
        constants = {
            k: coerce_value(k, v) for k, v in space.items()
            if k != VARIANT_KEY and not isinstance(v, Domain) and not _is_grid(v)
        }  # fmt: skip
        for key, value in space.items():
            if key == VARIANT_KEY:
                continue
            for candidate in _candidates(space_name, key, value) or []:
                InfoGANConfig.from_dict({**constants, key: coerce_value(key, candidate)})
    except BadInputError as err:
        if str(err).startswith("search space "):
            raise
        raise BadInputError(f"search space {space_name}: {err}") from None


def grid_size(space: Mapping[str, Any]) -> int:
    """Number of grid points (1 for a purely random space)."""
    size = 1
    for value in space.values():
        if _is_grid(value):
            size *= len(value["grid_search"])
    return size


def load_space(name_or_path: str, *, seeds: int | None = None, seed_start: int = 0) -> tuple[str, dict[str, Any]]:
    """Load, check and (with `seeds`) replicate a space over seeds seed_start..seed_start+seeds-1;
    returns (space name, param space)."""
    name, module = _import_space(name_or_path)
    _, space_fn = _module_api(name, module)
    try:
        space = space_fn()
    except Exception as err:  # noqa: BLE001 - e.g. Tune refusing a distribution's bounds
        raise BadInputError(f"search space {name}: space() failed: {type(err).__name__}: {err}") from None
    check_space(name, space)
    if seeds is not None:
        if seeds < 1:
            raise BadInputError(f"--seeds {seeds}: give a number of seeds >= 1")
        if "seed" in space:
            raise BadInputError(f"search space {name} already sets seed; drop --seeds")
        space = {**space, "seed": tune.grid_search(list(range(seed_start, seed_start + seeds)))}
    return name, space
