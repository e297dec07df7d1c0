"""`categories`: the categorical code's size K around and beyond the true number of classes.

With K below the class count InfoGAN must merge classes; above it, it splits them or leaves
categories unused. mi/cat is normalised by ln K, so runs with different K compare on one scale.
"""

from __future__ import annotations

from typing import Any

from ray import tune

DESCRIPTION = "categorical code size K in {5, 8, 10, 12, 15, 20, 30} (true class count: 10 for MNIST)"


def space() -> dict[str, Any]:
    return {"cat_dim": tune.grid_search([5, 8, 10, 12, 15, 20, 30])}
