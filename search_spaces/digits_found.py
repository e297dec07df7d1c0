"""`digits-found`: the configuration the `digits` search found, one trial per seed.

Found by `infogan-study search --space digits --dataset mnist --objective gen/cat_acc:max
--num-samples 8 --startup-trials 4 --batch-size 128 --steps 1200 --set precision=bf16` (README,
"Reproducing the seeds' findings"): the paper's MNIST model with fewer noise dimensions (39
instead of 62) and the continuous codes weighted 0.62 in L_I. Its trial reached generator-side
accuracy 0.946 after 900 steps; the paper's configuration stood at 0.61-0.75 after 750-1,000
steps (4 seeds). Replicate it at the paper's budget: `--seeds 3 --batch-size 128 --steps 5000`.
"""

from __future__ import annotations

from typing import Any

DESCRIPTION = (
    "what the digits search found on MNIST (noise_dim 39, lambda 0.916, cont_weight 0.618); "
    "--batch-size 128 --steps 5000"
)


def space() -> dict[str, Any]:
    return {
        "noise_dim": 39, "n_cat_codes": 1, "cat_dim": 10, "n_cont_codes": 2,
        "lambda_info": 0.916, "cont_weight": 0.618, "lr_d": 2e-4, "lr_g": 1e-3, "beta1": 0.5,
    }  # fmt: skip
