"""`instance-noise`: Gaussian noise on D's inputs, constant or annealed to zero.

Instance noise (Sonderby et al. 2017, https://arxiv.org/abs/1610.04490) makes the real and fake
distributions overlap so D's gradients stay informative; the seed project found it decisive on
the procedural basicprop datasets. Run the space once per dataset to compare:
`--dataset basicprop-line`, `--dataset basicprop-rects` and `--dataset mnist`.
"""

from __future__ import annotations

from typing import Any

from search_spaces import variant_grid

DESCRIPTION = "instance noise std 0 to 0.4, constant or annealed to 0 over 2500 steps (basicprop-line/-rects, mnist)"

LEVELS = (0.05, 0.1, 0.2, 0.4)
ANNEAL_STEPS = 2500  # half of the default run


def space() -> dict[str, Any]:
    variants: dict[str, dict[str, Any]] = {"none": {"instance_noise": 0.0, "instance_noise_steps": 0}}
    for std in LEVELS:
        variants[f"{std}-const"] = {"instance_noise": std, "instance_noise_steps": 0}
        variants[f"{std}-anneal"] = {"instance_noise": std, "instance_noise_steps": ANNEAL_STEPS}
    return variant_grid(variants)
