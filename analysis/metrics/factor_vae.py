"""The FactorVAE disentanglement score.

Based on Kim & Mnih 2018, "Disentangling by Factorising" (https://arxiv.org/abs/1802.05983),
Sec. 4, in disentanglement_lib's form (evaluation/metrics/factor_vae.py). Each vote draws a
batch of `batch_size` observations that share the value of one random factor k; the codes are
divided by their global variance (estimated on `num_variance_estimate` i.i.d. points) and the code
d with the least normalised variance in the batch casts the vote (d, k). A majority-vote classifier
maps each code to the factor it votes for most; the score is its accuracy on fresh votes. Codes
whose global standard deviation is below `prune_threshold` (disentanglement_lib's gin configs:
0.05, compared with the standard deviation, not the variance) are pruned first, so a collapsed or
constant representation scores 0.

Sampling is vectorised: `observations_per_call // batch_size` votes are drawn per call of the
representation function, which matters at the protocol's 10k + 5k votes of 64 observations.
`compute_factor_vae_many` scores several representations on the same samples of one dataset;
ModelCentrality uses it so each model's generator renders its samples once for all encoders.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analysis.metrics._sampling import GroundTruthData, RepresentationFn, check_count, represent


def compute_factor_vae(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
    observations_per_call: int = 4096,
) -> dict[str, float]:
    """FactorVAE score: `train_accuracy`, `eval_accuracy` (the score), `num_active_dims`."""
    return compute_factor_vae_many(
        data,
        [represent_fn],
        rng,
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
        prune_threshold=prune_threshold,
        observations_per_call=observations_per_call,
    )[0]


def compute_factor_vae_many(
    data: GroundTruthData,
    represent_fns: Sequence[RepresentationFn],
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
    observations_per_call: int = 4096,
) -> list[dict[str, float]]:
    """FactorVAE scores of several representations, all voting on the same sampled batches."""
    check_count("batch_size", batch_size, minimum=2)
    check_count("num_train", num_train)
    check_count("num_eval", num_eval)
    check_count("num_variance_estimate", num_variance_estimate, minimum=2)
    check_count("observations_per_call", observations_per_call)
    variances = _global_variances(
        data, represent_fns, rng, num_points=num_variance_estimate, chunk=observations_per_call
    )
    active = [np.sqrt(v) >= prune_threshold for v in variances]
    options = {"batch_size": batch_size, "groups_per_call": max(1, observations_per_call // batch_size)}
    train_votes = _sample_votes(data, represent_fns, rng, variances, active, num_votes=num_train, **options)
    eval_votes = _sample_votes(data, represent_fns, rng, variances, active, num_votes=num_eval, **options)
    return [_vote_scores(t, e, a) for t, e, a in zip(train_votes, eval_votes, active, strict=True)]


def _global_variances(
    data: GroundTruthData,
    represent_fns: Sequence[RepresentationFn],
    rng: np.random.Generator,
    *,
    num_points: int,
    chunk: int,
) -> list[np.ndarray]:
    """Per representation, the variance of each code over i.i.d. points: list of (num_codes,)."""
    codes: list[list[np.ndarray]] = [[] for _ in represent_fns]
    for start in range(0, num_points, chunk):
        factors = data.sample_factors(min(chunk, num_points - start), rng)
        observations = data.sample_observations_from_factors(factors, rng)  # (n, C, H, W)
        for per_fn, fn in zip(codes, represent_fns, strict=True):
            per_fn.append(represent(fn, observations))
    return [np.var(np.concatenate(c), axis=0, ddof=1) for c in codes]


def _sample_votes(
    data: GroundTruthData,
    represent_fns: Sequence[RepresentationFn],
    rng: np.random.Generator,
    variances: list[np.ndarray],
    active: list[np.ndarray],
    *,
    num_votes: int,
    batch_size: int,
    groups_per_call: int,
) -> list[np.ndarray]:
    """Votes (num_factors, num_codes) per representation from `num_votes` fixed-factor batches."""
    num_factors = data.num_factors
    votes = [np.zeros((num_factors, v.shape[0]), dtype=np.int64) for v in variances]
    for start in range(0, num_votes, groups_per_call):
        groups = min(groups_per_call, num_votes - start)
        fixed = rng.integers(num_factors, size=groups)  # (G,) the factor each batch shares
        factors = np.array(data.sample_factors(groups * batch_size, rng), dtype=np.int64)
        factors = factors.reshape(groups, batch_size, num_factors)
        rows = np.arange(groups)
        factors[rows, :, fixed] = factors[rows, 0, fixed][:, None]  # (G, B) <- first item's value
        observations = data.sample_observations_from_factors(factors.reshape(-1, num_factors), rng)
        for i, fn in enumerate(represent_fns):
            if active[i].any():
                codes = represent(fn, observations).reshape(groups, batch_size, -1)  # (G, B, D)
                votes[i] += _votes(codes, fixed, variances[i], active[i], num_factors=num_factors)
    return votes


def _votes(
    codes: np.ndarray, fixed: np.ndarray, variances: np.ndarray, active: np.ndarray, *, num_factors: int
) -> np.ndarray:
    """codes (G, B, D), fixed factor per batch (G,), global variances (D,), active mask (D,) -> votes (F, D)."""
    assert codes.ndim == 3 and fixed.shape == (codes.shape[0],)
    assert variances.shape == active.shape == (codes.shape[2],) and active.any()
    active_index = np.flatnonzero(active)
    local = np.var(codes[:, :, active_index], axis=1, ddof=1)  # (G, num_active)
    lowest = active_index[np.argmin(local / variances[active_index], axis=1)]  # (G,) code index
    votes = np.zeros((num_factors, codes.shape[2]), dtype=np.int64)
    np.add.at(votes, (fixed, lowest), 1)
    return votes


def _vote_scores(train_votes: np.ndarray, eval_votes: np.ndarray, active: np.ndarray) -> dict[str, float]:
    """Majority-vote classifier code -> factor from train votes (F, D); its accuracy on both sets."""
    assert train_votes.shape == eval_votes.shape and train_votes.shape[1] == active.shape[0]
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}
    classifier = np.argmax(train_votes, axis=0)  # (D,) factor predicted from each code
    codes = np.arange(train_votes.shape[1])
    return {
        "train_accuracy": float(train_votes[classifier, codes].sum() / train_votes.sum()),
        "eval_accuracy": float(eval_votes[classifier, codes].sum() / eval_votes.sum()),
        "num_active_dims": float(active.sum()),
    }
