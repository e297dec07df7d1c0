"""`infogan-study report`: one self-contained HTML page about an analysed experiment.

The public surface is what this package exports (`__all__`); the modules are private, in the
way of Optuna's visualization package:

- `_data`: the parquet tables as DataFrames (`load_tables` -> `ReportTables`) and the per-trial
  facts every section shares;
- `_figures`, `_sections`, `_images`: each section as `get_x_info(tables) -> NamedTuple` (the
  data) and `get_x_plot(info)` / `x_html(info)` (the drawing);
- `_page`: the sections in page order, the HTML page, and writing it.

The private modules import each other's public names only. The tests check the info objects,
importing `get_x_info` from the private modules, as Optuna's tests do.
"""

from __future__ import annotations

from analysis.report._data import ReportTables, load_tables, shorten_labels
from analysis.report._page import FIGURE_COUNT_META, Section, build_report, build_sections, write_report
from analysis.report._sections import SelectionInfo, SignalCheck, get_selection_info

__all__ = [
    "FIGURE_COUNT_META",
    "ReportTables",
    "Section",
    "SelectionInfo",
    "SignalCheck",
    "build_report",
    "build_sections",
    "get_selection_info",
    "load_tables",
    "shorten_labels",
    "write_report",
]
