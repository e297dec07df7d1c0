"""`infogan-paper`: the InfoGAN paper's MNIST configuration, one trial per seed.

Chen et al. 2016 (https://arxiv.org/abs/1606.03657), Appendix C.1 and the official code: one
10-way categorical and two U(-1, 1) continuous codes with 62 noise dimensions, lambda = 1,
Adam with beta1 = 0.5, D lr 2e-4, G lr 1e-3, batch 128, 50 epochs of 100 updates (5,000 steps).
Replicate it with `--seeds N`, and give the paper's budget on the command line (shared with
every trial, so a shorter budget is one flag away): `--batch-size 128 --steps 5000`.
"""

from __future__ import annotations

from typing import Any

DESCRIPTION = (
    "the InfoGAN paper's MNIST model (lambda 1, D lr 2e-4, G lr 1e-3); its budget: --batch-size 128 --steps 5000"
)


def space() -> dict[str, Any]:
    return {
        "noise_dim": 62, "n_cat_codes": 1, "cat_dim": 10, "n_cont_codes": 2,
        "lambda_info": 1.0, "lr_d": 2e-4, "lr_g": 1e-3, "beta1": 0.5,
    }  # fmt: skip
