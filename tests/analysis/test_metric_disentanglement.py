"""Known answers of the ground-truth disentanglement metrics (MIG, DCI, SAP, FactorVAE, BetaVAE).

The dataset's observations are its factors, shaped as (n, F, 1, 1) images, so the identity
representation is perfectly disentangled, a constant one knows nothing, and a duplicated one
captures every factor twice.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.metrics import (
    compute_beta_vae,
    compute_dci,
    compute_factor_vae,
    compute_factor_vae_many,
    compute_mig,
    compute_sap,
)
from analysis.metrics.dci import _completeness, _disentanglement
from trainables.errors import BadInputError


class FactorImages:
    """Ground truth whose observations are the factor values themselves: (n, F, 1, 1) float32."""

    def __init__(self, values: list[int]) -> None:
        self.factors_num_values = values
        self.num_factors = len(values)
        self.observation_shape = (len(values), 1, 1)

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(v, size=num) for v in self.factors_num_values], axis=1)

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(factors, dtype=np.float32).reshape(len(factors), -1, 1, 1)


def identity(observations: np.ndarray) -> np.ndarray:
    return observations.reshape(len(observations), -1)


def constant(observations: np.ndarray) -> np.ndarray:
    return np.zeros((len(observations), 3))


def duplicated(observations: np.ndarray) -> np.ndarray:
    return np.repeat(identity(observations), 2, axis=1)  # codes (f0, f0, f1, f1, f2, f2)


def mixed(observations: np.ndarray) -> np.ndarray:
    """Every code is an equal-weight blend of all factors (plus a small distinct term)."""
    codes = identity(observations)
    return codes.sum(axis=1, keepdims=True) + 0.01 * codes


def merged(observations: np.ndarray) -> np.ndarray:
    """Codes (f0 + f1, f2): factors 0 and 1 share a code and cannot be told apart."""
    codes = identity(observations)
    return np.stack([codes[:, 0] + codes[:, 1], codes[:, 2]], axis=1)


DATA = FactorImages([4, 5, 6])


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --- MIG ---------------------------------------------------------------------------------------
def test_mig_identity_is_near_one_constant_and_duplicated_near_zero() -> None:
    assert compute_mig(DATA, identity, rng(), num_train=2000)["mig"] > 0.95
    assert compute_mig(DATA, constant, rng(), num_train=2000)["mig"] == pytest.approx(0.0, abs=1e-9)
    assert compute_mig(DATA, duplicated, rng(), num_train=2000)["mig"] == pytest.approx(0.0, abs=1e-9)


def test_mig_is_reproducible_from_the_seed() -> None:
    noisy = lambda x: identity(x) + np.random.default_rng(len(x)).normal(size=(len(x), 3))  # noqa: E731
    first = compute_mig(DATA, noisy, rng(), num_train=500)
    assert first == compute_mig(DATA, noisy, rng(), num_train=500)
    assert 0.0 < first["mig"] < 0.95


# --- DCI closed forms --------------------------------------------------------------------------
def test_dci_closed_forms_on_hand_built_importances() -> None:
    diagonal = np.diag(5.0 * np.ones(5))
    assert _disentanglement(diagonal) == pytest.approx(1.0)
    assert _completeness(diagonal) == pytest.approx(1.0)
    uniform = np.ones((5, 5))
    assert _disentanglement(uniform) == pytest.approx(0.0, abs=1e-9)
    assert _completeness(uniform) == pytest.approx(0.0, abs=1e-9)
    assert _disentanglement(np.zeros((4, 4))) == pytest.approx(0.0, abs=1e-9)
    # two codes per factor: completeness loses log 2 of log 10 bits, disentanglement stays 1
    redundant = np.vstack([diagonal, diagonal])
    assert _disentanglement(redundant) == pytest.approx(1.0)
    assert _completeness(redundant) == pytest.approx(1.0 - np.log(2) / np.log(10))
    # one code for two factors: the mirror image
    shared = np.hstack([diagonal, diagonal])
    assert _disentanglement(shared) == pytest.approx(1.0 - np.log(2) / np.log(10))
    assert _completeness(shared) == pytest.approx(1.0)
    # an unused code carries no weight
    assert _disentanglement(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])) == pytest.approx(1.0)


def test_dci_identity_scores_one_and_constant_zero() -> None:
    good = compute_dci(DATA, identity, rng(), num_train=600, num_test=300)
    assert good["disentanglement"] > 0.95 and good["completeness"] > 0.95
    assert good["informativeness_test"] > 0.95
    bad = compute_dci(DATA, constant, rng(), num_train=600, num_test=300)
    assert bad["disentanglement"] < 0.05 and bad["completeness"] < 0.05
    assert bad["informativeness_test"] < 0.4  # chance for factors of 4-6 values


def test_dci_mixed_codes_are_not_disentangled() -> None:
    scores = compute_dci(DATA, mixed, rng(), num_train=600, num_test=300)
    assert scores["disentanglement"] < 0.7


def test_dci_duplicated_codes_halve_completeness_and_keep_disentanglement() -> None:
    # GradientBoostingClassifier visits features in a random order, so splits on two equal copies
    # of a code share the importance about evenly: completeness ~ 1 - log 2 / log 6 (6 codes),
    # as in disentanglement_lib (the reference arrays' `duplicated` case checks the same).
    scores = compute_dci(DATA, duplicated, rng(), num_train=600, num_test=300)
    assert scores["disentanglement"] > 0.95
    assert scores["completeness"] == pytest.approx(1.0 - np.log(2) / np.log(6), abs=0.05)


def test_dci_does_not_depend_on_the_number_of_processes() -> None:
    serial = compute_dci(DATA, mixed, rng(), num_train=300, num_test=100, n_jobs=1)
    assert serial == compute_dci(DATA, mixed, rng(), num_train=300, num_test=100, n_jobs=2)


# --- SAP ---------------------------------------------------------------------------------------
def test_sap_identity_reaches_one_minus_chance_constant_zero() -> None:
    binary = FactorImages([2, 2, 2])  # best code accuracy 1, others at chance 1/2: SAP ~ 0.5
    assert compute_sap(binary, identity, rng(), num_train=500, num_test=500)["sap"] == pytest.approx(0.5, abs=0.06)
    assert compute_sap(binary, constant, rng(), num_train=500, num_test=500)["sap"] == pytest.approx(0.0, abs=1e-9)
    assert compute_sap(binary, duplicated, rng(), num_train=500, num_test=500)["sap"] == pytest.approx(0.0, abs=1e-9)


# --- FactorVAE ---------------------------------------------------------------------------------
FACTOR_VAE_QUICK = {"num_train": 300, "num_eval": 200, "num_variance_estimate": 1000}


def test_factor_vae_identity_one_constant_zero() -> None:
    good = compute_factor_vae(DATA, identity, rng(), **FACTOR_VAE_QUICK)
    assert good == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3.0}
    bad = compute_factor_vae(DATA, constant, rng(), **FACTOR_VAE_QUICK)
    assert bad == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}


def test_factor_vae_prunes_collapsed_codes() -> None:
    with_dead_code = lambda x: np.hstack([identity(x), np.full((len(x), 1), 7.0)])  # noqa: E731
    scores = compute_factor_vae(DATA, with_dead_code, rng(), **FACTOR_VAE_QUICK)
    assert scores["num_active_dims"] == 3.0 and scores["eval_accuracy"] == 1.0


def test_factor_vae_many_shares_samples_and_matches_the_single_call() -> None:
    many = compute_factor_vae_many(DATA, [identity, merged], rng(), **FACTOR_VAE_QUICK)
    assert many[0] == compute_factor_vae(DATA, identity, rng(), **FACTOR_VAE_QUICK)
    # factors 0 and 1 both vote for code 0, which the classifier maps to one of them: 2/3 correct
    assert many[1]["eval_accuracy"] == pytest.approx(2 / 3, abs=0.08)


# --- BetaVAE -----------------------------------------------------------------------------------
def test_beta_vae_identity_one_constant_at_chance() -> None:
    good = compute_beta_vae(DATA, identity, rng(), num_train=300, num_eval=200)
    assert good["eval_accuracy"] > 0.97
    bad = compute_beta_vae(DATA, constant, rng(), num_train=300, num_eval=200)
    assert bad["eval_accuracy"] < 1 / 3 + 0.1  # all-zero features: chance over 3 factors


# --- input checks ------------------------------------------------------------------------------
def test_bad_representation_and_counts_raise_one_line_errors() -> None:
    flat = lambda x: np.zeros(len(x))  # noqa: E731
    with pytest.raises(BadInputError, match="must return"):
        compute_mig(DATA, flat, rng(), num_train=100)
    with pytest.raises(BadInputError, match="NaN/inf"):
        compute_sap(DATA, lambda x: np.full((len(x), 2), np.nan), rng(), num_train=100, num_test=100)
    with pytest.raises(BadInputError, match="num_train"):
        compute_dci(DATA, identity, rng(), num_train=1)
    with pytest.raises(BadInputError, match="batch_size"):
        compute_factor_vae(DATA, identity, rng(), batch_size=1)
