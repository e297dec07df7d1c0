"""`lambda-ratio`: the weight of the information term against the continuous/categorical ratio.

L = L_GAN + lambda * (CE_cat + cont_weight * NLL_cont). lambda = 0 is the GAN-with-codes baseline
(G ignores the codes; Q still measures them). Chen et al. 2016 (https://arxiv.org/abs/1606.03657)
use lambda = 1 for categorical codes and a smaller weight for continuous ones; this grid asks how
much either choice matters.
"""

from __future__ import annotations

from typing import Any

from ray import tune

DESCRIPTION = "lambda_info in {0, 0.1, 0.5, 1, 2} x cont_weight (continuous/categorical ratio) in {0.1, 0.4, 1}"


def space() -> dict[str, Any]:
    return {
        "lambda_info": tune.grid_search([0.0, 0.1, 0.5, 1.0, 2.0]),
        "cont_weight": tune.grid_search([0.1, 0.4, 1.0]),
    }
