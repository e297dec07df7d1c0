"""The README's main job end to end: a tiny real sweep -> analyze -> report, through `demo`."""

from __future__ import annotations

import re

import pytest

from analysis.report import FIGURE_COUNT_META
from analysis.schema import CURVES_SCHEMA, SELECTION_SCHEMA, TRIALS_SCHEMA, read_table
from study.cli import main


@pytest.mark.slow
def test_demo_runs_sweep_analyze_report(tmp_path, capsys):
    code = main(["demo", "--storage-path", str(tmp_path), "--name", "tiny", "--steps", "60", "--seeds", "1"])
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
    # the six configurations of the seed ablation, one seed each, all trained to the end
    assert sorted(r["model_kind"] for r in rows) == sorted(
        ["gan", "gan+codes", "infogan", "infogan-codes-only", "infogan-cat-only", "bi-infogan"]
    )
    assert all(r["variant"] == r["model_kind"] for r in rows)  # seed-ablation's labels name the model kinds
    assert all(r["last_step"] == 60 for r in rows), [(r["model_kind"], r["status"], r["reason"]) for r in rows]
    # codes are scored on G's traversals and Q on the held-out labels, except for the GAN, which has none
    for r in rows:
        for column in ("gen/cat_acc", "q/real_hungarian_acc", "score/disentanglement"):
            assert (r[column] == r[column]) == (r["model_kind"] != "gan"), (r["model_kind"], column)
    html = (experiment / "report.html").read_text(encoding="utf-8")
    figures = int(re.search(rf'<meta name="{FIGURE_COUNT_META}" content="(\d+)">', html).group(1))
    assert figures >= 4 and html.count('class="plotly-graph-div"') == figures
    assert f"report: {experiment / 'report.html'}" in out
