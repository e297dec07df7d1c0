"""The report's plotly figures, in Optuna's visualization habit: `get_x_info(tables) -> NamedTuple`
holds the data (what the tests check), `get_x_plot(info) -> go.Figure` only draws it.

- parallel coordinates of the hyperparameters that vary, coloured by disentanglement;
- hyperparameter importance by Optuna's fANOVA and PED-ANOVA evaluators on an in-memory study;
- the categorical MI curves (mi/cat, normalised by H(c)) per configuration: mean and seed range;
- disentanglement vs FD per trial with the Pareto front (max disentanglement, min FD);
- ModelCentrality's agreement matrix (selection.parquet), one of the label-free signals;
- every seed of every configuration (the ranking score and FD) as boxes with all points.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative

from analysis.report._data import DIS, FD, ReportTables, group_order, ranking_score, varying_params
from analysis.report._population import PopulationInfo
from analysis.report._sections import pick_trial
from trainables.config import InfoGANConfig

MIN_IMPORTANCE_TRIALS = 4
FEW_IMPORTANCE_TRIALS = 10  # below this, the importances come with a caution
COLORSCALE = "Viridis"
PALETTE = qualitative.Plotly  # hex colours, one per configuration group


def _is_log_scale(values: pd.Series) -> bool:
    """Positive float values spanning at least a decade (learning rates) read better in log10."""
    return bool((values > 0).all() and values.max() / values.min() >= 10)


# ---------------------------------------------------------------------------------- parallel coordinates
class ParallelInfo(NamedTuple):
    params: list[str]  # hyperparameters that vary, InfoGANConfig order
    values: dict[str, list[Any]]  # param -> (num_scored,) values of the plotted trials
    score: list[float]  # (num_scored,) disentanglement, the colour
    trial_ids: list[str]
    n_unscored: int  # trials left out: no disentanglement score (e.g. diverged)


def get_parallel_info(tables: ReportTables) -> ParallelInfo:
    trials = tables.trials
    scored = trials.dropna(subset=[DIS])
    params = varying_params(trials)
    values = {p: [v.item() if hasattr(v, "item") else v for v in scored[p]] for p in params}
    return ParallelInfo(params, values, scored[DIS].tolist(), scored["trial_id"].tolist(), len(trials) - len(scored))


def _dimension(name: str, values: list[Any]) -> dict[str, Any]:
    if InfoGANConfig.field_type(name) in (bool, str):
        choices = sorted(set(values), key=str)
        index = {c: i for i, c in enumerate(choices)}
        return {"label": name, "values": [index[v] for v in values], "tickvals": list(range(len(choices))),
                "ticktext": [str(c) for c in choices]}  # fmt: skip
    series = pd.Series(values, dtype=float)
    if _is_log_scale(series):
        return {"label": f"log10({name})", "values": np.log10(series).tolist()}
    return {"label": name, "values": series.tolist()}


def get_parallel_plot(info: ParallelInfo) -> go.Figure:
    dims = [_dimension(p, info.values[p]) for p in info.params]
    dims.append({"label": DIS, "values": info.score})
    line = {
        "color": info.score,
        "colorscale": COLORSCALE,
        "showscale": True,
        "colorbar": {"title": {"text": "disent."}},
    }
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    fig.update_layout(
        title=f"Hyperparameters of {len(info.score)} scored trials", height=460, margin={"l": 80, "r": 60}
    )
    return fig


# ---------------------------------------------------------------------------------- importance
class ImportanceInfo(NamedTuple):
    params: list[str]  # most important first (by the first evaluator)
    importances: dict[str, dict[str, float]]  # evaluator name -> param -> normalised importance
    n_trials: int  # trials in the in-memory study (completed, with a disentanglement score)
    note: str  # why nothing (or not everything) was computed; '' when all went well


def _distribution(name: str, values: pd.Series) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    kind = InfoGANConfig.field_type(name)
    if kind in (bool, str):
        return CategoricalDistribution(sorted({v.item() if hasattr(v, "item") else v for v in values}, key=str))
    if kind is int:
        return IntDistribution(int(values.min()), int(values.max()))
    return FloatDistribution(float(values.min()), float(values.max()), log=_is_log_scale(values))


def get_importance_info(tables: ReportTables) -> ImportanceInfo:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances

    trials = tables.trials
    done = trials[(trials["status"] == "completed") & trials[DIS].notna()]
    params = varying_params(done)
    if len(done) < MIN_IMPORTANCE_TRIALS or len(params) < 2:
        note = (
            f"Not computed: {len(done)} completed trials with a score and {len(params)} varying hyperparameters; "
            f"importance needs at least {MIN_IMPORTANCE_TRIALS} trials and 2 hyperparameters."
        )
        return ImportanceInfo(params, {}, len(done), note)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {p: _distribution(p, done[p]) for p in params}
    study = optuna.create_study(direction="maximize")
    for _, row in done.iterrows():
        values = {p: row[p].item() if hasattr(row[p], "item") else row[p] for p in params}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions, value=float(row[DIS])))
    evaluators = {"fANOVA": FanovaImportanceEvaluator(seed=0), "PED-ANOVA": PedAnovaImportanceEvaluator()}
    importances, problems = {}, []
    for name, evaluator in evaluators.items():
        try:
            result = get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError) as err:  # an evaluator can refuse a small or degenerate study
            problems.append(f"{name} failed: {err}")
            continue
        importances[name] = {p: float(result.get(p, 0.0)) for p in params}
    first = next(iter(importances.values()), {})
    order = sorted(params, key=lambda p: -first.get(p, 0.0))
    if len(done) < FEW_IMPORTANCE_TRIALS:
        problems.append(f"only {len(done)} trials: read these importances as rough")
    return ImportanceInfo(order, importances, len(done), "; ".join(problems))


def get_importance_plot(info: ImportanceInfo) -> go.Figure:
    fig = go.Figure()
    for name, values in info.importances.items():
        params = info.params[::-1]  # plotly draws horizontal bars bottom-up
        fig.add_bar(name=name, y=params, x=[values[p] for p in params], orientation="h")
    fig.update_layout(title=f"Importance for {DIS} ({info.n_trials} trials)", barmode="group",
                      xaxis_title="normalised importance", height=140 + 45 * len(info.params))  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------- MI curves
class CurveBand(NamedTuple):
    group: str
    label: str
    steps: np.ndarray  # (T,) every step any seed reported
    mean: np.ndarray  # (T,) mean over the seeds reporting that step
    low: np.ndarray  # (T,) min over seeds
    high: np.ndarray  # (T,) max over seeds
    n_seeds: int


class MICurvesInfo(NamedTuple):
    bands: list[CurveBand]  # in ranking order; groups without the metric are left out
    n_without: int  # groups that never reported it (e.g. a vanilla GAN)
    metric: str = "mi/cat"  # the reported series drawn


CURVE_LABELS = {  # metric -> (title, y axis title, reference line at 1 or '')
    "mi/cat": ("Categorical MI lower bound / H(c): mean over seeds, band = seed range", "mi/cat (normalised)", "H(c)"),
    "gen/cat_acc": ("Generator-side accuracy during training (the categorical code vs the factor read off G's "
                    "images, probed at each report): mean over seeds, band = seed range", "gen/cat_acc", "perfect"),
}  # fmt: skip


def get_mi_curves_info(tables: ReportTables, metric: str = "mi/cat") -> MICurvesInfo:
    curves = tables.curves[tables.curves["metric"] == metric]
    curves = curves[np.isfinite(curves["value"])].merge(tables.trials[["trial_id", "group", "group_label"]])
    bands = []
    order = group_order(tables.trials, ranking_score(tables))
    by_group = dict(list(curves.groupby("group", sort=False)))  # one pass, not one filter per group
    for group in order:
        g = by_group.get(group)
        if g is None:
            continue
        # analyze writes one value per (trial, metric, step): a pivot, no aggregation
        by_step = g.pivot(index="step", columns="trial_id", values="value").sort_index()  # (T, seeds)
        bands.append(CurveBand(group, str(g["group_label"].iloc[0]), by_step.index.to_numpy(),
                               by_step.mean(axis=1).to_numpy(), by_step.min(axis=1).to_numpy(),
                               by_step.max(axis=1).to_numpy(), by_step.shape[1]))  # fmt: skip
    return MICurvesInfo(bands, len(order) - len(bands), metric)


def get_mi_curves_plot(info: MICurvesInfo) -> go.Figure:
    fig = go.Figure()
    for i, band in enumerate(info.bands):
        color = PALETTE[i % len(PALETTE)]
        x = np.concatenate([band.steps, band.steps[::-1]])  # the band's outline: high forwards, low backwards
        y = np.concatenate([band.high, band.low[::-1]])
        fill = "rgba({}, {}, {}, 0.18)".format(*hex_to_rgb(color))
        fig.add_scatter(x=x, y=y, fill="toself", fillcolor=fill, line={"width": 0},
                        legendgroup=band.group, showlegend=False, hoverinfo="skip")  # fmt: skip
        fig.add_scatter(x=band.steps, y=band.mean, mode="lines", line={"color": color}, legendgroup=band.group,
                        name=f"{band.label} (n={band.n_seeds})")  # fmt: skip
    title, y_title, line = CURVE_LABELS[info.metric]
    fig.add_hline(y=1.0, line={"dash": "dash", "color": "black"}, annotation_text=line)
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=y_title, height=420 + 22 * len(info.bands),
                      legend={"orientation": "h", "yanchor": "top", "y": -0.15})  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------- Pareto front
class ParetoInfo(NamedTuple):
    trial_ids: list[str]  # trials with both scores
    labels: list[str]
    fd: np.ndarray  # (N,) lower is better
    dis: np.ndarray  # (N,) higher is better
    on_front: np.ndarray  # (N,) bool: no other trial is at least as good in both and better in one
    pick: str  # the label-free pick's trial id ('' if none)
    n_missing: int  # trials without both scores


def pareto_front(dis: np.ndarray, fd: np.ndarray) -> np.ndarray:
    """(N,) bool: trial i is not dominated (maximising dis (N,), minimising fd (N,))."""
    assert dis.shape == fd.shape and dis.ndim == 1
    at_least = (dis[None, :] >= dis[:, None]) & (fd[None, :] <= fd[:, None])  # [i, j]: j as good as i
    better = (dis[None, :] > dis[:, None]) | (fd[None, :] < fd[:, None])
    return ~np.any(at_least & better, axis=1)


def get_pareto_info(tables: ReportTables) -> ParetoInfo:
    trials = tables.trials
    both = trials.dropna(subset=[DIS, FD])
    dis, fd = both[DIS].to_numpy(float), both[FD].to_numpy(float)
    return ParetoInfo(both["trial_id"].tolist(), both["group_label"].tolist(), fd, dis, pareto_front(dis, fd),
                      pick_trial(trials), len(trials) - len(both))  # fmt: skip


def get_pareto_plot(info: ParetoInfo) -> go.Figure:
    text = [f"{t}<br>{label}" for t, label in zip(info.trial_ids, info.labels)]
    fig = go.Figure()
    fig.add_scatter(x=info.fd, y=info.dis, mode="markers", name="trials", text=text, hoverinfo="text+x+y",
                    marker={"color": "#8c9bb5", "size": 9})  # fmt: skip
    front = np.flatnonzero(info.on_front)
    front = front[np.argsort(info.fd[front])]
    fig.add_scatter(x=info.fd[front], y=info.dis[front], mode="lines+markers", name="Pareto front",
                    text=[text[i] for i in front], hoverinfo="text+x+y", line={"shape": "hv", "color": "#d62728"},
                    marker={"size": 12, "color": "#d62728"})  # fmt: skip
    if info.pick in info.trial_ids:
        i = info.trial_ids.index(info.pick)
        fig.add_scatter(x=[info.fd[i]], y=[info.dis[i]], mode="markers", name="label-free pick", text=[text[i]],
                        hoverinfo="text+x+y", marker={"symbol": "star", "size": 18, "color": "#ffbf00",
                                                      "line": {"width": 1, "color": "black"}})  # fmt: skip
    fig.update_layout(title="Disentanglement vs sample quality (up and left is better)", height=480,
                      xaxis_title=f"{FD} (lower is better)", yaxis_title=f"{DIS} (higher is better)")  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------- ModelCentrality matrix
class CentralityMatrixInfo(NamedTuple):
    pool: str  # 'all' (one model per group) if present, else the pick's pool; '' when none
    trial_ids: list[str]  # (M,) the pool's models
    labels: list[str]  # (M,) their group labels
    scores: np.ndarray  # (M, M): scores[i, j] = FactorVAE score of model j's Q on model i's data
    pick: str


def get_centrality_matrix_info(tables: ReportTables) -> CentralityMatrixInfo:
    selection, pick = tables.selection, pick_trial(tables.trials)
    pools = list(dict.fromkeys(selection["pool"]))
    with_pick = [p for p in pools if pick in set(selection.loc[selection["pool"] == p, "rep_trial"])]
    pool = "all" if "all" in pools else (with_pick or pools or [""])[0]
    if not pool:
        return CentralityMatrixInfo("", [], [], np.zeros((0, 0)), pick)
    rows = selection[selection["pool"] == pool]
    ids = list(dict.fromkeys([*rows["data_trial"], *rows["rep_trial"]]))
    scores = rows.pivot_table(index="data_trial", columns="rep_trial", values="factor_vae", dropna=False)
    scores = scores.reindex(index=ids, columns=ids).to_numpy(float)  # (M, M), NaN where not scored
    labels = tables.trials.set_index("trial_id")["group_label"]
    return CentralityMatrixInfo(pool, ids, [str(labels.get(t, "")) for t in ids], scores, pick)


def get_centrality_matrix_plot(info: CentralityMatrixInfo) -> go.Figure:
    names = [f"{t} ★" if t == info.pick else t for t in info.trial_ids]
    hover = [[f"data of {a} ({la})<br>Q of {b} ({lb})" for b, lb in zip(info.trial_ids, info.labels)]
             for a, la in zip(info.trial_ids, info.labels)]  # fmt: skip
    fig = go.Figure(go.Heatmap(z=info.scores, x=names, y=names, colorscale=COLORSCALE, text=hover,
                               hovertemplate="%{text}<br>FactorVAE %{z:.3f}<extra></extra>",
                               colorbar={"title": {"text": "FactorVAE"}}))  # fmt: skip
    fig.update_layout(title=f"ModelCentrality agreement, pool {info.pool} (★ the pick)",
                      xaxis_title="model j, its Q judged; centrality = column mean off the diagonal",
                      yaxis_title="model i, its generator's data", yaxis_autorange="reversed",
                      height=260 + 36 * len(names), width=max(720, 320 + 60 * len(names)))  # fmt: skip
    return fig


# ---------------------------------------------------------------------------------- seed populations
def get_population_plot(info: PopulationInfo) -> go.Figure:
    """Every seed of every configuration (ranking order, best on top): the ranking score and FD,
    as boxes with all points, and the success threshold."""
    from plotly.subplots import make_subplots

    titles = (f"{info.score} per seed (higher is better)", f"{FD} per seed (lower is better)")
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04, subplot_titles=titles)
    groups = info.groups[::-1]  # plotly draws categories bottom-up
    for i, g in enumerate(groups):
        color = PALETTE[(len(groups) - 1 - i) % len(PALETTE)]
        for col, values in ((1, g.scores), (2, g.fd)):
            if not values:
                continue
            fig.add_box(x=values, y=[g.label] * len(values), name=g.label, orientation="h", boxpoints="all",
                        jitter=0.4, pointpos=0, marker={"color": color, "size": 8}, line={"color": color},
                        fillcolor="rgba(0,0,0,0)", showlegend=False, row=1, col=col,
                        text=g.trial_ids if col == 1 else None, hoverinfo="x+text" if col == 1 else "x")  # fmt: skip
    if info.labels:
        fig.add_vline(x=info.threshold, line={"dash": "dash", "color": "black"}, row=1, col=1,
                      annotation_text=f"success ≥ {info.threshold:g}")  # fmt: skip
    fig.update_xaxes(type="log", row=1, col=2)
    fig.update_layout(height=160 + 46 * len(groups), margin={"l": 260}, title="Every seed of every configuration")
    return fig
