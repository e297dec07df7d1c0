"""The trial table of `status` and of a finished sweep/search: ranked by the study's first
objective (as `sweep --metric` says), best first, trials without a value last."""

from __future__ import annotations

import math

from study.plan import Objective
from study.status import StudyView, TrialRow, format_table


def _row(trial_id: str, mi: float | None, state: str = "COMPLETED") -> TrialRow:
    metrics = {} if mi is None else {"mi/cat": mi, "loss/g": 1.0 - (mi if math.isfinite(mi) else 0.0)}
    return TrialRow(trial_id, state, {"seed": int(trial_id[-1])}, 10, metrics, 0, "")


VIEW = StudyView([_row("t0", 0.2), _row("t1", None, "PENDING"), _row("t2", 0.9), _row("t3", math.nan, "DIVERGED"),
                  _row("t4", 0.5)])  # fmt: skip


def _order(table: str) -> list[str]:
    return [line.split()[0] for line in table.splitlines()[1:-1]]


def test_the_table_ranks_by_the_first_objective() -> None:
    assert _order(format_table(VIEW, objectives=[Objective("mi/cat", "max")])) == ["t2", "t4", "t0", "t1", "t3"]
    assert _order(format_table(VIEW, objectives=[Objective("mi/cat", "min")])) == ["t0", "t4", "t2", "t1", "t3"]
    # the first objective decides (t3 diverged with a NaN mi/cat but reported loss/g 1.0)
    assert _order(format_table(VIEW, objectives=[Objective("loss/g", "min"), Objective("mi/cat", "max")])) == [
        "t2",
        "t4",
        "t0",
        "t3",
        "t1",
    ]


def test_without_an_objective_the_table_keeps_trial_order() -> None:
    table = format_table(VIEW)
    assert _order(table) == ["t0", "t1", "t2", "t3", "t4"]
    assert table.splitlines()[-1] == "5 trials: 3 COMPLETED, 1 DIVERGED, 1 PENDING"
