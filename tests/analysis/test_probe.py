"""The generator probe that trials report beside the losses (gen/cat_acc, gen/valid): the datasets
`probe_metrics` says report it (what the launcher checks study objectives against) are the ones
`prepare_probe` builds a probe for, and every model of such a dataset reports the same keys (NaN
without a categorical code), so a study's objective is in every trial's every report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analysis.evaluators import PROBE_METRICS, probe_metrics
from analysis.scoring import QUICK, dataset_for, prepare_probe
from trainables.config import InfoGANConfig
from trainables.models import InfoGAN


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> list[InfoGANConfig]:
    art = tmp_path_factory.mktemp("art") / "art.npz"
    np.savez(art, images=np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    return [
        InfoGANConfig(dataset="basicprop-line", basicprop_noise=True, width=0.125),
        InfoGANConfig(dataset="basicprop-rects", width=0.125),
        InfoGANConfig(dataset="folder", data_root=str(art), width=0.125),
    ]


def test_the_datasets_with_probe_metrics_are_those_with_a_probe(configs: list[InfoGANConfig], tmp_path: Path) -> None:
    factory = prepare_probe(configs, tmp_path / "cache", QUICK)
    for config in configs:
        data = dataset_for(config)
        probe = factory(data)
        assert (probe is not None) == bool(probe_metrics(config.dataset)), config.dataset
        if probe is None:
            continue
        scores = probe(InfoGAN(config, data.image_shape).eval())
        assert list(scores) == list(PROBE_METRICS) and all(0.0 <= v <= 1.0 for v in scores.values())
        gan = InfoGAN(config.replace(n_cat_codes=0, n_cont_codes=0), data.image_shape).eval()
        scores = probe(gan)
        assert list(scores) == list(PROBE_METRICS) and all(math.isnan(v) for v in scores.values())
