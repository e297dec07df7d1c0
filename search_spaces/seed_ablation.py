"""`seed-ablation`: the model variants compared by Evtimova & Drozdov, plus Bidirectional-InfoGAN.

Evtimova & Drozdov, "Understanding Mutual Information and its Use in InfoGAN" (2016): vanilla
GAN, GAN with codes but lambda = 0 (G is free to ignore them; Q still measures I(c; G(z, c))),
InfoGAN (1 categorical + 2 continuous codes + noise), InfoGAN with codes only (no noise), InfoGAN
with the categorical code only. Plus Bidirectional-InfoGAN (Hinz & Wermter 2018: an encoder
E(x) -> (z, c) as in BiGAN, Donahue et al. 2017, and D judging (image, latent) pairs).
Each label equals the `InfoGANConfig.model_kind` of the config it produces, unless a `--set` changes
the kind (with `--set noise_dim=0` the `infogan` row trains an `infogan-codes-only` model: the
label names the row, the model kind says what trained). Replicate it with `--seeds N`: the
variance across seeds is the point of the study.
"""

from __future__ import annotations

from typing import Any

from search_spaces import variant_grid

DESCRIPTION = "GAN vs GAN+codes (lambda=0) vs InfoGAN vs codes-only vs categorical-only vs Bidirectional-InfoGAN"

# Bidirectional-InfoGAN first: its step (encoder, pairs judged) costs ~1.6x the others', and Tune
# starts a grid's trials in order, so the slowest run first and a short one ends the sweep instead
# of one slow trial alone on the last slot.
VARIANTS: dict[str, dict[str, Any]] = {
    "bi-infogan": {"bidirectional": True},
    "gan": {"n_cat_codes": 0, "n_cont_codes": 0},
    "gan+codes": {"lambda_info": 0.0},
    "infogan": {},
    "infogan-codes-only": {"noise_dim": 0},
    "infogan-cat-only": {"noise_dim": 0, "n_cont_codes": 0},
}


def space() -> dict[str, Any]:
    return variant_grid(VARIANTS)
