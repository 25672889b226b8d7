"""Checkpoints, the home page: which auxiliary loss helps which posts, with a verdict per effect."""
import numpy as np
import pandas as pd
import streamlit as st

from mmaux import figures, paths, report, selection, ui, views
from mmaux.analysis import claims, effects
from mmaux.analysis import custom_slices as custom
from mmaux.analysis import runs as runs_lib
from mmaux.analysis import stats

ABOUT = """
**ITC** (image-text contrastive): text and image are projected into one space, and each post's
text must pick out its own image among the batch's (and vice versa), as in CLIP.
**ITM** (image-text matching): a head on the fused vector tells a post's real image-text pair
from a pair with another post's text. Both are added to the cross-entropy (CE) loss with weight β;
the four variants CE, CE+ITC, CE+ITM and CE+ITC+ITM form a 2 × 2 design (without or with ITC ×
without or with ITM), so each loss's *main effect* and their *interaction* can be estimated.
**SynthPosts**: procedurally generated posts whose image-text relation and evidence source
(text only, image only, both agreeing, both conflicting) are known for every post, so scores can
be broken down by what the model had to use.
"""
VERDICT_HELP = (f"**{effects.SUPPORTED}**: the corrected test CI excludes 0 and the validation posts give the same "
                f"sign (the same models on other posts: a check on posts; the seeds' spread is what guards against "
                f"seed luck). **{effects.VALIDATION_DISAGREES}**: the test CI excludes 0 but the validation posts "
                f"disagree. **{effects.TEST_ONLY}**: the test CI excludes 0 and there are no validation outputs to "
                f"check it on. **{effects.EQUIVALENT}**: the corrected CI covers 0 and lies within ±{effects.MARGIN:g} "
                f"points, and so does the validation Δ: no difference larger than that. **{effects.UNTESTABLE}**: the row cannot differ in this group (its loss cannot "
                f"reach the classifier, or the ITM head did not learn to match: the reason says which); it is left "
                f"out of the family. **{effects.INCONCLUSIVE}**: anything else (the reason column says what, and how "
                f"large an effect this design would have detected).")
EFFECT_COLUMNS = {"effect": "effect", "slice": "slice", "n": "n", "metric": "metric", "delta": "Δ (points)",
                  "ci_low": "CI low", "ci_high": "CI high", "p": "p", "p_bh": "p (BH)",
                  "detectable": "detectable (80 % power)", "val_delta": "Δ val",
                  "verdict": "verdict", "reason": "reason"}
NUMBER_FORMATS = {"Δ (points)": "%+.2f", "CI low": "%+.2f", "CI high": "%+.2f", "p": "%.3f", "p (BH)": "%.3f",
                  "detectable (80 % power)": "%.1f", "Δ val": "%+.2f"}
# the findings table's column widths in pixels: every column within 1366 px, no cell cut
FINDING_WIDTHS = {"group": 230, "effect": 90, "posts": 260, "Δ (CI)": 140, "n": 55, "Δ val": 60}


def effect_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Effect rows as shown: the columns of EFFECT_COLUMNS, small slices marked in `n`."""
    shown = frame.assign(n=frame["n"].astype(str) + frame["small"].map({True: " ⚠ < 30", False: ""}),
                         metric=frame["metric"].map(stats.METRIC_NAMES).fillna(frame["metric"]))
    return shown[list(EFFECT_COLUMNS)].rename(columns=EFFECT_COLUMNS)


def effect_table(frame: pd.DataFrame, key: str) -> None:
    st.dataframe(effect_rows(frame), hide_index=True, key=key,
                 column_config={c: st.column_config.NumberColumn(format=f) for c, f in NUMBER_FORMATS.items()})


def open_predictions(link: dict[str, str] | None) -> None:
    """Go to Predictions on `link`'s view, carrying the user's own slices."""
    if link:
        st.switch_page("pages/1_Predictions.py", query_params=with_slices(link))


def selectable(view: pd.DataFrame, key: str, **options) -> int | None:
    """`view` as a table whose rows are selected one at a time; the selected row's position or None."""
    event = st.dataframe(view, hide_index=True, key=key, on_select="rerun", selection_mode="single-row",
                         width="stretch", **options)
    rows = event.selection.get("rows", []) if event else []
    return int(rows[0]) if rows else None


def with_slices(link: dict[str, str]) -> dict[str, str]:
    """`link` plus the URL's own slices (?custom=), which a slice of theirs needs on Predictions."""
    return {**link, **ui.view_params(ui.CUSTOM_PARAM)}


def show_answer(found: dict[tuple, pd.DataFrame], runs: pd.DataFrame, mine: list) -> None:
    """The page's answer first: per group, each auxiliary variant's Δ vs CE on all posts with its
    CI and verdict; then per group a slice × variant heatmap whose cells open their posts (with
    the user's own slices, `mine`, as rows of it)."""
    st.subheader("Where each auxiliary loss helps")
    rows = [{"group": runs_lib.group_name(key), **views.answer_row(frame)} for key, frame in found.items()]
    if not rows:
        st.info("No group has the CE baseline and an auxiliary variant: there is no effect to show yet.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        v: st.column_config.TextColumn(f"{v} vs CE (macro-F1, points)", width="medium") for v in views.AUX_VARIANTS})
    st.caption("Δ: mean over seeds of (variant − CE) macro-F1 on all test posts, in points, with its corrected CI "
               "and verdict. Below, the same per slice: " + views.MARK_HELP + " Click a cell to open its posts "
               "on Predictions (that variant against CE, fixed and broken posts first); click a slice's name to "
               "open it with the variant whose Δ there is largest.")
    if mine:
        st.caption(ui.slices_caption(mine) + " Each group's effects are re-estimated with them in its correction "
                   "family (define or remove slices on Predictions).")
    for key, frame in found.items():  # one group per row: every variant's column fits 1366 px
        show_heatmap(key, frame, runs)


def show_heatmap(key: tuple, frame: pd.DataFrame, runs: pd.DataFrame) -> None:
    grid = views.heatmap(frame)
    st.markdown(f"**{runs_lib.group_name(key)}**: Δ vs CE in points (macro-F1; the class's F1 on slices by class; "
                "green a gain, red a loss, strong where the corrected CI excludes 0, pale where it covers 0)")
    event = st.dataframe(grid.text.style.apply(lambda _: grid.colours(), axis=None), key=f"heatmap-{key}",
                         on_select="rerun", selection_mode=("single-row", "single-cell"), width="stretch",
                         height=38 + 35 * len(grid.text), column_config={"_index": st.column_config.TextColumn(
                             "slice", width="large")})
    cells = event.selection.get("cells", []) if event else []
    rows = event.selection.get("rows", []) if event else []
    if cells:
        row, variant = cells[0]
        open_predictions(views.cell_link(runs, key, variant, *grid.cells[int(row)]))
    elif rows:
        open_predictions(views.row_link(runs, key, grid, int(rows[0])))


def show_claims(frames: dict[tuple, pd.DataFrame], runs: pd.DataFrame) -> None:
    """The paper's two claims as contrasts between slices, per group; a row opens its posts."""
    st.subheader("The paper's claims")
    every = report.combined(frames.values(), claims.COLUMNS)
    if every.empty:
        st.info("No group has CE and an ITC or ITM variant with the slice columns the claims need "
                "(image_adds, evidence, text_represented, relation). A dataset without them can be tagged by a "
                "relation checkpoint: `mmaux tag --relation-checkpoint DIR --preset P --root D`.")
        return
    pool = claims.pooled(every)
    st.markdown("\n".join(f"- {sentence}" for sentence in claims.sentences(every, pool=pool)))
    head = claims.headline_rows(every)
    chosen = selectable(claims.glance(every), "claims-glance")
    st.caption("One line per claim and group: the variant against CE on the claim's first slicing (the other "
               "operationalisations and the 2 × 2 main effect are in the details). CI: "
               f"false-coverage-adjusted for the group's family ({100 * every['ci_level'].min():.1f}–"
               f"{100 * every['ci_level'].max():.1f} %); 'would detect': the smallest contrast the design finds "
               "with 80 % power. Slices are scored as everywhere on this page (the help under Findings). Select a "
               "row to open its posts with the contrast tested on Predictions.")
    if chosen is not None:
        open_predictions(views.claim_link(runs, head.iloc[chosen]))
    if len(pool):
        st.dataframe(claims.pooled_glance(pool), hide_index=True, key="claims-pooled", width="stretch")
        st.caption("Each claim as a whole: its contrast pooled over the groups that can test it, a random-effects "
                   "meta-analysis (Paule–Mandel τ², Knapp–Hartung CI on groups − 1 degrees of freedom, "
                   "FCR-adjusted over the claims); 'differs by group' when Welch's test of equal contrasts has "
                   f"p < {claims.HET_LEVEL:g}.")
    with st.expander(f"Every claim contrast ({len(every)}: both operationalisations and effects)"):
        chosen = selectable(views.claims_view(every), "claims")
        st.caption("Does each loss help *more* where the paper says? contrast = Δ(slice A) − Δ(slice B), Δ the "
                   "effect (variant − CE, or the 2 × 2 main effect) on the group's metric, per seed, then the effects' "
                   "procedure: a paired t over seeds, one Benjamini–Hochberg family per group (CI adjusted to match), "
                   "the validation posts' contrast as a check. 'as claimed': A gains more than B; 'against the "
                   "claim': the reverse. 'detectable': the smallest contrast this design finds with 80 % power. "
                   "'slices': the dataset's own column ('recorded'), or, where it has none, the relation a relation "
                   "checkpoint predicted for its posts (`mmaux tag`; a tagger's errors blur both slices). Select a "
                   "row to open its posts on Predictions, with its contrast tested.")
    if chosen is not None:
        open_predictions(views.claim_link(runs, every.iloc[chosen]))


def show_findings(frames: dict[tuple, pd.DataFrame], runs: pd.DataFrame) -> None:
    """Only supported effects are phrased as findings, one row each; selecting a row opens its
    posts (the view its heatmap cell opens). Otherwise say why there are none. One table, not a
    card per finding: thirty cards with a link each took a second of every reload to draw."""
    st.subheader("Findings")
    every = report.combined(frames.values(), effects.COLUMNS)
    supported = every[every["verdict"] == effects.SUPPORTED].reset_index(drop=True)
    if len(supported):
        chosen = selectable(views.findings_view(supported), "findings", column_config={
            name: st.column_config.TextColumn(width=px) for name, px in FINDING_WIDTHS.items()})
        st.caption(f"{len(supported)} supported effect(s). Δ: a variant's mean gain over CE, or a main effect of the "
                   "2 × 2 design, in points of macro-F1 (of the class's F1 on slices by class), with its corrected "
                   "CI; 'Δ val' the same on the validation posts. Select a row to open its posts on Predictions (as "
                   "its heatmap cell does).")
        if chosen is not None:
            open_predictions(views.effect_link(runs, supported.iloc[chosen]))
    else:
        counts = every["verdict"].value_counts()
        reasons = every["reason"].value_counts().head(3)
        st.info(f"No effect is supported yet. Of {len(every)} effects: "
                + ", ".join(f"{counts.get(v, 0)} {v}" for v in effects.VERDICTS) + ". Most common reasons: "
                + "; ".join(f"{reason} ({n})" for reason, n in reasons.items()) + ".")
    st.caption(effects.HELP + " " + VERDICT_HELP)


def show_downloads(runs: pd.DataFrame, frames: dict[tuple, pd.DataFrame], contrasts: dict[tuple, pd.DataFrame]) -> None:
    """The findings, claims, every effect and the checkpoints as one Markdown file, and every effect
    as CSV (`mmaux.report`; `mmaux report ROOT` writes the same)."""
    if not frames:
        return
    every = report.combined(frames.values(), effects.COLUMNS)
    claimed = report.combined(contrasts.values(), claims.COLUMNS)
    link = report.view_link((st.context.url or paths.DASHBOARD_URL).split("?")[0], dict(st.query_params))
    roots = ui.checkpoint_roots()
    left, right = st.columns(2)  # built on click, not on every rerun (the report hashes every config.json)
    left.download_button("Download report (Markdown)", lambda: report.markdown(runs, every, claimed, roots, link),
                         file_name="mmaux-report.md", mime="text/markdown")
    right.download_button("Download every effect (CSV)", lambda: report.effects_csv(every),
                          file_name="mmaux-effects.csv", mime="text/csv")


def variant_table(group: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per variant, with its effect on all posts (Δ vs CE, CI, p, verdict)
    as text: the CE row is the reference, not a row of missing numbers."""
    overall = frame[(frame["kind"] == effects.VS_CE) & (frame["slicing"] == effects.OVERALL)]
    overall = overall.rename(columns={"effect": "variant"})[["variant", "delta", "ci_low", "ci_high", "p_bh", "verdict"]]
    table = runs_lib.seed_summary(group).merge(overall, how="left", on="variant")
    estimated = table["delta"].notna()
    table["Δ macro-F1 vs CE"] = np.where(estimated, table["delta"].map("{:+.2f}".format),
                                         np.where(table["variant"] == runs_lib.BASELINE, "reference", ""))
    table["CI"] = np.where(estimated, table["ci_low"].map("{:+.2f}".format) + " to "
                           + table["ci_high"].map("{:+.2f}".format), "")
    table["p (BH)"] = np.where(estimated, table["p_bh"].map(lambda p: "< 0.001" if p < 0.001 else f"{p:.3f}"), "")
    table["verdict"] = np.where(estimated, table["verdict"].astype(object),
                                np.where(table["variant"] == runs_lib.BASELINE, "baseline", "not estimated"))
    return table[["variant", "seeds", "macro_f1", "accuracy", "weighted_f1", "Δ macro-F1 vs CE", "CI", "p (BH)",
                  "verdict"]].rename(columns={"macro_f1": "macro-F1", "weighted_f1": "weighted-F1"})


def show_group(key: tuple, group: pd.DataFrame, frame: pd.DataFrame | None) -> None:
    st.subheader(runs_lib.group_name(key))
    if frame is None:
        st.dataframe(runs_lib.seed_summary(group), hide_index=True)
        return
    st.dataframe(variant_table(group, frame), hide_index=True)
    st.caption(effects.family_caption(frame))
    left, right = st.columns([2, 3])
    with left:
        design = frame[frame["kind"] == effects.DESIGN]
        st.markdown(f"**2 × 2 design** (seeds paired: {int(design['seeds'].max()) if len(design) else 0})")
        if design.empty:
            st.info("The main effects need all four variants (CE, CE+ITC, CE+ITM, CE+ITC+ITM) with common seeds.")
        else:
            st.plotly_chart(figures.effects_forest(design), key=f"effects-{key}")
            effect_table(design, f"design-{key}")
    with right:
        show_slices(key, group, frame)
    best = selection.strongest_effect(frame)
    link = views.effect_link(group, best) if best is not None else None
    where = views.slice_label(best["slicing"], best["slice"], best["n"], False) if link else ""
    if link and st.button(f"See the posts behind its strongest effect ({best['effect']} on {where}) →",
                          key=f"posts-{key}"):
        open_predictions(link)


def show_slices(key: tuple, group: pd.DataFrame, frame: pd.DataFrame) -> None:
    slicings = [s for s in frame["slicing"].unique() if s != effects.OVERALL]
    if not slicings:
        st.info("These test posts carry no slice columns.")
        return
    own = [s for s in slicings if not s.startswith(custom.PREFIX)]  # the user's slices: effects, no bars
    scores = ui.group_slice_scores(group, own)
    for tab, slicing in zip(st.tabs([f"by {s}" for s in slicings]), slicings):
        with tab:
            rows = frame[(frame["slicing"] == slicing)]
            note = rows["slicing_note"].iloc[0]
            if note:
                st.caption(f"**{slicing}** {note}.")
            if slicing in scores:
                st.plotly_chart(figures.slice_bars(scores[slicing], slicing),
                                key=f"slices-{key}-{slicing}")
            effect_table(rows, f"slices-table-{key}-{slicing}")


ui.page_header("Checkpoints", "Which auxiliary loss helps which kind of post: first each variant's Δ vs CE with "
                              "its corrected CI and verdict and a slice × variant heatmap per group (a click opens the "
                              "posts), then the details: scores over seeds, the ITC × ITM design and every slice.")
with st.expander("What are ITC, ITM and SynthPosts?"):
    st.markdown(ABOUT)
runs = ui.sidebar_runs()
broken = runs[runs["error"] != ""]
if not broken.empty:
    st.warning(f"{len(broken)} checkpoint folder(s) cannot be used and are left out:")
    st.dataframe(broken[["folder", "error"]], hide_index=True)
usable = runs_lib.usable(runs)
st.markdown(f"**{len(usable)} checkpoints** in {usable.groupby(runs_lib.GROUP_COLUMNS).ngroups} group(s).")
mine = ui.custom_slices()  # the user's own slices join every group's family
found = {key: ui.group_effects_with(group, mine) for key, group in runs_lib.groups(usable)}
estimated = {key: frame for key, frame in found.items() if frame is not None}
contrasts = {key: ui.group_claims(group) for key, group in runs_lib.groups(usable)}
show_answer(estimated, usable, mine)
with st.container(key="claims-section"):  # one element: the screenshots of the claims section capture it
    show_claims(contrasts, usable)
show_findings(estimated, usable)
show_downloads(usable, estimated, contrasts)
st.header("Details per group")
details = {runs_lib.group_name(key): (key, group) for key, group in runs_lib.groups(usable)}
if details:  # one group at a time: every group's charts and tables at once made the page slow to draw
    name = st.selectbox("Group", list(details), help="Scores over seeds, the ITC × ITM design and every slice of "
                        "one group.", **ui.url_bound("details", list(details), default=next(iter(details))))
    show_group(*details[name], found[details[name][0]])
ui.footer()
