"""The parquet interface between collection (`infogan-study analyze`) and reporting
(`infogan-study report`). Reports read only these files; each carries its schema name and version
in the parquet metadata key `infogan-study.schema`, and readers refuse other versions.

trials.parquet    one row per trial: identity, every InfoGANConfig field as a typed column (named
                  exactly like the field), status, scores, failure flags, checkpoint location.
curves.parquet    long format: (trial_id, step, metric, value) for every reported series.
selection.parquet ModelCentrality (InfoGAN-CR) pairwise scores, long format per pool of models.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trainables.config import InfoGANConfig
from trainables.errors import BadInputError

SCHEMA_VERSION = 1
METADATA_KEY = b"infogan-study.schema"

_PA_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
CONFIG_COLUMNS = [
    pa.field(f.name, _PA_TYPES[typing.get_type_hints(InfoGANConfig)[f.name]])
    for f in dataclasses.fields(InfoGANConfig)
]

# Scores: float64, NaN where not applicable (e.g. no categorical code, no labels) or not computed.
SCORE_COLUMNS = [
    # labelled data: Q's (or E's) first categorical code on held-out real images vs. the labels
    "score/hungarian_acc", "score/many_to_one_acc", "score/nmi", "score/ari",
    # ground-truth data: Q's codes (categorical argmax + continuous means) as the representation
    "score/mig", "score/dci_disentanglement", "score/dci_completeness", "score/dci_informativeness",
    "score/sap", "score/factor_vae", "score/beta_vae",
    # headline disentanglement: hungarian_acc on labelled sets, else factor_vae
    "score/disentanglement",
    # MI curve of the normalised categorical bound
    "mi/final", "mi/max", "mi/step_0.9", "mi/auc",
    # sample quality in the feature space of the project's own classifier
    "quality/fd", "quality/class_coverage", "quality/purity", "quality/inception_fid",
    # label-free model selection
    "selection/centrality", "selection/mean_pairwise_nmi",
    # failure flags' first steps (NaN: never)
    "flag/diverged_step", "flag/d_overconfident_step", "flag/mode_collapse_step", "flag/mi_stuck_step",
]  # fmt: skip
FLAG_COLUMNS = ["flag/diverged", "flag/d_overconfident", "flag/mode_collapse", "flag/mi_stuck"]

TRIALS_SCHEMA = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("experiment", pa.string()),
        pa.field("group", pa.string()),  # stable id of the configuration without the seed
        pa.field("group_label", pa.string()),  # readable: variant + what differs from the defaults
        pa.field("variant", pa.string()),  # InfoGANConfig.variant
        pa.field("status", pa.string()),  # completed | diverged | error | running | pending | unscored
        pa.field("reason", pa.string()),  # why not completed / not scored ('' when fine)
        pa.field("last_step", pa.int64()),  # last reported step (`steps` is the configured length)
        pa.field("checkpoint", pa.string()),  # scored checkpoint directory ('' if none)
        *CONFIG_COLUMNS,
        *[pa.field(c, pa.float64()) for c in SCORE_COLUMNS],
        *[pa.field(c, pa.bool_()) for c in FLAG_COLUMNS],
        pa.field("failure_reason", pa.string()),  # one line, '' when healthy
        pa.field("quality/inception_fid_note", pa.string()),  # why Inception FID was not computed
        pa.field("scoring_s", pa.float64()),  # seconds spent scoring this trial
    ]
)

CURVES_SCHEMA = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("step", pa.int64()),
        pa.field("metric", pa.string()),
        pa.field("value", pa.float64()),
    ]
)

SELECTION_SCHEMA = pa.schema(
    [
        pa.field("pool", pa.string()),  # a group id, or "all" (one model per group)
        pa.field("data_trial", pa.string()),  # model i: generates the data, codes as factors
        pa.field("rep_trial", pa.string()),  # model j: its Q is scored on model i's data
        pa.field("factor_vae", pa.float64()),  # S[i, j]
    ]
)

SCHEMAS = {"trials": TRIALS_SCHEMA, "curves": CURVES_SCHEMA, "selection": SELECTION_SCHEMA}


def _tag(name: str) -> bytes:
    return f"{name}/{SCHEMA_VERSION}".encode()


def write_table(table: pa.Table, name: str, path: str | Path) -> None:
    """Write `table` (cast to the named schema) atomically, tagged with the schema version."""
    schema = SCHEMAS[name]
    table = table.select(schema.names).cast(schema).replace_schema_metadata({METADATA_KEY: _tag(name)})
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_table(name: str, path: str | Path) -> pa.Table:
    """Read a parquet file written by `write_table`, refusing a missing file or another schema version."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path} not found; run `infogan-study analyze` on the experiment first")
    meta = pq.read_schema(path).metadata or {}
    tag = meta.get(METADATA_KEY)
    if tag != _tag(name):
        found = tag.decode() if tag else "none"
        raise BadInputError(
            f"{path} has schema {found}, this version reads {name}/{SCHEMA_VERSION}; re-run `infogan-study analyze`"
        )
    return pq.read_table(path)
