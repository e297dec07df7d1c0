"""The report page: its sections in order, the HTML around them, and writing the file.

Reads only the parquet tables written by `infogan-study analyze` (analysis/schema.py), plus the
checkpoints of a few trials for their latent traversal grids (optional). The page opens offline:
plotly.js is embedded once in the head, the figures follow as divs, the images as data URIs.

Sections: the verdict in plain sentences, the ranking of configurations (success rates with
intervals, whether neighbours can be told apart, the label-free pick), every seed's score,
hyperparameters in parallel coordinates, hyperparameter importance, MI curves, disentanglement vs
quality with the Pareto front, latent traversals, failures and flags, and the label-free pick with
every signal checked against labels where there are labels.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import NamedTuple

import plotly.graph_objects as go
import plotly.offline

from analysis.report._data import SUCCESS_THRESHOLD, ReportTables, load_tables, varying_params
from analysis.report._figures import (
    get_centrality_matrix_info,
    get_centrality_matrix_plot,
    get_importance_info,
    get_importance_plot,
    get_mi_curves_info,
    get_mi_curves_plot,
    get_parallel_info,
    get_parallel_plot,
    get_pareto_info,
    get_pareto_plot,
    get_population_plot,
)
from analysis.report._images import get_traversal_info, traversal_html
from analysis.report._population import get_population_info
from analysis.report._sections import (
    failure_html,
    get_failure_info,
    get_ranking_info,
    get_selection_info,
    ranking_html,
    selection_html,
)
from analysis.report._verdict import get_verdict_info, verdict_html
from analysis.schema import SCORE_DESCRIPTIONS
from trainables.errors import BadInputError
from trainables.files import check_writable

FIGURE_COUNT_META = "infogan-study-figures"  # <meta> holding how many plotly figures the page draws
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1300px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f4f6; } tr.failed td { color: #a33; }
.pick { background: #ffbf00; border-radius: 3px; padding: 0 0.3em; font-size: 0.85em; white-space: nowrap; }
.note, .missing { color: #666; font-style: italic; }
.grids { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; }
img { image-rendering: pixelated; border: 1px solid #ccc; } figcaption { text-align: center; color: #555; }
nav a { margin-right: 1em; } ul.verdict li { margin: 0.3em 0; }
dl.scores dt { font-weight: bold; margin-top: 0.4em; } dl.scores dd { margin-left: 1.5em; }
"""


class Section(NamedTuple):
    anchor: str
    title: str
    intro: str  # one sentence on how to read the section
    body: str  # HTML
    has_figure: bool


def _figure_section(
    anchor: str, title: str, intro: str, fig: go.Figure | None, note: str = "", *, before: str = ""
) -> Section:
    """A section around one plotly figure (None: nothing to draw, only the note), after `before` (HTML)."""
    body = (
        ""
        if fig is None
        else fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{anchor}", config=_PLOT_CONFIG)
    )
    return Section(anchor, title, intro, before + body + _note(note), fig is not None)


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>' if text else ""


def _left_out(n: int, what: str) -> str:
    return f"{n} {what}." if n else ""


def build_sections(tables: ReportTables, *, images: bool = True) -> list[Section]:
    """Every section of the report, in page order."""
    population = get_population_info(tables)
    parallel = get_parallel_info(tables)
    importance = get_importance_info(tables)
    mi = get_mi_curves_info(tables)
    gen = get_mi_curves_info(tables, "gen/cat_acc")
    pareto = get_pareto_info(tables)
    matrix = get_centrality_matrix_info(tables)
    failures = get_failure_info(tables)
    selection = get_selection_info(tables)
    verdict = get_verdict_info(tables, population, importance, selection, failures)
    ranked_by = (
        f"the share of seeds that succeed (gen/cat_acc ≥ {tables.success_threshold:g}, with a 95% Wilson interval) "
        "and the mean generator-side disentanglement"
        if tables.labels
        else "the label-free pick's score (no labels were used)"
    )
    return [
        Section("verdict", "Verdict", "What the study found, written from its tables.", verdict_html(verdict), False),
        Section("ranking", "Ranking of configurations",
                f"Groups of seeds of one configuration, best mean score first (ties: lower FD), with {ranked_by}. "
                "'Against the next' compares each configuration with the one below it: the difference in mean "
                "score with a 95% bootstrap interval over seeds (optimistic with very few seeds) and a Mann-Whitney "
                "p-value; an interval holding 0 means the two cannot be told apart on the seeds run. What each "
                "column measures is under 'Scores' below.",
                ranking_html(get_ranking_info(tables, population)), False),
        _figure_section(
            "seeds", "Every seed", "One point per seed: a configuration whose seeds split into two kinds shows "
            "two clusters here, which a mean hides.",
            get_population_plot(population) if any(g.scores for g in population.groups) else None,
            "" if any(g.scores for g in population.groups) else "No trial has a score to show.",
        ),
        Section("scores", "Scores", "One sentence per score: what it measures.", _scores_html(), False),
        _figure_section(
            "parallel", "Hyperparameters", "One line per trial, coloured by disentanglement.",
            get_parallel_plot(parallel) if parallel.params and parallel.score else None,
            _left_out(parallel.n_unscored, "trials without a disentanglement score are left out")
            if parallel.params else "No hyperparameter varies across the trials.",
        ),
        _figure_section(
            "importance", "Hyperparameter importance",
            "Optuna's fANOVA and PED-ANOVA on the completed trials: how much of the spread in disentanglement "
            "each hyperparameter explains.",
            get_importance_plot(importance) if importance.importances else None, importance.note,
        ),
        _figure_section(
            "mi", "Mutual information during training",
            "The lower bound on I(c; G(z, c)) over H(c): 1 means G's categorical code is fully recoverable "
            "from its images.",
            get_mi_curves_plot(mi) if mi.bands else None,
            _left_out(mi.n_without, "configurations reported no categorical MI (no categorical code)"),
        ),
        _figure_section(
            "gen-curves", "Generator-side accuracy during training",
            "What the MI bound does not say: whether the categorical code decides the factor of G's images, "
            "probed by the dataset's evaluator at every report.",
            get_mi_curves_plot(gen) if gen.bands else None,
            "" if gen.bands else "No trial reported gen/cat_acc during training (no evaluator for this dataset, "
            "or trained before the probe existed).",
        ),
        _figure_section(
            "pareto", "Disentanglement vs quality",
            "Each point is a trial; the red steps are the Pareto front (no trial is better in both).",
            get_pareto_plot(pareto) if pareto.trial_ids else None,
            _left_out(pareto.n_missing, "trials lack a disentanglement or FD score and are not shown"),
        ),
        Section("traversals", "Latent traversals",
                "Rows keep the noise fixed, columns sweep one code (categories, or -2..2).",
                traversal_html(get_traversal_info(tables, render=images)), False),
        Section("failures", "Failures and flags",
                "A run that diverged or errored failed; one that finished with a failure flag (MI stuck, D "
                "over-confident, mode collapse) is flagged: it has scores, read them with the flag in mind.",
                failure_html(failures), False),
        _figure_section(
            "selection", "Label-free model selection",
            "Which trained model to keep without labels: the candidate with the highest label-free score; "
            "labels, where present, check the pick and every signal. The matrix is ModelCentrality's "
            "(InfoGAN-CR): how well each model's Q reads each other model's generator.",
            get_centrality_matrix_plot(matrix) if matrix.trial_ids else None,
            "" if matrix.trial_ids else "No ModelCentrality scores in selection.parquet (analyze --no-selection, "
            "or fewer than two candidates).",
            before=selection_html(selection),
        ),
    ]  # fmt: skip


def _scores_html() -> str:
    items = "".join(
        f"<dt><code>{escape(name)}</code></dt><dd>{escape(text)}</dd>" for name, text in SCORE_DESCRIPTIONS.items()
    )
    return f'<dl class="scores">{items}</dl>'


def build_report(tables: ReportTables, *, images: bool = True) -> str:
    """The whole HTML page as a string."""
    sections = build_sections(tables, images=images)
    trials = tables.trials
    params = varying_params(trials)
    finished = int((~trials["failed"]).sum())
    summary = (
        f"{len(trials)} trials in {trials['group'].nunique()} configurations: {finished} finished "
        f"({int(trials['flagged'].sum())} of them flagged), {int(trials['failed'].sum())} failed; "
        f"varying: {', '.join(params) if params else 'nothing'}."
        + (f" Common to all configurations: {tables.common}." if tables.common else "")
        + ("" if tables.labels else " Analysed without labels (--label-free-only).")
    )
    nav = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>{_note(s.intro)}{s.body}</section>' for s in sections
    )
    title = f"InfoGAN study: {tables.experiment}"
    n_figures = sum(s.has_figure for s in sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="{FIGURE_COUNT_META}" content="{n_figures}"><style>{_CSS}</style>'
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head>'
        f"<body><h1>{escape(title)}</h1><p>{escape(summary)}</p><nav>{nav}</nav>{body}</body></html>"
    )


def write_report(
    experiment: str | Path,
    out: str | Path | None = None,
    *,
    images: bool = True,
    success_threshold: float = SUCCESS_THRESHOLD,
) -> Path:
    """Write the report of an analysed experiment to `out` (default EXPERIMENT/report.html)
    atomically; bad input (no analysed experiment, an unwritable `out`) raises BadInputError
    before anything is written. A seed succeeds when its gen/cat_acc reaches `success_threshold`."""
    out = Path(out) if out is not None else Path(experiment) / "report.html"
    if out.is_dir():
        raise BadInputError(f"-o {out} is a folder; pass a file name such as {out / 'report.html'}")
    if not 0.0 < success_threshold <= 1.0:
        raise BadInputError(f"--success-threshold {success_threshold}: pass a gen/cat_acc in (0, 1], e.g. 0.9")
    tables = load_tables(experiment, success_threshold=success_threshold)
    check_writable(out.parent, what=f"-o {out}", fix="pass -o with a file in a folder you can write to")
    html = build_report(tables, images=images)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as err:  # e.g. the disk filled up while writing
        tmp.unlink(missing_ok=True)
        raise BadInputError(f"-o {out}: cannot write it ({err.strerror or type(err).__name__}); "
                            "pass -o with a file in a folder you can write to") from None  # fmt: skip
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
