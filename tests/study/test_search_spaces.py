"""Search spaces: every packaged space loads and is checked against the config; the loader's
bad-input errors; seed replication; variant grids and how common settings combine with them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ray import tune
from ray.tune.search.variant_generator import generate_variants

from search_spaces import describe_spaces, grid_size, load_space, space_names
from study.plan import build_param_space, check_trial_configs
from trainables.errors import BadInputError
from trainables.trial_record import build_config

REQUIRED = {"seed-ablation", "lambda-ratio", "categories", "instance-noise", "optuna"}


def _configs(param_space: dict) -> list:
    return [build_config(resolved) for _, resolved in generate_variants(param_space)]


def test_required_spaces_exist_with_one_line_descriptions() -> None:
    described = dict(describe_spaces())
    assert set(space_names()) >= REQUIRED
    for name in REQUIRED:
        assert described[name] and "\n" not in described[name]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_space_builds_valid_trial_configs(name: str) -> None:
    _, space = load_space(name)
    configs = _configs(build_param_space(name, space, {"dataset": "basicprop-line"}))
    assert configs and all(c.dataset == "basicprop-line" for c in configs)


def test_seed_ablation_runs_the_six_model_variants() -> None:
    _, space = load_space("seed-ablation")
    variants = {c.model_kind: c for c in _configs(space)}
    assert set(variants) == {"gan", "gan+codes", "infogan", "infogan-codes-only", "infogan-cat-only", "bi-infogan"}
    infogan = variants["infogan"]
    assert (infogan.n_cat_codes, infogan.n_cont_codes) == (1, 2) and infogan.noise_dim > 0
    assert variants["gan+codes"].lambda_info == 0.0
    assert variants["infogan-cat-only"].n_cont_codes == 0 and variants["infogan-cat-only"].noise_dim == 0


def test_lambda_ratio_and_categories_cover_the_issue_values() -> None:
    configs = _configs(load_space("lambda-ratio")[1])
    assert 0.0 in {c.lambda_info for c in configs}
    assert {0.1, 0.4, 1.0} <= {c.cont_weight for c in configs}
    ks = {c.cat_dim for c in _configs(load_space("categories")[1])}
    assert min(ks) <= 5 and max(ks) >= 30 and 10 in ks


def test_seeds_replicate_any_space() -> None:
    _, base = load_space("seed-ablation")
    _, space = load_space("seed-ablation", seeds=3)
    assert grid_size(space) == 3 * grid_size(base)
    assert {c.seed for c in _configs(space)} == {0, 1, 2}


@pytest.mark.parametrize("seeds", [0, -1])
def test_seeds_below_one_is_bad_input(seeds: int) -> None:
    with pytest.raises(BadInputError, match="--seeds"):
        load_space("categories", seeds=seeds)


def test_unknown_space_lists_the_known_ones() -> None:
    with pytest.raises(BadInputError) as err:
        load_space("no-such-space")
    assert all(name in str(err.value) for name in REQUIRED)


def _space_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "my_space.py"
    path.write_text(f"from ray import tune\nDESCRIPTION = 'test'\ndef space():\n    return {body}\n")
    return str(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{'lamda_info': tune.grid_search([0.0, 1.0])}", "unknown config field 'lamda_info'; did you mean lambda_info"),
        ("{'cat_dim': tune.grid_search([])}", "grid for cat_dim is empty"),
        ("{'cat_dim': tune.grid_search([1, 10])}", "cat_dim=1 is out of range"),
        ("{'lr_d': tune.uniform(0.0, 1e-3)}", "lr_d=0.0 is out of range"),
        ("{'lr_d': tune.loguniform(0.0, 1e-3)}", "space() failed: ValueError: LogUniform"),
        ("{'noise_dim': tune.choice(['a'])}", "noise_dim='a' is not a valid int"),
        ("{}", "non-empty dict"),
    ],
)
def test_space_files_are_checked_against_the_config(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(BadInputError, match=re.escape(message)) as err:
        load_space(_space_file(tmp_path, body))
    assert "\n" not in str(err.value)


def test_space_file_that_is_fine_loads_with_its_stem_as_name(tmp_path: Path) -> None:
    name, space = load_space(_space_file(tmp_path, "{'cat_dim': tune.grid_search([5, 10])}"))
    assert name == "my-space" and grid_size(space) == 2


def test_common_setting_fills_variants_that_leave_the_field_alone() -> None:
    _, space = load_space("seed-ablation")
    variants = {c.model_kind: c for c in _configs(build_param_space("seed-ablation", space, {"noise_dim": 16}))}
    assert variants["infogan"].noise_dim == 16 and variants["gan"].noise_dim == 16
    assert variants["infogan-codes-only"].noise_dim == 0  # the variant's own value wins


def test_common_setting_colliding_with_a_grid_key_is_bad_input() -> None:
    _, space = load_space("categories")
    with pytest.raises(BadInputError, match="cat_dim is set on the command line and by search space categories"):
        build_param_space("categories", space, {"cat_dim": 4})


def test_cross_field_errors_name_the_trial() -> None:
    space = {"noise_dim": tune.grid_search([0, 8])}
    param_space = build_param_space("t", space, {"n_cat_codes": 0, "n_cont_codes": 0})
    with pytest.raises(BadInputError, match=r"trial \(noise_dim=0\): no latent input"):
        check_trial_configs(param_space)


def test_the_optuna_space_searches_what_its_description_says() -> None:
    """It once promised code counts: it searches the continuous code count; the categorical code stays one."""
    import search_spaces.optuna as space

    described = {"lambda": "lambda_info", "cont_weight": "cont_weight", "K": "cat_dim",
                 "continuous code count": "n_cont_codes", "noise_dim": "noise_dim", "instance noise": "instance_noise",
                 "lr_d": "lr_d", "lr_g": "lr_g", "bidirectional": "bidirectional"}  # fmt: skip
    assert all(term in space.DESCRIPTION for term in described) and "one categorical code" in space.DESCRIPTION
    assert set(space.space()) == {*described.values(), "instance_noise_steps"}
