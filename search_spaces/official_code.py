"""`official-code`: two choices of the official InfoGAN code that papers do not state.

The official code (openai/InfoGAN) draws the noise z ~ U(-1, 1) and keeps Q's layers in D's
variable scope, so D's optimiser (lr 2e-4) trains Q's head. Many reimplementations draw
z ~ N(0, 1) and train Q's head with G's optimiser (lr 1e-3). On MNIST this decides whether the
categorical code comes to mean the digit: with 62 N(0, 1) noise dimensions the noise carries
about three times the energy of U(-1, 1) noise against the one-hot code at G's input. Run it with
the paper's model and budget (`--batch-size 128 --steps 5000`, or 2000 steps for a first look)
and read gen/cat_acc.
"""

from __future__ import annotations

from typing import Any

from ray import tune

DESCRIPTION = (
    "noise_dist uniform/normal x q_update d/g: the official code's choices "
    "(MNIST: only uniform z ties the code to the digit)"
)


def space() -> dict[str, Any]:
    return {"noise_dist": tune.grid_search(["uniform", "normal"]), "q_update": tune.grid_search(["d", "g"])}
