"""What a study will run, checked before anything starts: the spec saved with it, its param space.

A sweep or search is described by a `StudySpec` (kind, name, storage, objectives, resources,
retries, Optuna storage). It is written as `infogan-study.json` into the experiment folder next to
Tune's own state, so `infogan-study resume NAME` rebuilds the trainable with the same resources
without the user repeating the flags. Every user error here raises a one-line `BadInputError`
before Ray is contacted and before anything is written (not even the storage folder): unknown
space or key, empty grid, a `--set` that collides with the space, a trial config the config
dataclass refuses, data the trials could not read, an objective no trial reports, an unwritable
storage path, an existing name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.files import check_writable
from trainables.trial_record import SPEC_FILE

if TYPE_CHECKING:
    import pyarrow.fs

# Ray, torch and the search spaces are imported inside the functions that need them: the CLI
# reads a study's spec (`find_spec`) and checks its arguments before paying for those imports.
MAX_CHECKED_TRIALS = 5000  # grid points whose full config is validated up front


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # "max" | "min"

    def __str__(self) -> str:
        return f"{self.metric}:{self.mode}"


def reported_metrics(datasets: tuple[dict[str, Any], ...]) -> dict[str, str | None]:
    """Every metric each trial of a study reports, with the direction that is better (None: say
    which): the loop's (`trainables.loop.METRICS`), and the generator probe's
    (`analysis.evaluators.PROBE_METRICS`) when every dataset of the study has an evaluator."""
    from analysis import probe_metrics
    from trainables.loop import METRICS

    out = dict(METRICS)
    probes = [probe_metrics(str(values["dataset"])) for values in datasets]
    if probes and all(probes):
        out.update({k: v for k, v in probes[0].items() if all(k in p for p in probes)})
    return out


def parse_objective(text: str, reported: dict[str, str | None], *, flag: str = "--objective") -> Objective:
    """`METRIC[:max|min]` of a metric every trial reports (`reported_metrics`); the direction may be
    left out where the metric has one."""
    metric, _, mode = text.partition(":")
    metric, mode = metric.strip(), mode.strip().lower()
    if not metric:
        raise BadInputError(f"{flag} {text!r}: expected METRIC[:max|min], e.g. mi/cat:max")
    if metric not in reported:
        raise BadInputError(f"{flag} {text}: no trial reports {metric!r}; they report {', '.join(reported)}")
    if not mode:
        if reported[metric] is None:
            raise BadInputError(f"{flag} {metric}: say which way is better, e.g. {metric}:max or {metric}:min")
        mode = str(reported[metric])
    if mode not in ("max", "min"):
        raise BadInputError(f"{flag} {text!r}: the direction must be max or min")
    return Objective(metric, mode)


@dataclass(frozen=True)
class StudySpec:
    """Everything needed to start or resume a study (saved as JSON in the experiment folder)."""

    kind: str  # "sweep" | "search"
    name: str
    storage_path: str  # absolute local path or a URI (s3://, gs://)
    space: str
    objectives: tuple[Objective, ...]
    scheduler: str = "none"  # "asha" | "none"
    num_samples: int = 1
    max_concurrent: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    optuna_storage: str | None = None  # a database URL or journal file; None = journal in the experiment
    startup_trials: int = 10  # TPE's random start-up trials
    datasets: tuple[dict[str, Any], ...] = ()  # the trials' distinct data (DATA_FIELDS), for the probe's evaluators
    trials: int = 0  # how many trials the study runs (grid points x samples); 0: not recorded
    pack: int = 0  # `sweep --pack K`: up to K compatible trials trained as one network per Tune trial (0: off)
    grace_period: int | None = None  # ASHA: reports before a trial can be stopped (None: a ninth of max_t)
    reduction_factor: float = 3.0  # ASHA: keep the best 1/reduction_factor at each rung
    tracking: str = "none"  # "mlflow": every trial is an MLflow run (`study/tracking.py`)
    tracking_uri: str | None = None  # None: the SQLite store mlflow.db in the experiment folder
    launched_as: str = ""  # the name the study was launched under, when its folder has been renamed since
    # (its Optuna study and MLflow experiment keep that name); '' = `name`
    pruned_by: str = "trial"  # who deletes a trial's checkpoints beyond those kept: "trial" (the trials
    # themselves; Tune keeps all it is told of) or "tune" (Tune's num_to_keep: studies launched before)

    @property
    def experiment_path(self) -> str:
        return join_path(self.storage_path, self.name)

    @property
    def launch_name(self) -> str:
        """The study's name at launch: its Optuna study's and MLflow experiment's name."""
        return self.launched_as or self.name

    @property
    def optuna_journal(self) -> str:
        """The embedded Optuna storage: a journal file in the experiment folder."""
        return join_path(self.experiment_path, "optuna.journal")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StudySpec:
        """The spec from its JSON; ValueError, KeyError or TypeError when it is not one."""
        data = json.loads(text)
        data["objectives"] = tuple(Objective(**o) for o in data["objectives"])
        data["datasets"] = tuple(data.get("datasets", ()))
        data.setdefault("pruned_by", "tune")  # a study launched before the trials pruned their own
        return cls(**data)


# ---------------------------------------------------------------------------------- storage
def is_uri(path: str) -> bool:
    return "://" in path


def join_path(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}" if is_uri(base) else str(Path(base) / name)


def normalize_storage_path(path: str) -> str:
    """Absolute local path (not created) or the URI as given."""
    return path if is_uri(path) else str(Path(path).expanduser().resolve())


def resolve_storage_path(path: str) -> str:
    """Absolute local path (checked writable, not created: the study makes its folder when it
    starts) or a URI left for pyarrow to open."""
    if is_uri(path):
        return path
    root = Path(path).expanduser().resolve()
    check_writable(root, what=f"--storage-path {path}", fix="pick a folder you can write to")
    return str(root)


def _fs(path: str) -> tuple[pyarrow.fs.FileSystem, str]:
    import pyarrow.fs

    if is_uri(path):
        return pyarrow.fs.FileSystem.from_uri(path)
    return pyarrow.fs.LocalFileSystem(), path


def write_spec(spec: StudySpec) -> None:
    fs, path = _fs(spec.experiment_path)
    fs.create_dir(path, recursive=True)
    with fs.open_output_stream(f"{path}/{SPEC_FILE}") as f:
        f.write(spec.to_json().encode())


def read_spec(experiment_path: str) -> StudySpec | None:
    """The study's spec; None when the folder holds none; a one-line error when it is damaged."""
    fs, path = _fs(experiment_path)
    try:
        with fs.open_input_stream(f"{path}/{SPEC_FILE}") as f:
            text = f.read()
    except (FileNotFoundError, OSError):
        return None
    try:
        return StudySpec.from_json(text.decode())
    except (ValueError, KeyError, TypeError, AttributeError) as err:  # bad JSON, or JSON of another shape
        why = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise BadInputError(
            f"{join_path(experiment_path, SPEC_FILE)} is not a readable study record ({type(err).__name__}: {why}); "
            "restore it from a copy of the study, or run `infogan-study analyze` on the folder, which does not need it"
        ) from None


def known_studies(storage_path: str) -> list[str]:
    """Names of the studies under a local storage path (for error messages)."""
    if is_uri(storage_path) or not Path(storage_path).is_dir():
        return []
    return sorted(p.parent.name for p in Path(storage_path).glob(f"*/{SPEC_FILE}"))


def find_spec(name: str, storage_path: str) -> StudySpec:
    """The spec of the study in the folder `name` under `storage_path`, or a one-line error listing
    the known ones. It is rebased on where the folder is now: a study folder moved (rsync from a
    cluster), copied or renamed is the one named here, not the one its spec was written in (its
    Optuna study and MLflow experiment keep the launch name, `launched_as`)."""
    if not name or "/" in name or name in (".", ".."):
        raise BadInputError(f"{name!r} is not a study name; pass the study's folder name under --storage-path")
    spec = read_spec(join_path(storage_path, name))
    if spec is None:
        known = known_studies(storage_path)
        listing = f"known: {', '.join(known)}" if known else "none there yet"
        raise BadInputError(f"no study named {name!r} in {storage_path} ({listing}); check --storage-path")
    launched_as = spec.launched_as or (spec.name if spec.name != name else "")
    return dataclasses.replace(spec, storage_path=storage_path, name=name, launched_as=launched_as)


def default_name(space: str, dataset: str) -> str:
    return f"{space}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_new_study(spec: StudySpec) -> None:
    """The study's folder must not hold a study (ours or any other Tune experiment) yet."""
    local = None if is_uri(spec.experiment_path) else Path(spec.experiment_path)
    if (local is not None and local.is_dir() and any(local.iterdir())) or read_spec(spec.experiment_path) is not None:
        raise BadInputError(
            f"a study named {spec.name} already exists in {spec.storage_path}; "
            f"continue it with `infogan-study resume {spec.name}` or pick another --name"
        )


# ---------------------------------------------------------------------------------- param space
def common_settings(values: dict[str, Any], *, data_root_default: str = "data") -> dict[str, Any]:
    """Settings every trial shares; `data_root` made absolute (trials run in their own folders)."""
    out = dict(values)
    root = out.get("data_root") or data_root_default
    out["data_root"] = root if is_uri(root) else str(Path(root).expanduser().resolve())
    return out


def build_param_space(space_name: str, space: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """The space plus the common settings. A common setting a variant leaves alone becomes that
    variant's value; any other key set both ways is a conflict."""
    from ray import tune

    from search_spaces import variant_field

    merged = dict(space)
    for key, value in common.items():
        if key not in space:
            merged[key] = value
            continue
        vf = variant_field(space[key])
        if vf is None:
            raise BadInputError(f"{key} is set on the command line and by search space {space_name}; drop one")
        merged[key] = tune.sample_from(vf.with_default(value))
    return merged


DATA_FIELDS = ("dataset", "data_root", "image_size", "basicprop_noise")  # what decides a trial's data


def trial_datasets(param_space: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The distinct data of the study's trials ({field: value} for DATA_FIELDS), as resolved from
    the grid (one sample per point for distributions)."""
    from ray.tune.search.variant_generator import generate_variants

    from trainables.trial_record import build_config

    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for count, (_, resolved) in enumerate(generate_variants(param_space)):
        config = build_config(resolved)
        values = {name: getattr(config, name) for name in DATA_FIELDS}
        seen.setdefault(tuple(values.values()), values)
        if count + 1 >= MAX_CHECKED_TRIALS:
            break
    return tuple(seen.values())


def check_trial_data(datasets: tuple[dict[str, Any], ...]) -> None:
    """Read each dataset the trials train on (`trial_datasets`), here, before the first trial: data
    that cannot be read is the dataset's one-line error instead of every trial failing. Each is
    loaded once per process and kept for the generator probe (`analysis.scoring.dataset_for`)."""
    from analysis import dataset_for
    from trainables.trial_record import build_config

    for values in datasets:
        dataset_for(build_config(values))


MEMORY_FIELDS = ("noise_dim", "n_cat_codes", "cat_dim", "n_cont_codes", "q_fixed_std", "bidirectional", "width",
                 "batch_size")  # with DATA_FIELDS: what decides the memory of a trial's step  # fmt: skip


def check_trial_memory(param_space: dict[str, Any], *, gpus: float) -> None:
    """On a local instance: each distinct network of the study at its batch size must fit in this
    machine's free memory (`trainables.memory.check_memory`, as `train` checks it before the first
    step), or the trials would only error one after the other; a pack (`sweep --pack`) steps its
    members' batches at once. The data comes from `check_trial_data`'s cache."""
    import torch
    from ray.tune.search.variant_generator import generate_variants

    from analysis import dataset_for
    from trainables.memory import check_memory
    from trainables.models import InfoGAN
    from trainables.trial_record import PACK_KEY, build_config

    device = torch.device("cuda" if gpus > 0 else "cpu")
    seen: set[tuple[Any, ...]] = set()
    for count, (_, resolved) in enumerate(generate_variants(param_space)):
        members = resolved.get(PACK_KEY, [resolved])
        config = build_config(members[0])
        key = (*tuple(getattr(config, name) for name in (*DATA_FIELDS, *MEMORY_FIELDS)), len(members))
        if key in seen:
            continue
        seen.add(key)
        model = InfoGAN(config, dataset_for(config).image_shape)
        check_memory(model, config.batch_size * len(members), device)
        if count + 1 >= MAX_CHECKED_TRIALS:
            break


def check_trial_configs(param_space: dict[str, Any]) -> int:
    """Resolve the grid (one sample per point for distributions) and build every trial's config;
    returns the number of grid points. Catches cross-field errors before anything starts."""
    from ray.tune.search.variant_generator import generate_variants

    from trainables.trial_record import build_config

    count = 0
    for resolved_vars, resolved in generate_variants(param_space):
        try:
            build_config(resolved)
        except BadInputError as err:
            where = ", ".join(f"{'/'.join(map(str, k))}={v}" for k, v in resolved_vars.items())
            raise BadInputError(f"trial ({where}): {err}" if where else str(err)) from None
        count += 1
        if count >= MAX_CHECKED_TRIALS:
            break
    return count


def check_search_space(space_name: str, space: dict[str, Any]) -> None:
    """Optuna samples distributions; grid keys (including a variant label) cannot be searched."""
    from ray.tune.search.sample import Domain

    from search_spaces import VARIANT_KEY

    grid_keys = [k for k, v in space.items() if isinstance(v, dict) and "grid_search" in v]
    if grid_keys or VARIANT_KEY in space:
        keys = ", ".join(grid_keys or [VARIANT_KEY])
        raise BadInputError(
            f"search space {space_name} has grid values ({keys}); `search` needs distributions: "
            f"use `infogan-study sweep {space_name}` or the optuna space"
        )
    if not any(isinstance(v, Domain) for v in space.values()):
        raise BadInputError(f"search space {space_name} has no distributions to search; use `sweep`")


def asha_settings(spec: StudySpec, param_space: dict[str, Any]) -> tuple[int, int, float]:
    """ASHA's (max_t, grace_period, reduction_factor), counted in reports (Tune's training
    iterations, one per `report_every` steps): max_t is a trial's number of reports; the grace
    period, unless given, a ninth of it (at least one report)."""
    defaults = InfoGANConfig()
    steps = param_space.get("steps", defaults.steps)
    every = param_space.get("report_every", defaults.report_every)
    if not isinstance(steps, int) or not isinstance(every, int):
        raise BadInputError("--scheduler asha needs steps and report_every fixed for the whole study")
    max_t = max(1, math.ceil(steps / every))
    grace = spec.grace_period if spec.grace_period is not None else max(1, max_t // 9)
    if grace > max_t:
        raise BadInputError(f"--grace-period {grace}: a trial reports {max_t} times (steps / report_every); "
                            f"give at most {max_t}")  # fmt: skip
    return max_t, grace, spec.reduction_factor


def check_repeats(space_name: str, space: dict[str, Any], num_samples: int) -> None:
    """`--num-samples N` repeats a space N times. A space with nothing random (grid values and
    constants only) would repeat the same trials with the same seeds: refused, pointing to --seeds."""
    from ray.tune.search.sample import Domain

    from search_spaces import variant_field

    random = any(isinstance(v, Domain) and variant_field(v) is None for v in space.values())
    if num_samples > 1 and not random:
        raise BadInputError(
            f"--num-samples {num_samples} repeats search space {space_name}, which has nothing random: every repeat "
            "would train the same trials with the same seeds; replicate over seeds with --seeds N (--seed-start S)"
        )


def check_resources(*, cpus: float, gpus: float, num_samples: int, max_concurrent: int | None,
                    max_failures: int) -> None:  # fmt: skip
    if cpus <= 0:
        raise BadInputError(f"--cpus-per-trial {cpus}: must be > 0")
    if gpus < 0:
        raise BadInputError(f"--gpus-per-trial {gpus}: must be >= 0 (fractions such as 0.25 pack trials on a GPU)")
    if gpus > 1 and gpus != int(gpus):
        raise BadInputError(f"--gpus-per-trial {gpus}: above 1 it must be a whole number")
    if num_samples < 1:
        raise BadInputError(f"--num-samples {num_samples}: must be >= 1")
    if max_concurrent is not None and max_concurrent < 1:
        raise BadInputError(f"--max-concurrent {max_concurrent}: must be >= 1")
    if max_failures < 0:
        raise BadInputError(f"--max-failures {max_failures}: must be >= 0")


def pack_trials(param_space: dict[str, Any], *, num_samples: int, pack: int) -> list[list[dict[str, Any]]]:
    """`sweep --pack K`: every trial config of the space (grid points x samples, distributions
    sampled here), grouped by what a pack must share (`trainables.packed.pack_key`) in the order
    Tune would run them, and cut into packs of up to `pack`."""
    from ray.tune.search.variant_generator import generate_variants

    from trainables.packed import pack_key
    from trainables.trial_record import build_config

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for _ in range(num_samples):
        for _, resolved in generate_variants(param_space):
            groups.setdefault(pack_key(build_config(resolved)), []).append(resolved)
    return [members[i : i + pack] for members in groups.values() for i in range(0, len(members), pack)]


def check_pack_option(pack: int | None, *, scheduler: str) -> int:
    """`--pack K`: K >= 1, and not with ASHA (it stops trials one by one; a pack trains as one)."""
    if pack is None:
        return 0
    if pack < 1:
        raise BadInputError(f"--pack {pack}: must be >= 1 (configurations trained as one network per trial)")
    if scheduler != "none":
        raise BadInputError("--pack with --scheduler asha: ASHA stops trials one by one, a pack trains as one; "
                            "drop one of them")  # fmt: skip
    return pack
