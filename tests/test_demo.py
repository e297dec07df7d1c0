"""The README's main job end to end: a tiny real sweep -> analyze -> report, through `demo`; and
what the report page says about that real study, checked against its parquet tables."""

from __future__ import annotations

import html as htmllib
import math
import re

import pytest

from analysis.report import FIGURE_COUNT_META
from analysis.schema import CURVES_SCHEMA, SELECTION_SCHEMA, TRIALS_SCHEMA, read_table
from study.cli import main

Z = 1.959963984540054  # the normal quantile of a 95% interval


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval, written out (Wilson 1927)."""
    p, z2 = k / n, Z**2
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def ranking_rows(page: str) -> list[list[str]]:
    """The ranking table's body rows, each a list of its cells as text."""
    table = re.search(r'<table class="ranking">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    return [[htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", r, re.S)]
            for r in rows]  # fmt: skip


@pytest.mark.slow
def test_demo_runs_sweep_analyze_report(tmp_path, capsys):
    code = main(["demo", "--storage-path", str(tmp_path), "--name", "tiny", "--steps", "60", "--seeds", "2"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    experiment = tmp_path / "tiny"
    trials = read_table("trials", experiment / "trials.parquet")
    assert trials.schema.equals(TRIALS_SCHEMA, check_metadata=False)
    assert read_table("curves", experiment / "curves.parquet").schema.equals(CURVES_SCHEMA, check_metadata=False)
    assert read_table("selection", experiment / "selection.parquet").schema.equals(
        SELECTION_SCHEMA, check_metadata=False
    )
    rows = trials.to_pylist()
    # the six configurations of the seed ablation, two seeds each, all trained to the end
    assert sorted(r["model_kind"] for r in rows) == sorted(
        ["gan", "gan+codes", "infogan", "infogan-codes-only", "infogan-cat-only", "bi-infogan"] * 2
    )
    assert all(r["variant"] == r["model_kind"] for r in rows)  # seed-ablation's labels name the model kinds
    assert all(r["last_step"] == 60 for r in rows), [(r["model_kind"], r["status"], r["reason"]) for r in rows]
    # codes are scored on G's traversals and Q on the held-out labels, except for the GAN, which has none
    for r in rows:
        for column in ("gen/cat_acc", "q/real_hungarian_acc", "score/disentanglement", "selection/q_balance"):
            assert (r[column] == r[column]) == (r["model_kind"] != "gan"), (r["model_kind"], column)
    page = (experiment / "report.html").read_text(encoding="utf-8")
    figures = int(re.search(rf'<meta name="{FIGURE_COUNT_META}" content="(\d+)">', page).group(1))
    assert figures >= 4 and page.count('class="plotly-graph-div"') == figures
    assert f"report: {experiment / 'report.html'}" in out
    assert "0 failed" in page and "Verdict" in page

    # what the page says of each configuration, against the tables
    by_label: dict[str, list[float]] = {}
    for r in rows:
        by_label.setdefault(r["model_kind"], [])
        if r["gen/cat_acc"] == r["gen/cat_acc"]:
            by_label[r["model_kind"]].append(r["gen/cat_acc"])
    shown = ranking_rows(page)
    assert len(shown) == 6
    scored = [cells for cells in shown if by_label[cells[1].removesuffix(" ★ pick").split(" ")[0]]]
    for i, cells in enumerate(scored):
        values = by_label[cells[1].removesuffix(" ★ pick").split(" ")[0]]
        k, n = sum(v >= 0.9 for v in values), len(values)
        low, high = wilson(k, n)
        assert cells[2] == f"{k} of {n} seeds ({100 * k / n:.0f}%, 95% CI {100 * low:.0f}%–{100 * high:.0f}%)", cells
        if i + 1 < len(scored):  # two seeds a side: the bootstrap interval holds 0 exactly when the ranges meet
            below = by_label[scored[i + 1][1].removesuffix(" ★ pick").split(" ")[0]]
            overlap = min(values) <= max(below)
            assert cells[10].startswith("cannot be told apart" if overlap else "ahead of the next"), cells
