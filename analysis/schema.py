"""The parquet interface between collection (`infogan-study analyze`) and reporting
(`infogan-study report`). Reports read only these files; each carries its schema name and version
in the parquet metadata key `infogan-study.schema`, and readers refuse other versions.

trials.parquet    one row per trial: identity, every InfoGANConfig field as a typed column (named
                  exactly like the field), status, scores, failure flags, checkpoint location.
curves.parquet    long format: (trial_id, step, metric, value) for every reported series.
selection.parquet ModelCentrality (InfoGAN-CR) pairwise scores, long format per pool of models.
traversals.parquet the latent traversal grids (PNG) of the trials the report shows, drawn by
                  `analyze` from their checkpoints, so the report reads nothing but parquet.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trainables.config import InfoGANConfig
from trainables.errors import BadInputError

# 2: generator-side gen/* scores; Q's scores renamed score/* -> q/*. 3: `model_kind` (was `variant`),
# `variant` is now the search space's label; config columns: no `arch`, new `sgd_momentum`.
# 4: label-free signals selection/q_balance, q_confidence, q_info and the pick's selection/score;
# trials.parquet's metadata says whether labels were used and which signal the pick maximises.
SCHEMA_VERSION = 4
METADATA_KEY = b"infogan-study.schema"
ANALYSIS_KEY = b"infogan-study.analysis"  # JSON: how analyze ran (`labels`, `pick_signal`), on trials.parquet

_PA_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
CONFIG_COLUMNS = [
    pa.field(f.name, _PA_TYPES[typing.get_type_hints(InfoGANConfig)[f.name]]) for f in dataclasses.fields(InfoGANConfig)
]

# Scores: float64, NaN where not applicable (e.g. no categorical code, no evaluator) or not computed.
SCORE_COLUMNS = [
    # the headline, generator-side (analysis/metrics/generator_codes.py): G's latent traversals read by
    # an evaluator independent of the model (analysis/evaluators.py)
    "gen/cat_acc", "gen/cat_nmi", "gen/cont_effect", "gen/cont_gap", "gen/valid", "gen/reader_acc",
    # the ranking's disentanglement: gen/cat_acc
    "score/disentanglement",
    # Q's (or E's) first categorical code clustering held-out real images vs. their labels
    # (the InfoGAN paper's "5% error" protocol): a property of Q, not of what G does with the code
    "q/real_hungarian_acc", "q/real_many_to_one_acc", "q/real_nmi", "q/real_ari",
    # ground-truth data: Q's codes (categorical argmax + continuous means) as a representation
    "q/mig", "q/dci_disentanglement", "q/dci_completeness", "q/dci_informativeness",
    "q/sap", "q/factor_vae", "q/beta_vae",
    # MI curve of the normalised categorical bound
    "mi/final", "mi/max", "mi/step_0.9", "mi/auc",
    # sample quality in the feature space of the project's own classifier
    "quality/fd", "quality/class_coverage", "quality/purity", "quality/inception_fid",
    # label-free model selection (analysis/selection.py): per model, Q on real images; per population;
    # and the signal the label-free pick maximises among the candidates (NaN for the others)
    "selection/q_balance", "selection/q_confidence", "selection/q_info",
    "selection/centrality", "selection/mean_pairwise_nmi", "selection/score",
    # failure flags' first steps (NaN: never)
    "flag/diverged_step", "flag/d_overconfident_step", "flag/mode_collapse_step", "flag/mi_stuck_step",
]  # fmt: skip
SCORE_DESCRIPTIONS = {  # one sentence per score, shown by the report
    "gen/cat_acc": "How well each categorical code's value decides a factor of G's images: Hungarian accuracy "
                   "between the code and what an independent evaluator reads off G's traversals (1/K: G ignores it).",
    "gen/cat_nmi": "The same dependence as normalised mutual information between code value and factor read off.",
    "gen/cont_effect": "How strongly each continuous code moves one attribute of G's images along a traversal "
                       "(|Spearman| with the code value, same direction in every row).",
    "gen/cont_gap": "How much more a continuous code moves its attribute than any other code does (MIG-style gap).",
    "gen/valid": "The share of G's traversal images the evaluator could read at all (procedural data: a clean "
                 "image of the dataset; noise scores 0).",
    "gen/reader_acc": "The evaluator's own accuracy on real held-out images with known factors: how far to trust "
                      "gen/*.",
    "q/real_hungarian_acc": "Q's categorical code clustering held-out real images, Hungarian accuracy against their "
                            "labels (the InfoGAN paper's '5% error'): a property of Q, which can read real images "
                            "even when G ignores its code.",
    "quality/fd": "Fréchet distance between real and generated images in the dataset classifier's features "
                  "(lower is more realistic).",
    "mi/final": "The last reported lower bound on I(c; G(z, c)) over H(c): Q's training signal, which can be high "
                "while the code means something other than the factor.",
    "selection/q_balance": "How evenly Q spreads real images over its K categories (entropy of the shares of "
                           "their most likely category, over ln K): a category shared by two digits holds twice "
                           "its share; no labels used.",
    "selection/q_confidence": "How sure Q is of real images' category (mean highest probability; 1/K: no idea); "
                              "no labels used.",
    "selection/q_info": "Balance and confidence at once: the mutual information between a real image and Q's "
                        "category, over ln K (the RIM clustering criterion); no labels used.",
    "selection/centrality": "ModelCentrality (InfoGAN-CR): how well the other models' Q read this model's "
                            "generator (FactorVAE votes on its codes), without labels.",
    "selection/mean_pairwise_nmi": "Agreement between seeds (UDR-style): the mean NMI between this model's "
                                   "assignment of real images and the other candidates'; no labels used.",
    "selection/score": "The signal the label-free pick maximises, on the candidates (final MI bound >= 0.5).",
}  # fmt: skip
FLAG_COLUMNS = ["flag/diverged", "flag/d_overconfident", "flag/mode_collapse", "flag/mi_stuck"]

TRIALS_SCHEMA = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("experiment", pa.string()),
        pa.field("group", pa.string()),  # stable id of the configuration without the seed
        pa.field("group_label", pa.string()),  # readable: model kind + what differs from the defaults
        pa.field("model_kind", pa.string()),  # InfoGANConfig.model_kind: gan, infogan, bi-infogan, ...
        pa.field("variant", pa.string()),  # the search space's label of the trial ('' if its space has none)
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

TRAVERSALS_SCHEMA = pa.schema(
    [
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("code", pa.string()),  # 'cat0', 'cont1', ... or 'samples' for a model without codes ('' with a note)
        pa.field("png", pa.binary()),  # the grid: rows of fixed noise, columns the code's values (null with a note)
        pa.field("width", pa.int64()),  # the PNG's width in pixels
        pa.field("note", pa.string()),  # why the trial has no grid ('' when drawn)
    ]
)

SCHEMAS = {
    "trials": TRIALS_SCHEMA, "curves": CURVES_SCHEMA, "selection": SELECTION_SCHEMA, "traversals": TRAVERSALS_SCHEMA,
}  # fmt: skip


def _tag(name: str) -> bytes:
    return f"{name}/{SCHEMA_VERSION}".encode()


def write_table(table: pa.Table, name: str, path: str | Path, *, analysis: dict | None = None) -> None:
    """Write `table` (cast to the named schema) atomically, tagged with the schema version, and with
    `analysis` (how analyze ran, JSON) in its metadata when given."""
    schema = SCHEMAS[name]
    metadata = {METADATA_KEY: _tag(name)} | ({ANALYSIS_KEY: json.dumps(analysis).encode()} if analysis else {})
    table = table.select(schema.names).cast(schema).replace_schema_metadata(metadata)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def _unreadable(path: Path, err: BaseException) -> BadInputError:
    why = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
    return BadInputError(f"{path} is not a readable parquet file ({why}); run `infogan-study analyze` again")


def read_table(name: str, path: str | Path) -> pa.Table:
    """Read a parquet file written by `write_table`, refusing a missing file or another schema version."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path} not found; run `infogan-study analyze` on the experiment first")
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError) as err:  # truncated, overwritten, not parquet at all
        raise _unreadable(path, err) from None
    tag = meta.get(METADATA_KEY)
    if tag != _tag(name):
        found = tag.decode() if tag else "none"
        raise BadInputError(
            f"{path} has schema {found}, this version reads {name}/{SCHEMA_VERSION}; re-run `infogan-study analyze`"
        )
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as err:  # a sound footer over damaged data pages
        raise _unreadable(path, err) from None


def read_analysis(table: pa.Table) -> dict:
    """How analyze ran, from a table read by `read_table` ({} if it did not say)."""
    raw = (table.schema.metadata or {}).get(ANALYSIS_KEY)
    return json.loads(raw) if raw else {}
