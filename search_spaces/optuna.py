"""`optuna`: a continuous/integer space for Optuna's TPE sampler.

Searches noise_dim (down to 0: codes only), the number of continuous codes (0-4), the
bidirectional switch, the information weight and the continuous/categorical ratio, K (the
categorical code's size), instance noise and its annealing, and the learning rates. The
categorical code stays one (n_cat_codes = 1), so mi/cat and gen/cat_acc compare across trials;
vary it with `--set n_cat_codes=N` for the whole search. Integer bounds are inclusive of the lower
and exclusive of the upper (tune.randint), which OptunaSearch turns into Optuna's IntDistribution.
"""

from __future__ import annotations

from typing import Any

from ray import tune

DESCRIPTION = (
    "TPE space: lambda, cont_weight, K, continuous code count (one categorical code), noise_dim, instance noise, "
    "lr_d, lr_g, bidirectional"
)


def space() -> dict[str, Any]:
    return {
        "lambda_info": tune.uniform(0.0, 2.0),
        "cont_weight": tune.loguniform(0.05, 2.0),
        "cat_dim": tune.randint(5, 31),
        "n_cont_codes": tune.randint(0, 5),
        "noise_dim": tune.randint(0, 129),
        "bidirectional": tune.choice([False, True]),
        "instance_noise": tune.uniform(0.0, 0.4),
        "instance_noise_steps": tune.randint(0, 5001),
        "lr_d": tune.loguniform(5e-5, 1e-3),
        "lr_g": tune.loguniform(1e-4, 3e-3),
    }
