"""The parts of `infogan-study analyze`: reading Tune's files, choosing checkpoints, configuration
groups, the generator-as-dataset adapter and the planning of the selection pools."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import selection
from analysis.collect import group_id, group_label
from analysis.scoring import QUICK
from analysis.selection import GeneratorData, Member, PoolResult, PoolTask, score_pool, select_models
from analysis.tune_folder import CheckpointInfo, TrialRecord, read_experiment
from trainables.checkpoint import write_checkpoint
from trainables.config import InfoGANConfig
from trainables.models import InfoGAN

TINY = {"dataset": "basicprop-line", "width": 0.125, "batch_size": 8, "steps": 40, "report_every": 10}


def _report(step: int, mi: float, **extra: object) -> str:
    return json.dumps({"step": float(step), "mi/cat": mi, "loss/d": 1.0, "trial_id": "abcde_00000", **extra})


def _tiny_checkpoint(folder: Path, seed: int) -> str:
    config = InfoGANConfig.from_dict({**TINY, "seed": seed})
    torch.manual_seed(seed)
    model = InfoGAN(config, (1, 28, 28))
    with torch.no_grad():
        model.q_head.net[-1].weight.mul_(100.0)  # untrained Q's codes barely vary: FactorVAE would prune them all
    write_checkpoint(
        {"config": config.to_dict(), "step": 40, "image_shape": (1, 28, 28), "model": model.state_dict()}, folder
    )
    return str(folder)


def test_a_resumed_trials_later_reports_win_and_a_torn_line_is_skipped(tmp_path):
    folder = tmp_path / "exp" / "infogan_trainable_abcde_00000_0_seed=0_2026-01-01_00-00-00"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps({**TINY, "variant": "infogan"}))
    lines = [_report(10, 0.1), _report(20, 0.2), _report(30, 0.3),  # then resumed from step 10:
             _report(20, 0.25), _report(30, math.nan, **{"loss/d": None}), _report(40, 0.5, status="completed"),
             '{"step": 50.0, "mi/c']  # fmt: skip
    (folder / "result.json").write_text("\n".join(lines))
    [trial] = read_experiment(tmp_path / "exp").trials  # no experiment state: judged by the files
    assert (trial.trial_id, trial.status, trial.reason, trial.last_step) == ("abcde_00000", "completed", "", 40)
    steps, values = trial.curves["mi/cat"]
    assert steps.tolist() == [10, 20, 30, 40] and values[:2].tolist() == [0.1, 0.25] and math.isnan(values[2])
    assert math.isnan(trial.curves["loss/d"][1][2]) and "status" not in trial.curves
    assert trial.config == InfoGANConfig.from_dict(TINY)  # the variant label is not a config field


def test_a_folder_without_reports_or_with_a_bad_config_still_becomes_a_record(tmp_path):
    exp = tmp_path / "exp"
    (exp / "trainable_fedcb_00003_3_2026-01-01_00-00-00").mkdir(parents=True)
    (exp / "trainable_fedcb_00003_3_2026-01-01_00-00-00" / "params.json").write_text(json.dumps({**TINY, "lamda": 1}))
    [trial] = read_experiment(exp).trials
    assert (trial.trial_id, trial.status, trial.config) == ("fedcb_00003", "pending", None)
    assert trial.reason == "invalid config: unknown config field 'lamda'; did you mean lambda_info?"


def test_final_and_best_checkpoints_skip_a_diverged_one():
    ckpt = [CheckpointInfo(10, Path("c0"), 0.9, False), CheckpointInfo(20, Path("c1"), 0.4, False),
            CheckpointInfo(30, Path("c2"), 0.95, True)]  # fmt: skip
    trial = TrialRecord("t", None, None, "diverged", "", 30, {}, ckpt)
    assert trial.choose_checkpoint("final").path == Path("c1")
    assert trial.choose_checkpoint("best").path == Path("c0")
    trial.checkpoints = [
        CheckpointInfo(10, Path("c0"), math.nan, False),
        CheckpointInfo(20, Path("c1"), math.nan, False),
    ]
    assert trial.choose_checkpoint("best").path == Path("c1")  # no mi/cat reported: best falls back to final
    trial.checkpoints = ckpt[2:]
    assert trial.choose_checkpoint("final") is None


def test_a_group_is_the_config_without_seed_and_data_root():
    base = InfoGANConfig.from_dict(TINY)
    assert group_id(base) == group_id(base.replace(seed=3, data_root="/elsewhere"))
    assert group_id(base) != group_id(base.replace(lambda_info=0.5))
    assert group_id(base).startswith("g") and len(group_id(base)) == 11
    assert group_label(InfoGANConfig(seed=4)) == "infogan defaults"
    assert (
        group_label(InfoGANConfig(lr_d=1e-4, n_cat_codes=0, n_cont_codes=0))
        == "gan n_cat_codes=0 n_cont_codes=0 lr_d=0.0001"
    )


def test_a_generator_serves_as_ground_truth_with_its_codes_as_factors():
    torch.manual_seed(0)
    model = InfoGAN(InfoGANConfig.from_dict({**TINY, "n_cat_codes": 2, "cat_dim": 3}), (1, 28, 28)).eval()
    data = GeneratorData(model)
    assert data.factors_num_values == [3, 3, 10, 10] and data.observation_shape == (1, 28, 28)
    factors = data.sample_factors(50, np.random.default_rng(0))
    assert factors.shape == (50, 4) and (factors < np.array([3, 3, 10, 10])).all()
    seen = []
    generate = model.generate
    model.generate = lambda latent: seen.append(latent) or generate(latent)
    images = data.sample_observations_from_factors(factors, np.random.default_rng(1))
    assert images.shape == (50, 1, 28, 28) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    assert torch.equal(seen[0].cat, torch.from_numpy(factors[:, :2]))
    assert torch.allclose(seen[0].cont, torch.from_numpy(-0.9 + 0.2 * factors[:, 2:]).float())  # the bin centres
    again = data.sample_observations_from_factors(factors, np.random.default_rng(1))
    other = data.sample_observations_from_factors(factors, np.random.default_rng(2))
    assert np.array_equal(images, again) and not np.array_equal(images, other)  # noise from the rng


def test_a_pool_scores_every_pair_and_a_broken_pool_reports_why(tmp_path):
    paths = tuple(_tiny_checkpoint(tmp_path / f"m{i}", seed=i) for i in range(3))
    result = score_pool(PoolTask("g1", ("a", "b", "c"), paths, 0, QUICK))
    assert result.scores.shape == (3, 3) and ((result.scores >= 0) & (result.scores <= 1)).all()
    assert result.scores.max() > 0
    expected = [(result.scores[:, j].sum() - result.scores[j, j]) / 2 for j in range(3)]  # without the diagonal
    assert result.centrality == pytest.approx(dict(zip("abc", expected)))
    assert score_pool(PoolTask("g1", ("a", "b", "c"), paths, 0, QUICK)).scores.tolist() == result.scores.tolist()
    assert len(result.rows()) == 9 and result.rows()[1] == {"pool": "g1", "data_trial": "a", "rep_trial": "b",
                                                              "factor_vae": result.scores[0, 1]}  # fmt: skip
    broken = score_pool(PoolTask("g2", ("a", "x"), (paths[0], str(tmp_path / "missing")), 0, QUICK))
    assert broken.rows() == [] and math.isnan(broken.centrality["a"])
    assert broken.error.startswith("ModelCentrality of pool g2 failed: x: BadInputError: no checkpoint at")
    # a model that does not load is left out; the others are still compared, with the same values
    partial = score_pool(PoolTask("g1", ("a", "b", "c", "x"), (*paths, str(tmp_path / "missing")), 0, QUICK))
    assert partial.trial_ids == ("a", "b", "c") and partial.left_out == ("x",)
    assert partial.scores.tolist() == result.scores.tolist()  # common random numbers: unchanged by x
    assert partial.error.startswith("left out of ModelCentrality's pool g1: x: BadInputError: no checkpoint at")


def _member(tid: str, group: str, mi: float, images: str = "basicprop-line", balance: float = 0.9) -> Member:
    return Member(tid, group, images, f"/ckpt/{tid}", images, np.arange(20) % (1 + int(tid[-1])), mi,
                  {"selection/q_balance": balance})  # fmt: skip


@pytest.fixture
def fake_pools(monkeypatch: pytest.MonkeyPatch) -> list[PoolTask]:
    """Replace ModelCentrality by a known matrix: model j scores j / 10 on every other model's data."""
    seen: list[PoolTask] = []

    def fake(tasks: list[PoolTask], mapper) -> list[PoolResult]:
        seen.extend(tasks)
        return [PoolResult(t.name, t.trial_ids, np.tile(np.arange(len(t.trial_ids)) / 10, (len(t.trial_ids), 1)))
                for t in tasks]  # fmt: skip

    monkeypatch.setattr(selection, "score_pools", fake)
    return seen


def serial(fn, items, desc):
    return [fn(item) for item in items]


def test_the_pool_holds_every_candidate_capped_by_balance_then_mi(fake_pools):
    members = [_member("a0", "gA", 0.9, balance=0.99), _member("a1", "gA", 0.9, balance=0.95),
               _member("b0", "gB", 0.6, balance=0.99), _member("b1", "gB", 0.8, balance=math.nan),
               _member("c0", "gC", 0.55, balance=0.97), _member("d0", "gD", math.nan, balance=1.0)]  # fmt: skip
    result = select_models(members, counts=QUICK, max_models=3, device="cpu", mapper=serial)
    # the three most balanced candidates (a0 and b0 tie on balance: higher MI first); d0 has no MI bound
    assert [(t.name, t.trial_ids) for t in fake_pools] == [("all", ("a0", "b0", "c0"))]
    assert result.centrality == pytest.approx({"a0": 0.0, "b0": 0.1, "c0": 0.2})
    assert result.candidates == {"a0", "a1", "b0", "b1", "c0"}  # the pick chooses among all of them
    assert set(result.nmi) == {"a0", "b0", "c0"} and {row["pool"] for row in result.rows} == {"all"}


def test_a_model_whose_code_carries_no_information_is_no_candidate(fake_pools):
    """A lambda = 0 model (final MI bound ~0: its Q cannot read the code back from G's images) stays
    out of the pool, however its Q fares on the other generators."""
    members = [_member("a0", "gA", 0.95), _member("b0", "gB", 0.9), _member("z0", "gZ", 0.02)]
    result = select_models(members, counts=QUICK, max_models=12, device="cpu", mapper=serial)
    assert [(t.name, t.trial_ids) for t in fake_pools] == [("all", ("a0", "b0"))]
    assert "z0" not in result.centrality and "z0" not in result.candidates


def test_datasets_are_not_mixed(fake_pools):
    members = [_member("a0", "gA", 0.7), _member("b0", "gB", 0.7), _member("s0", "gS", 0.7, "sprites"),
               _member("s1", "gT", 0.7, "sprites")]  # fmt: skip
    select_models(members, counts=QUICK, max_models=12, device="cpu", mapper=serial)
    assert [(t.name, t.trial_ids) for t in fake_pools] == [
        ("all:basicprop-line", ("a0", "b0")),
        ("all:sprites", ("s0", "s1")),
    ]
