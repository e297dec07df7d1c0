"""DCI and SAP against disentanglement_lib's published definitions, on fixed (codes, factors) arrays.

`data/{identity,duplicated,mixed}.npz` are compressed copies of the project's reference arrays
(`mus_train` (num_codes, 10000), `ys_train` (5, 10000), `mus_test` (num_codes, 5000), `ys_test`
(5, 5000); dSprites-like factors with 3, 6, 40, 32, 32 values). `REFERENCE` holds the scores that
disentanglement_lib's own cores gave on them (not values computed by this project): SAP
(`_compute_sap`, continuous_factors=False, raw codes) on the full arrays, DCI (`_compute_dci` with
scikit-learn's GradientBoostingClassifier) on the subsampled arrays, which are the first 3000
train / 1500 test points of the full ones (sliced here rather than stored twice).

  identity:   5 codes, each one factor scaled to [0, 1] plus N(0, 0.02) noise, then 5 noise codes
  duplicated: the 5 informative codes of identity, each present twice
  mixed:      the 5 factor codes mixed by a fixed dense random matrix
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.metrics.dci import _compute_dci
from analysis.metrics.sap import _compute_sap

DATA = Path(__file__).parent / "data"
CASES = ["identity", "duplicated", "mixed"]
SUB_TRAIN, SUB_TEST = 3000, 1500
TOLERANCE = 0.02

REFERENCE = {  # disentanglement_lib's scores on these arrays
    "identity": {
        "sap": 0.1892,
        "dci": {
            "disentanglement": 0.7661400773007888,
            "completeness": 0.7166568872797442,
            "informativeness_train": 0.9955999999999999,
            "informativeness_test": 0.6925333333333333,
        },
    },
    "duplicated": {
        "sap": 0.0,
        "dci": {
            "disentanglement": 0.7106368311188302,
            "completeness": 0.5000867114679154,
            "informativeness_train": 0.991,
            "informativeness_test": 0.6937333333333333,
        },
    },
    "mixed": {
        "sap": 0.05388,
        "dci": {
            "disentanglement": 0.10863271314923237,
            "completeness": 0.11810120271732315,
            "informativeness_train": 0.9566000000000001,
            "informativeness_test": 0.3898666666666667,
        },
    },
}


def load(case: str, *, subsampled: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(codes_train, factors_train, codes_test, factors_test), codes and factors as rows."""
    with np.load(DATA / f"{case}.npz") as arrays:
        train, test = (SUB_TRAIN, SUB_TEST) if subsampled else (None, None)
        return (
            arrays["mus_train"][:, :train],
            arrays["ys_train"][:, :train],
            arrays["mus_test"][:, :test],
            arrays["ys_test"][:, :test],
        )


@pytest.mark.parametrize("case", CASES)
def test_sap_matches_disentanglement_lib_on_the_full_arrays(case: str) -> None:
    codes_train, factors_train, codes_test, factors_test = load(case, subsampled=False)
    assert codes_train.shape[1] == 10_000 and codes_test.shape[1] == 5_000
    sap = _compute_sap(codes_train, factors_train, codes_test, factors_test)["sap"]
    assert sap == pytest.approx(REFERENCE[case]["sap"], abs=TOLERANCE)


@pytest.mark.slow  # ~90 CPU-s per case (100 boosting stages x 113 classes on 3000 points)
@pytest.mark.parametrize("case", CASES)
def test_dci_matches_disentanglement_lib_on_the_subsampled_arrays(case: str) -> None:
    codes_train, factors_train, codes_test, factors_test = load(case, subsampled=True)
    scores = _compute_dci(codes_train, factors_train, codes_test, factors_test, seed=0)
    for name, expected in REFERENCE[case]["dci"].items():
        assert scores[name] == pytest.approx(expected, abs=TOLERANCE), name
