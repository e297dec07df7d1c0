"""Metrics of a trained InfoGAN: disentanglement, clustering, sample quality, selection, failures.

One metric per module, in disentanglement_lib's shape: a public `compute_x(data, represent_fn,
rng, *, num_train, ...)` samples from a ground-truth dataset (`GroundTruthData`) through a
representation function (observations (num, C, H, W) -> codes (num, num_codes)) with an explicit
`np.random.Generator`, a private numpy core does the arithmetic, and the result is a dict of
named floats. The other modules score arrays the caller already has (cluster ids, reported
curves, feature sets, classifier outputs).

The public surface is this package's `__all__`; the rest of the project imports from here. The
private cores (`_compute_x(codes, factors)` and the like, shapes stated and asserted) are each
module's tested pure-numpy layer: the known-answer tests import them from their module, as
disentanglement_lib's tests do; product code does not. `_sampling` is the modules' shared private
helper (the ground-truth interface is re-exported here).
"""

from __future__ import annotations

from analysis.metrics._sampling import GroundTruthData, RepresentationFn
from analysis.metrics._sampling import represent as represent_codes
from analysis.metrics.beta_vae import compute_beta_vae
from analysis.metrics.clustering import compute_clustering_scores
from analysis.metrics.code_usage import compute_code_usage
from analysis.metrics.dci import compute_dci
from analysis.metrics.factor_vae import compute_factor_vae, compute_factor_vae_many
from analysis.metrics.failure_flags import compute_failure_flags
from analysis.metrics.frechet import compute_frechet_distance
from analysis.metrics.generator_codes import (
    UNREADABLE,
    FactorReader,
    TraverseFn,
    compute_generator_scores,
    image_moments,
)
from analysis.metrics.mi_curve import compute_mi_curve_summary
from analysis.metrics.mig import compute_mig
from analysis.metrics.model_centrality import (
    CentralityDesign,
    CentralityResult,
    centrality_from_scores,
    centrality_score,
    compute_model_centrality,
    mean_pairwise_nmi,
    sample_centrality_design,
)
from analysis.metrics.quality import (
    FeatureClassifier,
    compute_sample_quality,
    inception_fid,
    load_classifier,
    load_or_train_classifier,
    predict_classes,
    purity_per_category,
)
from analysis.metrics.sap import compute_sap

__all__ = [
    "UNREADABLE",
    "CentralityDesign",
    "CentralityResult",
    "FactorReader",
    "FeatureClassifier",
    "GroundTruthData",
    "RepresentationFn",
    "TraverseFn",
    "centrality_from_scores",
    "centrality_score",
    "compute_beta_vae",
    "compute_clustering_scores",
    "compute_code_usage",
    "compute_dci",
    "compute_factor_vae",
    "compute_factor_vae_many",
    "compute_failure_flags",
    "compute_frechet_distance",
    "compute_generator_scores",
    "compute_mi_curve_summary",
    "compute_mig",
    "compute_model_centrality",
    "compute_sample_quality",
    "compute_sap",
    "image_moments",
    "inception_fid",
    "load_classifier",
    "load_or_train_classifier",
    "mean_pairwise_nmi",
    "predict_classes",
    "purity_per_category",
    "represent_codes",
    "sample_centrality_design",
]
