"""Plotly figures for the dashboard pages: pure functions from arrays and tables to figures, so
pages stay thin and the figures can be checked without a browser. Variants keep one colour
everywhere."""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots
from sklearn.metrics import confusion_matrix

from mmaux.analysis.effects import EQUIVALENT, INCONCLUSIVE, SUPPORTED, TEST_ONLY, UNTESTABLE, VALIDATION_DISAGREES

HEIGHT = 360
LEGEND_ROW = 40  # px above a plot for a horizontal legend that must not cover the data
VARIANT_COLORS = {"CE": "#7f7f7f", "CE+ITC": "#1f77b4", "CE+ITM": "#ff7f0e", "CE+ITC+ITM": "#2ca02c"}
MODALITY_SYMBOLS = {"image": "circle", "text": "x", "fused": "circle"}
GROUP_COLOURS = {"own text": "#2ca02c", "most similar texts": "#ff7f0e", "least similar texts": "#7f7f7f"}


# --- match scores -------------------------------------------------------------------------------

def ranked_texts(frame: pd.DataFrame, score_label: str) -> go.Figure:
    """Horizontal bars of one image's score with each text (frame: text, score, group); the legend
    sits in a row above the bars, where it covers none of them (the own text's bar is on top)."""
    fig = px.bar(frame.iloc[::-1], x="score", y="text", color="group", orientation="h",
                 color_discrete_map=GROUP_COLOURS, labels={"score": score_label, "text": ""})
    fig.update_layout(height=max(220, 26 * len(frame)) + LEGEND_ROW, margin=dict(t=LEGEND_ROW, b=10),
                      legend=dict(title_text="", orientation="h", x=0, y=1, yanchor="bottom"),
                      yaxis=dict(tickfont=dict(size=10)))
    return fig


def match_heatmap(matrix: np.ndarray, post_ids, score_label: str) -> go.Figure:
    """Images (rows) × texts (columns) of the same posts; true pairs on the diagonal."""
    ids = [str(p) for p in post_ids]
    fig = go.Figure(go.Heatmap(z=matrix, x=ids, y=ids, colorscale="Viridis", colorbar=dict(title=""),
                               hovertemplate="image %{y} · text %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(height=HEIGHT + 60, margin=dict(t=30, b=10), title=dict(text=score_label, font=dict(size=12)),
                      xaxis=dict(title="text of post", type="category"),
                      yaxis=dict(title="image of post", type="category", autorange="reversed"))
    return fig


def true_vs_shuffled(scores: Mapping[str, tuple[np.ndarray, np.ndarray]], score_labels: Mapping[str, str]) -> go.Figure:
    """Per checkpoint, overlaid histograms of true-pair and shuffled-pair scores."""
    fig = make_subplots(rows=1, cols=len(scores), subplot_titles=list(scores), horizontal_spacing=0.05)
    for col, (name, (true, shuffled)) in enumerate(scores.items(), start=1):
        for values, label, colour in ((true, "true pairs", "#2ca02c"), (shuffled, "shuffled pairs", "#d62728")):
            fig.add_trace(go.Histogram(x=values, name=label, marker_color=colour, opacity=0.6, nbinsx=30,
                                       histnorm="probability", showlegend=col == 1, legendgroup=label), 1, col)
        fig.update_xaxes(title_text=score_labels[name], row=1, col=col)
    fig.update_layout(barmode="overlay", height=HEIGHT, margin=dict(t=40, b=10))
    fig.update_annotations(font_size=11)
    return fig


def reliability(curves: Mapping[str, pd.DataFrame], x_title: str) -> go.Figure:
    """Accuracy of the classifier per score bin, one line per checkpoint, the diagonal dotted."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"),
                             showlegend=False, hoverinfo="skip"))
    for name, curve in curves.items():
        shown = curve[curve["count"] > 0]
        fig.add_trace(go.Scatter(x=shown["mean_confidence"], y=shown["accuracy"], mode="lines+markers", name=name,
                                 customdata=shown["count"], hovertemplate="%{y:.2f} right (n=%{customdata})"))
    fig.update_layout(height=HEIGHT, margin=dict(t=10, b=10), xaxis_title=x_title,
                      yaxis_title="share classified right", xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    return fig


def calibration(curves: Mapping[str, pd.DataFrame], eces: Mapping[str, float]) -> go.Figure:
    """The classifier's reliability diagram: accuracy against confidence per bin, one line per
    checkpoint (its ECE in the legend), the diagonal = perfectly calibrated."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"),
                             name="calibrated", hoverinfo="skip"))
    for name, curve in curves.items():
        shown = curve[curve["count"] > 0]
        fig.add_trace(go.Scatter(x=shown["mean_confidence"], y=shown["accuracy"], mode="lines+markers",
                                 name=f"{name} (ECE {eces[name]:.3f})", customdata=shown["count"],
                                 hovertemplate="confidence %{x:.2f}: %{y:.2f} right (n=%{customdata})"))
    fig.update_layout(height=HEIGHT, margin=dict(t=10, b=10), xaxis_title="confidence (P of the predicted class)",
                      yaxis_title="share classified right", xaxis_range=[0, 1], yaxis_range=[0, 1.02],
                      legend=dict(orientation="h", y=-0.25))
    return fig


def accuracy_by_score(tables: Mapping[str, pd.DataFrame], x_title: str) -> go.Figure:
    """Share classified right per bin of another score (tables: mean_score, accuracy, count), one
    line per checkpoint. No diagonal: the score is not a probability of being right."""
    fig = go.Figure()
    for name, table in tables.items():
        fig.add_trace(go.Scatter(x=table["mean_score"], y=table["accuracy"], mode="lines+markers", name=name,
                                 customdata=table["count"], hovertemplate="%{y:.2f} right (n=%{customdata})"))
    fig.update_layout(height=HEIGHT, margin=dict(t=10, b=10), xaxis_title=x_title, yaxis_title="share classified right",
                      yaxis_range=[0, 1.02], legend=dict(orientation="h", y=-0.25))
    return fig


# --- embedding maps -----------------------------------------------------------------------------

def embedding_maps(panels: Mapping[str, pd.DataFrame], colour: str, lines: bool, highlight: str | None,
                   picked: Collection[str] = ()) -> go.Figure:
    """One map per checkpoint, side by side (frames: post_id, modality, x, y and the `colour`
    column); marker = modality; optional grey lines from each post's image to its text; the
    `highlight`ed post drawn large in every panel; the `picked` posts (a box or lasso selection)
    marked in every panel, the others faded. Points carry their post_id (customdata)."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.03)
    numeric = all(pd.api.types.is_numeric_dtype(f[colour]) and not pd.api.types.is_bool_dtype(f[colour])
                  for f in panels.values())
    categories = sorted({str(v) for f in panels.values() for v in f[colour]})
    palette = dict(zip(categories, px.colors.qualitative.Plotly * 4))
    present = {m for f in panels.values() for m in f["modality"].unique()}
    modalities = [m for m in MODALITY_SYMBOLS if m in present]  # image and text, or the fused posts
    for col, frame in enumerate(panels.values(), start=1):
        if lines:
            fig.add_trace(_pair_lines(frame), 1, col)
        traces = [_points(frame, modality, colour, col == 1) for modality in modalities] if numeric else \
            [_category_points(frame, modality, colour, value, palette[value], col == 1)
             for modality in modalities for value in categories]
        for trace in traces:
            if picked:
                chosen = set(picked)
                trace.selectedpoints = [i for i, post in enumerate(trace.customdata) if post in chosen]
                trace.unselected = dict(marker=dict(opacity=0.15))
            fig.add_trace(trace, 1, col)
        if highlight is not None:
            fig.add_trace(_highlight(frame, highlight), 1, col)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=HEIGHT + 140, margin=dict(t=40, b=10), legend=dict(orientation="h"),
                      clickmode="event+select")
    fig.update_annotations(font_size=11)
    return fig


def _pair_lines(frame: pd.DataFrame) -> go.Scattergl:
    images, texts = (frame[frame["modality"] == m].set_index("post_id") for m in ("image", "text"))
    texts = texts.loc[images.index]
    xs = np.column_stack([images["x"], texts["x"], np.full(len(images), np.nan)]).ravel()
    ys = np.column_stack([images["y"], texts["y"], np.full(len(images), np.nan)]).ravel()
    return go.Scattergl(x=xs, y=ys, mode="lines", line=dict(color="rgba(120,120,120,0.25)", width=1),
                        hoverinfo="skip", showlegend=False)


def _points(frame, modality, colour, legend) -> go.Scattergl:
    part = frame[frame["modality"] == modality]
    return go.Scattergl(x=part["x"], y=part["y"], mode="markers", name=modality, customdata=part["post_id"],
                        marker=dict(symbol=MODALITY_SYMBOLS[modality], size=6, color=part[colour],
                                    colorscale="Viridis", showscale=legend, colorbar=dict(title=colour)),
                        hovertemplate=f"%{{customdata}} ({modality}): %{{marker.color:.3f}}<extra></extra>",
                        showlegend=legend)


def _category_points(frame, modality, colour, value, colour_value, legend) -> go.Scattergl:
    part = frame[(frame["modality"] == modality) & (frame[colour].astype(str) == value)]
    return go.Scattergl(x=part["x"], y=part["y"], mode="markers", name=f"{value} · {modality}",
                        legendgroup=f"{value}{modality}", showlegend=legend, customdata=part["post_id"],
                        marker=dict(symbol=MODALITY_SYMBOLS[modality], size=6, color=colour_value, opacity=0.75),
                        hovertemplate=f"%{{customdata}} ({modality}, {value})<extra></extra>")


HIGHLIGHT_SIZE = 18  # the selected (or uploaded) post: three times the other points' size


def _highlight(frame: pd.DataFrame, post_id: str) -> go.Scatter:
    """The post's points drawn large and black on top (its image and text joined by a line), each
    with its modality's symbol, so it stands out in a map of a thousand small points."""
    part = frame[frame["post_id"] == post_id]
    return go.Scatter(x=part["x"], y=part["y"], mode="markers+lines", showlegend=False,
                      line=dict(color="black", width=2), customdata=part["modality"],
                      marker=dict(size=HIGHLIGHT_SIZE, color="black", opacity=0.9,
                                  symbol=[MODALITY_SYMBOLS[m] for m in part["modality"]],
                                  line=dict(color="white", width=2)),
                      hovertemplate=f"{post_id} (%{{customdata}})<extra></extra>")


# --- attributions -------------------------------------------------------------------------------

def image_attribution(image: Image.Image, scores: np.ndarray, title: str = "", diverging: bool = True,
                      peak: float | None = None) -> go.Figure:
    """The image with a semi-transparent heatmap of pooled attribution scores on top
    (green = supports the class, red = against it; for a difference map, blue/orange), its colours
    running from −peak to +peak (default: the map's own largest |score|; maps shown side by side
    pass one peak, so that a colour means the same score in each)."""
    size = image.size
    peak = max(float(np.abs(scores).max()) if peak is None else peak, 1e-12)
    cells = scores.shape[0]
    fig = px.imshow(np.asarray(image.convert("RGB").resize(size)))
    colours = [[0, "rgb(214,39,40)"], [0.5, "rgba(255,255,255,0)"], [1, "rgb(44,160,44)"]] if diverging else \
        [[0, "rgb(31,119,180)"], [0.5, "rgba(255,255,255,0)"], [1, "rgb(255,127,14)"]]
    step = size[0] / cells
    fig.add_trace(go.Heatmap(z=scores, x0=step / 2, dx=step, y0=step / 2, dy=step, zmin=-peak, zmax=peak,
                             colorscale=colours, opacity=0.6, colorbar=dict(title="")))
    fig.update_layout(height=HEIGHT, margin=dict(t=30, b=0, l=0, r=0), title=dict(text=title, font=dict(size=12)))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def reliance_bars(table: pd.DataFrame, perturbations) -> go.Figure:
    """Mean drop of P(predicted class) per perturbation, grouped by slice value
    (table: checkpoint, slice, value, n and one column per perturbation)."""
    long = table.melt(id_vars=["checkpoint", "slice", "value", "n"], value_vars=list(perturbations),
                      var_name="perturbation", value_name="drop")
    long["group"] = long["slice"] + ": " + long["value"]
    fig = px.bar(long, x="group", y="drop", color="perturbation", barmode="group", facet_row="checkpoint",
                 labels={"drop": "drop in P(pred)", "group": ""})
    fig.update_layout(height=220 * long["checkpoint"].nunique() + 80, margin=dict(t=30, b=10))
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1], font_size=11))
    return fig


def slice_bars(scores: pd.DataFrame, slice_title: str) -> go.Figure:
    """Grouped bars of macro-F1 per slice value, one bar per variant, ± std over seeds.
    `scores` is `runs.slice_scores` output (variant, slice, n, macro_f1, std)."""
    frame = scores.assign(slice=scores["slice"].astype(str) + " (n=" + scores["n"].astype(str) + ")")
    column = "score" if "score" in frame else "macro_f1"  # effects.slice_scores: recall on one-class slices
    fig = go.Figure([go.Bar(x=part["slice"], y=part[column], name=variant, marker_color=VARIANT_COLORS.get(variant),
                            error_y=dict(type="data", array=part["std"]))
                     for variant, part in frame.groupby("variant", sort=False)])
    fig.update_layout(barmode="group", height=HEIGHT, margin=dict(t=30, b=10), xaxis_title=slice_title,
                      yaxis_title="macro-F1 (recall on one-class slices), points" if column == "score"
                      else "macro-F1 (points)")
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


VERDICT_COLOURS = {SUPPORTED: "#2ca02c", TEST_ONLY: "#98df8a", VALIDATION_DISAGREES: "#ff7f0e", EQUIVALENT: "#1f77b4",
                   INCONCLUSIVE: "#7f7f7f", UNTESTABLE: "#c7c7c7"}


def effects_forest(effects: pd.DataFrame) -> go.Figure:
    """Forest plot of `effects.effects_table` rows: Δ with its corrected CI, one row per effect ·
    slice, coloured by verdict, zero marked."""
    names = effects["effect"] + np.where(effects["slice"] == "all", "", " · " + effects["slice"].astype(str))
    fig = go.Figure([go.Scatter(
        x=part["delta"], y=names[part.index], mode="markers", name=verdict,
        marker=dict(size=9, color=VERDICT_COLOURS.get(verdict, "#1f77b4")),
        error_x=dict(type="data", symmetric=False, array=part["ci_high"] - part["delta"],
                     arrayminus=part["delta"] - part["ci_low"]))
        for verdict, part in effects.groupby("verdict", sort=False)])
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(height=120 + 22 * len(effects), margin=dict(t=10, b=10), xaxis_title="Δ (points)",
                      yaxis=dict(autorange="reversed"), legend_title_text="verdict")
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
    """Drop the task from a checkpoint label ('sentiment · attention · CE+ITC · seed 0'): charts
    show checkpoints of one task side by side, and the legend must stay readable."""
    parts = str(label).split(" · ")
    return " · ".join(parts[1:]) if len(parts) == 4 else str(label)
