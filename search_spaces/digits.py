"""`digits`: what ties InfoGAN's categorical code to the digit on MNIST, for Optuna's TPE.

With the paper's model and z ~ U(-1, 1), some seeds' categorical codes come to mean the digit
(generator-side accuracy ~0.97) and others settle on a mix of digits and styles (~0.8: two
digits merged, one split by slant), decided within the first 1,500 steps. The knobs: how much
of G's input is noise rather than code (`noise_dim`), the weight of the information term
(`lambda_info`) and the continuous codes' share of it (`cont_weight`). Search it on the
generator-side probe: `infogan-study search --space digits --dataset mnist --objective gen/cat_acc:max`.
"""

from __future__ import annotations

from typing import Any

from ray import tune

DESCRIPTION = "TPE space for MNIST digits: noise_dim 8-62, lambda_info 0.5-3, cont_weight 0.1-2 (objective gen/cat_acc)"


def space() -> dict[str, Any]:
    return {
        "noise_dim": tune.randint(8, 63),
        "lambda_info": tune.uniform(0.5, 3.0),
        "cont_weight": tune.loguniform(0.1, 2.0),
    }
