"""`digits-population`: `digits-found` under both places of Q's head, for many seeds.

On MNIST at the paper's budget the outcome of one configuration is close to two-valued across
seeds (every category finds its own digit: 0.94-0.98 generator-side; or two or three digits
share a category: 0.78-0.91). This space trains a population of such models to ask which
configuration succeeds most often, and whether a label-free signal picks the good seeds:
`digits-found` with Q's head in D's optimiser (`q_update=d`, the official code) and in G's
(`q_update=g`). Run it with `--seeds 6 --batch-size 128 --steps 5000` (12 trials).
"""

from __future__ import annotations

from typing import Any

from ray import tune

from search_spaces.digits_found import space as digits_found

DESCRIPTION = (
    "digits-found x q_update in {d, g}: a seed population for validating the label-free pick; "
    "--seeds 6 --batch-size 128 --steps 5000"
)


def space() -> dict[str, Any]:
    return {**digits_found(), "q_update": tune.grid_search(["d", "g"])}
