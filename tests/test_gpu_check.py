"""benchmarks/gpu_check.py, the script a GPU machine runs (issue 18), kept from rotting: its tiny
CPU mode end to end (the single loop, packed runs, a packed sweep of 2 seeds scored by `analyze`),
and the seeds' summary (Spearman correlations, the label-free pick's regret) on known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from analysis.report import SelectionInfo, SignalCheck
from analysis.selection import PICK_SIGNAL
from benchmarks.gpu_check import main, summarise_seeds

SIGNALS = ("selection/q_balance", "selection/q_confidence", "selection/q_info", "selection/centrality",
           "selection/mean_pairwise_nmi", "selection/score")  # fmt: skip


def _rate(r: dict) -> bool:
    return r["images_per_s"] > 0 and r["steps_per_s"] > 0 and r["steps_timed"] >= 1 and r["seconds"] > 0


def test_the_seeds_summary_lists_every_seed_and_carries_the_reports_check_of_the_pick() -> None:
    acc = [0.9, 0.5, 0.7, 0.3]
    rows = [{"seed": s, "trial_id": f"t{s}", "status": "completed", "gen/cat_acc": a, "q/real_hungarian_acc": a - 0.1,
             "selection/q_balance": a, "selection/q_confidence": -a, "selection/q_info": 0.5,
             "selection/score": [0.2, 0.8, float("nan"), 0.1][s]} for s, a in enumerate(acc)][::-1]  # fmt: skip
    nan = float("nan")
    checks = [SignalCheck("selection/q_balance", "", 3, 1.0, "t0", 0.9, 0.0),
              SignalCheck("selection/q_info", "", 3, nan, "t0", 0.9, 0.0)]  # fmt: skip
    info = SelectionInfo(PICK_SIGNAL, "t1", ("t1",), "infogan", 0.8, 3, 0.5, "t0", 0.9, 0.5, 2, checks)
    out = summarise_seeds(rows, info)
    assert [m["seed"] for m in out["members"]] == [0, 1, 2, 3]
    assert out["members"][2]["selection/score"] is None and set(SIGNALS) <= set(out["members"][0])
    assert out["spearman"] == {"selection/q_balance": {"rho": 1.0, "n": 3, "pick": "t0", "regret": 0.0},
                               "selection/q_info": {"rho": None, "n": 3, "pick": "t0", "regret": 0.0}}  # fmt: skip
    pick = out["pick"]
    assert pick["signal"] == PICK_SIGNAL and pick["seed"] == 1 and pick["trial_id"] == "t1"
    assert pick["gen/cat_acc"] == 0.5 and pick["best_gen/cat_acc"] == 0.9 and pick["regret"] == pytest.approx(0.4)


def test_tiny_single_and_packed_parts_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpu_check.json"
    assert main(["--tiny", "--parts", "single,packed", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["device"]["type"] == "cpu" and results["device"]["name"] in printed
    single, packed = results["single"], results["packed"]
    assert single["config"]["dataset"] == "basicprop-line" and single["config"]["batch_size"] == 16
    assert all(_rate(single[p]) and single[p]["peak_mib"] is None for p in ("fp32", "bf16"))
    assert [r["k"] for r in packed["rows"]] == [1, 2] and packed["precision"] == "bf16"
    for r in packed["rows"]:
        assert _rate(r) and r["separate_images_per_s"] == single["bf16"]["images_per_s"]
        assert r["ratio"] == pytest.approx(r["images_per_s"] / r["separate_images_per_s"])
    assert "## 1. Single loop" in printed and "## 2. K packed runs" in printed and "seeds" not in results


@pytest.mark.slow  # starts Ray (a sweep) and scores: over a minute on a busy 2-core machine
def test_tiny_mode_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpu_check.json"
    argv = ["--tiny", "--out", str(out), "--storage-path", str(tmp_path / "results"),
            "--data-root", str(tmp_path / "no-datasets")]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert set(results) >= {"device", "options", "single", "packed", "seeds"} and results["wall_s"] > 0
    seeds = results["seeds"]
    assert seeds["sweep_exit"] == 0 and seeds["analyze_exit"] == 0 and not seeds["interrupted"]
    assert "--pack" in seeds["sweep_command"] and Path(seeds["experiment"], "trials.parquet").is_file()
    assert [m["seed"] for m in seeds["members"]] == [0, 1]
    for m in seeds["members"]:
        assert m["status"] == "completed" and m["step"] == 20
        assert 0 <= m["gen/cat_acc"] <= 1 and 0 <= m["q/real_hungarian_acc"] <= 1
        assert 0 <= m["selection/q_balance"] <= 1 + 1e-9
    # 2 seeds: no rank correlation (the report's check needs 3 candidates), whatever was a candidate
    assert set(seeds["spearman"]) <= set(SIGNALS) and all(v["rho"] is None for v in seeds["spearman"].values())
    regret = seeds["pick"]["regret"]
    assert regret is None or (regret >= 0 and math.isfinite(regret))
    assert "## 3. Seeds packed" in printed and "Label-free pick" in printed
