"""Command-line options shared by `sweep`, `search`, `resume` and `status`, and their checking.

`plan_from_args` turns a parsed `sweep`/`search` command line into a checked `StudySpec` and param
space without starting anything, so every bad input is a one-line error with exit status 2.
Adding the options imports nothing heavy (the CLI builds every parser for every command); Ray
and the search spaces are imported when a plan is made.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from trainables.config import check_value, coerce_value, parse_set_options
from trainables.errors import BadInputError

if TYPE_CHECKING:
    from study.plan import StudySpec

DEFAULT_STORAGE = "./results"


def add_location_arguments(p: argparse.ArgumentParser, *, address: bool = True) -> None:
    p.add_argument(
        "--storage-path",
        default=DEFAULT_STORAGE,
        metavar="DIR|URI",
        help="where studies live: a folder (shared on a cluster) or s3://... (default ./results)",
    )
    if address:
        p.add_argument(
            "--address",
            default=None,
            metavar="auto|HOST:PORT|ray://HOST:PORT",
            help="Ray cluster to use (default: a local Ray with this machine's resources)",
        )


def add_launch_arguments(p: argparse.ArgumentParser) -> None:
    """Trial settings, scale and placement, shared by sweep and search."""
    g = p.add_argument_group("trial settings (shared by every trial)")
    g.add_argument("--dataset", required=True, help="dataset of every trial (e.g. basicprop-line, mnist)")
    g.add_argument("--steps", type=int, help="training steps per trial")
    g.add_argument("--batch-size", type=int, help="batch size")
    g.add_argument("--data-root", help="dataset folder; on a cluster a path every node can read")
    g.add_argument("--set", dest="set_options", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other config field for every trial (repeatable), e.g. --set width=0.25")  # fmt: skip
    g = p.add_argument_group("study")
    g.add_argument("--num-samples", type=int, default=1, help="samples (random spaces) or grid repeats")
    g.add_argument("--scheduler", choices=("asha", "none"), default="none", help="ASHA early stopping")
    g.add_argument("--name", help="study name (default SPACE-DATASET-YYYYmmdd-HHMMSS)")
    g.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (torch threads)")
    g.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; 0.25 packs 4 on a GPU")
    g.add_argument("--max-concurrent", type=int, help="at most this many trials at once")
    g.add_argument("--max-failures", type=int, default=2,
                   help="restarts of a trial from its checkpoint after a crash or lost node (default 2)")  # fmt: skip
    add_location_arguments(p)


def trial_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--set options plus the named flags; naming a field twice is an error."""
    from study import plan

    values = parse_set_options(args.set_options)
    named = {"dataset": args.dataset, "steps": args.steps, "batch_size": args.batch_size, "data_root": args.data_root}
    for key, value in named.items():
        if value is None:
            continue
        if key in values:
            raise BadInputError(f"--{key.replace('_', '-')} and --set {key}=... both given; keep one")
        values[key] = coerce_value(key, value)
    for key, value in values.items():  # a setting out of its range is wrong for every trial: say it plainly
        check_value(key, value)
    return plan.common_settings(values)


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise BadInputError(f"--name {name!r}: use letters, digits and . _ + - (it becomes a folder name)")
    return name


def default_objective(reported: dict[str, str | None]) -> str:
    """What a study optimises unless told: the generator-side accuracy where every trial's data has
    an evaluator to report it (the score the analysis ranks by), else the MI bound."""
    return "gen/cat_acc:max" if "gen/cat_acc" in reported else "mi/cat:max"


def plan_from_args(args: argparse.Namespace, *, kind: str, space: str, seeds: int | None,
                   objectives: list[str] | None, **extra: Any) -> tuple[StudySpec, dict[str, Any]]:  # fmt: skip
    """A checked study spec and param space for `sweep` or `search`; starts and writes nothing.
    No objectives: `default_objective` of the study's datasets."""
    from search_spaces import grid_size, load_space
    from study import plan

    plan.check_resources(cpus=args.cpus_per_trial, gpus=args.gpus_per_trial, num_samples=args.num_samples,
                         max_concurrent=args.max_concurrent, max_failures=args.max_failures)  # fmt: skip
    space_name, param = load_space(space, seeds=seeds)
    if kind == "search":
        plan.check_search_space(space_name, param)
    param_space = plan.build_param_space(space_name, param, trial_settings(args))
    plan.check_trial_configs(param_space)
    datasets = plan.trial_datasets(param_space)
    reported = plan.reported_metrics(datasets)
    flag = "--metric" if kind == "sweep" else "--objective"
    parsed = tuple(plan.parse_objective(o, reported, flag=flag) for o in objectives or [default_objective(reported)])
    storage = plan.resolve_storage_path(args.storage_path)
    pack = plan.check_pack_option(extra.pop("pack", None), scheduler=args.scheduler)
    spec = plan.StudySpec(
        kind=kind,
        name=_check_name(args.name or plan.default_name(space_name, str(param_space.get("dataset")))),
        storage_path=storage,
        space=space_name,
        objectives=parsed,
        scheduler=args.scheduler,
        num_samples=args.num_samples,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures,
        datasets=datasets,
        trials=grid_size(param_space) * args.num_samples,
        pack=pack,
        **extra,
    )
    plan.check_new_study(spec)
    if pack:  # Tune's trials are the packs: {"members": [...]} each, every grid point and sample resolved here
        from ray import tune

        from trainables.tune_trainable import PACK_KEY

        packs = plan.pack_trials(param_space, num_samples=args.num_samples, pack=pack)
        param_space = {PACK_KEY: tune.grid_search(packs)}
    return spec, param_space


def describe_plan(spec: StudySpec, param_space: dict[str, Any]) -> str:
    from search_spaces import grid_size

    grid = grid_size(param_space)
    total = grid * spec.num_samples
    where = f"{spec.experiment_path}"
    if spec.pack:
        return (
            f"{spec.kind} {spec.name}: {spec.trials} trial(s) trained in {grid} pack(s) of up to {spec.pack}, "
            f"{spec.cpus_per_trial:g} CPU + {spec.gpus_per_trial:g} GPU per pack, objective "
            f"{', '.join(map(str, spec.objectives))}; results in {where}"
        )
    return (
        f"{spec.kind} {spec.name}: {total} trial(s) ({grid} grid point(s) x {spec.num_samples} sample(s)), "
        f"{spec.cpus_per_trial:g} CPU + {spec.gpus_per_trial:g} GPU each, objective "
        f"{', '.join(map(str, spec.objectives))}, scheduler {spec.scheduler}; results in {where}"
    )
