"""Plotly figures for the dashboard pages: pure functions from tables to figures, so pages stay
thin and the figures can be checked without a browser. Variants keep one colour everywhere."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.metrics import confusion_matrix

VARIANT_COLORS = {"CE": "#7f7f7f", "CE+ITC": "#1f77b4", "CE+ITM": "#ff7f0e", "CE+ITC+ITM": "#2ca02c"}
HEIGHT = 340


def slice_bars(scores: pd.DataFrame, slice_title: str) -> go.Figure:
    """Grouped bars of macro-F1 per slice value, one bar per variant, ± std over seeds.
    `scores` is `runs.slice_scores` output (variant, slice, n, macro_f1, std)."""
    frame = scores.assign(slice=scores["slice"].astype(str) + " (n=" + scores["n"].astype(str) + ")")
    fig = go.Figure([go.Bar(x=part["slice"], y=part["macro_f1"], name=variant, marker_color=VARIANT_COLORS.get(variant),
                            error_y=dict(type="data", array=part["std"]))
                     for variant, part in frame.groupby("variant", sort=False)])
    fig.update_layout(barmode="group", height=HEIGHT, margin=dict(t=30, b=10), xaxis_title=slice_title,
                      yaxis_title="macro-F1 (points)")
    return fig


def effects_chart(effects: pd.DataFrame) -> go.Figure:
    """Forest plot of the 2 × 2 design's effects: estimate with its 95% bootstrap CI, zero marked."""
    fig = go.Figure(go.Scatter(
        x=effects["estimate"], y=effects["effect"], mode="markers",
        error_x=dict(type="data", symmetric=False, array=effects["ci_high"] - effects["estimate"],
                     arrayminus=effects["estimate"] - effects["ci_low"]),
        marker=dict(size=10, color="#1f77b4")))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(height=200, margin=dict(t=10, b=10), xaxis_title="effect on macro-F1 (points)",
                      yaxis=dict(autorange="reversed"))
    return fig


def confusion_grid(y_true, preds: dict[str, np.ndarray], label_names: Sequence[str]) -> go.Figure:
    """Confusion matrices (rows gold, columns predicted, counts) side by side, one per title in
    `preds`, sharing one colour scale."""
    labels = list(range(len(label_names)))
    matrices = {title: confusion_matrix(y_true, pred, labels=labels) for title, pred in preds.items()}
    top = max(int(m.max()) for m in matrices.values()) if matrices else 1
    fig = make_subplots(rows=1, cols=len(matrices), subplot_titles=[_short(t) for t in matrices],
                        shared_yaxes=True, horizontal_spacing=0.03)
    for i, matrix in enumerate(matrices.values(), start=1):
        fig.add_trace(go.Heatmap(z=matrix, x=list(label_names), y=list(label_names), zmin=0, zmax=top,
                                 colorscale="Blues", showscale=i == len(matrices), text=matrix,
                                 texttemplate="%{text}", hovertemplate="gold %{y}<br>predicted %{x}<br>%{z} posts"),
                      row=1, col=i)
        fig.update_xaxes(title_text="predicted", row=1, col=i)
    fig.update_yaxes(title_text="gold", autorange="reversed", row=1, col=1)
    fig.update_layout(height=HEIGHT + 40, margin=dict(t=50, b=10))
    fig.update_annotations(font_size=11)
    return fig


def probability_bars(table: pd.DataFrame, label_names: Sequence[str], by: str = "checkpoint") -> go.Figure:
    """Class probabilities (p_<class> columns) of each row of `table`, grouped by class and
    coloured by the `by` column."""
    long = table.melt(id_vars=[by], value_vars=[f"p_{n}" for n in label_names], var_name="class",
                      value_name="probability")
    long["class"] = long["class"].str[2:]
    long[by] = long[by].map(_short)
    fig = px.bar(long, x="class", y="probability", color=by, barmode="group", range_y=(0, 1))
    fig.update_layout(height=HEIGHT, margin=dict(t=20, b=10), legend_title_text="",
                      legend=dict(orientation="h", y=-0.25))
    return fig


def delta_heatmap(deltas: pd.DataFrame, column: str) -> go.Figure:
    """Perturbation × checkpoint heatmap of one delta column (e.g. 'Δ confidence'), diverging
    around zero; a flipped prediction is marked with ✗."""
    grid = deltas.pivot(index="probe", columns="checkpoint", values=column)
    flipped = deltas.pivot(index="probe", columns="checkpoint", values="flipped").reindex_like(grid)
    text = np.where(flipped.to_numpy(dtype=bool), "✗ ", "") + grid.round(2).astype(str).to_numpy()
    bound = float(np.nanmax(np.abs(grid.to_numpy()))) if grid.notna().any().any() else 1.0
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=[_short(c) for c in grid.columns], y=list(grid.index),
                               zmid=0, zmin=-bound, zmax=bound, colorscale="RdBu", text=text,
                               texttemplate="%{text}", colorbar=dict(title=column)))
    fig.update_layout(height=60 + 32 * len(grid), margin=dict(t=20, b=10), yaxis=dict(autorange="reversed"))
    return fig


def _short(label: str) -> str:
    """Drop the task from a checkpoint label ('sentiment · attention · ITC on · ...'): charts show
    checkpoints of one task side by side, and the legend must stay readable."""
    parts = str(label).split(" · ")
    return " · ".join(parts[1:]) if len(parts) == 5 else str(label)
