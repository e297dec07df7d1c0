"""A packed run of K members is K ordinary runs: same parameters, optimiser states, RNG states and
metrics as K separate `train` runs, a diverging member stops alone, and member checkpoints resume.

The exactness tests run in float64. In float32 a GAN this small amplifies rounding chaotically:
the single loop itself, run with 1 and then 2 torch threads (a different summation order), drifts
to 1e-2 in its losses within 10 steps (Adam turns rounding-level gradients into lr-sized steps).
In float64 the same rounding is 1e-16, and the packed run stays within 1e-5 of the separate runs
over 40 steps: any real difference (a wrong draw, weight, detach or hyperparameter) is far larger.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from trainables.checkpoint import read_checkpoint
from trainables.config import InfoGANConfig
from trainables.data import load_data
from trainables.errors import BadInputError
from trainables.loop import train
from trainables.packed import check_pack, member_folder, pack_key, train_packed

BASE = InfoGANConfig(dataset="basicprop-line", width=0.125, batch_size=8, steps=40, report_every=10)


class Float64Data:
    """The training data as float64 images (the networks are float64 under `float64` below)."""

    def __init__(self, config: InfoGANConfig) -> None:
        self.data = load_data(config)
        self.image_shape = self.data.image_shape

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.data.sample(n, generator).double()

    def sample_many(self, n: int, generators: list[torch.Generator]) -> torch.Tensor:
        return self.data.sample_many(n, generators).double()


@pytest.fixture
def float64() -> Iterator[None]:
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)


def _single(config: InfoGANConfig, data: Any, out: Path) -> tuple[list[dict[str, float]], Any]:
    reports: list[dict[str, float]] = []

    def report(metrics: dict[str, float], save: Any) -> None:
        reports.append(metrics)
        if metrics["diverged"] == 0.0:
            save(out)

    return reports, train(config, device="cpu", report=report, data=data)


def _packed(configs: list[InfoGANConfig], data: Any, out: Path, **kw: Any) -> tuple[dict[int, list], list]:
    reports: dict[int, list[dict[str, float]]] = {k: [] for k in range(len(configs))}

    def report(by_member: dict[int, dict[str, float]], save: Any) -> None:
        for k, metrics in by_member.items():
            reports[k].append(metrics)
        save(out)

    return reports, train_packed(configs, device="cpu", report=report, data=data, **kw)


def _assert_same_run(single_dir: Path, member_dir: Path, single_reports: list, member_reports: list) -> None:
    assert [r["step"] for r in single_reports] == [r["step"] for r in member_reports]
    for a, b in zip(single_reports, member_reports):
        for key in a:
            if key != "perf/images_per_s":
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-5), key
    s, p = read_checkpoint(single_dir), read_checkpoint(member_dir)
    assert s.keys() == p.keys() and s["config"] == p["config"] and s["step"] == p["step"]
    assert s["model"].keys() == p["model"].keys()
    for key, value in s["model"].items():
        torch.testing.assert_close(p["model"][key], value, rtol=1e-4, atol=1e-4, msg=key)
    for name in ("opt_d", "opt_g"):
        assert p[name]["param_groups"] == s[name]["param_groups"]
        for i, state in s[name]["state"].items():
            for key, value in state.items():
                torch.testing.assert_close(p[name]["state"][i][key], value, rtol=1e-4, atol=1e-4)
    assert torch.equal(s["rng"], p["rng"])  # every member drew exactly the single run's numbers


def test_packed_members_match_separate_runs(float64: None, tmp_path: Path) -> None:
    members = [
        BASE.replace(seed=0),
        BASE.replace(seed=1, lambda_info=0.0),  # GAN + codes: Q on detached features
        BASE.replace(seed=2, instance_noise=0.2, instance_noise_steps=20, lr_d=4e-4),
        BASE.replace(seed=3, lr_g=5e-4, beta1=0.6, beta2=0.99, cont_weight=0.4),
    ]
    data = Float64Data(BASE)
    packed_reports, results = _packed(members, data, tmp_path / "pack")
    assert [r.status for r in results] == ["completed"] * 4
    for k, config in enumerate(members):
        single_reports, result = _single(config, data, tmp_path / f"single{k}")
        assert result.status == "completed" and len(single_reports) == 4
        _assert_same_run(tmp_path / f"single{k}", tmp_path / "pack" / member_folder(k), single_reports,
                         packed_reports[k])  # fmt: skip


@pytest.mark.parametrize(
    "shared",
    [{"q_update": "g"}, {"bidirectional": True}, {"d_optimizer": "sgd"}, {"n_cat_codes": 0, "n_cont_codes": 0},
     {"q_fixed_std": False, "noise_dim": 0}],
    ids=["q-in-g", "bidirectional", "sgd", "vanilla-gan", "learned-std-codes-only"],
)  # fmt: skip
def test_every_model_kind_packs_exactly(float64: None, tmp_path: Path, shared: dict[str, Any]) -> None:
    base = BASE.replace(steps=10, report_every=5, **shared)
    members = [base.replace(seed=5), base.replace(seed=6, lambda_info=0.0, lr_d=3e-4, sgd_momentum=0.5)]
    data = Float64Data(base)
    packed_reports, _ = _packed(members, data, tmp_path / "pack")
    for k, config in enumerate(members):
        single_reports, _ = _single(config, data, tmp_path / f"single{k}")
        _assert_same_run(tmp_path / f"single{k}", tmp_path / "pack" / member_folder(k), single_reports,
                         packed_reports[k])  # fmt: skip


def test_a_diverging_member_stops_alone(float64: None, tmp_path: Path) -> None:
    base = BASE.replace(steps=30, report_every=5)
    members = [base.replace(seed=0), base.replace(seed=1, lr_d=1e30), base.replace(seed=2, lambda_info=0.0)]
    data = Float64Data(base)
    packed_reports, results = _packed(members, data, tmp_path / "pack")
    single_reports, single = _single(members[1], data, tmp_path / "diverging")
    assert single.status == "diverged"
    assert (results[1].status, results[1].reason, results[1].step) == (single.status, single.reason, single.step)
    assert single.step < 30 and packed_reports[1][-1]["diverged"] == 1.0
    assert [r["step"] for r in packed_reports[1]] == [r["step"] for r in single_reports]
    assert [r.status for r in results] == ["completed", "diverged", "completed"]
    assert "diverged" in (tmp_path / "pack" / "pack.json").read_text()
    for k in (0, 2):  # the others are untouched by the frozen member
        reports, _ = _single(members[k], data, tmp_path / f"single{k}")
        _assert_same_run(tmp_path / f"single{k}", tmp_path / "pack" / member_folder(k), reports, packed_reports[k])


def test_a_pack_resumes_exactly_and_members_resume_as_single_runs(tmp_path: Path) -> None:
    config = BASE.replace(steps=20, report_every=10)
    members = [config.replace(seed=0), config.replace(seed=1, lambda_info=0.0, instance_noise=0.1)]
    data = load_data(config)
    straight, _ = _packed(members, data, tmp_path / "straight")
    first = [c.replace(steps=10) for c in members]
    _packed(first, data, tmp_path / "half")
    resumed, _ = _packed(members, data, tmp_path / "resumed", resume_from=tmp_path / "half")
    for k in range(2):  # float32, CPU: bit for bit, as a single run's resume
        assert resumed[k] == [{**r, "perf/images_per_s": resumed[k][0]["perf/images_per_s"]} for r in straight[k][1:]]
    # `train --resume` takes a member's checkpoint as any run's
    result = train(members[1].replace(steps=25), device="cpu", resume_from=tmp_path / "half" / member_folder(1),
                   data=data)  # fmt: skip
    assert result.status == "completed" and result.step == 25


def test_incompatible_configs_do_not_pack() -> None:
    check_pack([BASE, BASE.replace(seed=3, lambda_info=0.0, lr_d=1e-3, instance_noise=0.1)])
    with pytest.raises(BadInputError, match="width=0.25.*only seed"):
        check_pack([BASE, BASE.replace(width=0.25)])
    assert pack_key(BASE) == pack_key(BASE.replace(seed=7, beta1=0.9)) != pack_key(BASE.replace(batch_size=16))
