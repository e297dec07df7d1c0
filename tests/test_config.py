"""The config dataclass is the single source of hyperparameter names: it refuses what it does not know."""

from __future__ import annotations

import pytest

from trainables.config import InfoGANConfig, coerce_value, parse_set_options
from trainables.errors import BadInputError


def test_defaults_are_the_papers_mnist_setup():
    c = InfoGANConfig()
    assert (c.noise_dim, c.n_cat_codes, c.cat_dim, c.n_cont_codes) == (62, 1, 10, 2)
    assert (c.lr_d, c.lr_g, c.beta1) == (2e-4, 1e-3, 0.5)
    assert c.latent_dim == 62 + 10 + 2
    assert c.model_kind == "infogan"


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ({"n_cat_codes": 0, "n_cont_codes": 0}, "gan"),
        ({"lambda_info": 0.0}, "gan+codes"),
        ({"noise_dim": 0}, "infogan-codes-only"),
        ({"noise_dim": 0, "n_cont_codes": 0}, "infogan-cat-only"),
        ({"bidirectional": True}, "bi-infogan"),
    ],
)
def test_every_studied_model_kind_is_reachable(values, kind):
    assert InfoGANConfig.from_dict(values).model_kind == kind


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"lamda_info": 1.0}, "unknown config field 'lamda_info'; did you mean lambda_info"),
        ({"lambda_info": -0.1}, "lambda_info=-0.1 is out of range: lambda_info must be >= 0"),
        ({"cat_dim": 1}, "cat_dim=1 is out of range: cat_dim must be >= 2"),
        ({"noise_dim": 0, "n_cat_codes": 0, "n_cont_codes": 0}, "no latent input"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
        ({"dataset": "imagenet"}, "dataset='imagenet' is not allowed; choose one of: mnist"),
        ({"noise_dim": 2.5}, "noise_dim=2.5 has the wrong type: expected int"),
        ({"lambda_info": "lots"}, "lambda_info='lots' is not a valid float"),
        ({"bidirectional": "maybe"}, "bidirectional='maybe' is not a valid bool"),
        ({"lr_d": 0.0}, "lr_d must be > 0"),
        ({"beta1": 1.0}, "beta1=1.0 is out of range: beta1 must be < 1.0"),
        ({"lambda_info": float("nan")}, "must be a finite number"),
    ],
)
def test_invalid_values_give_one_line_errors_naming_the_field(values, needle):
    with pytest.raises(BadInputError) as err:
        InfoGANConfig.from_dict(values)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_set_options_are_typed_and_round_trip():
    values = parse_set_options(["lambda_info=0.4", "cat_dim=20", "q_fixed_std=true", "dataset=sprites"])
    assert values == {"lambda_info": 0.4, "cat_dim": 20, "q_fixed_std": True, "dataset": "sprites"}
    c = InfoGANConfig.from_dict(values)
    assert InfoGANConfig.from_dict(c.to_dict()) == c
    with pytest.raises(BadInputError, match="expected field=value"):
        parse_set_options(["lambda_info"])


def test_numpy_scalars_from_search_spaces_are_accepted():
    np = pytest.importorskip("numpy")
    assert coerce_value("cat_dim", np.int64(12)) == 12
    assert coerce_value("lambda_info", np.float64(0.5)) == 0.5
    assert coerce_value("lambda_info", 1) == 1.0
    with pytest.raises(BadInputError):
        coerce_value("cat_dim", True)
