"""Predictions: where an auxiliary loss fixes or breaks the CE baseline's answers."""
import numpy as np
import pandas as pd
import streamlit as st

from mmaux import badges, figures, ui, views
from mmaux.analysis import effects
from mmaux.analysis import runs as runs_lib
from mmaux.analysis import stats

ROWS_PER_PAGE = 100
ANY = views.ANY
TABLE_KEY = "_posts_table"  # the post table's selection state
SHOWN_KEY = "_posts_table_ids"  # the post ids of the rows the table shows


def pick_pair(folders: list[str], runs: pd.DataFrame, names: dict[str, str]) -> tuple[str, str]:
    """Baseline (default: the CE checkpoint) and the auxiliary variant to compare with it; both
    in the URL (?base=, ?vs=) as architecture:variant:seed."""
    variants = runs.set_index("folder")["variant"]
    tokens = {f: views.run_token(runs, f) for f in folders}
    base_default = next((f for f in folders if variants.get(f) == runs_lib.BASELINE), folders[0])
    left, right = st.columns(2)
    baseline = left.selectbox("Baseline", folders, format_func=names.get,
                              **ui.url_bound("base", folders, tokens, default=base_default))
    others = [f for f in folders if f != baseline]
    variant = right.selectbox("Compared with", others, format_func=names.get,
                              **ui.url_bound("vs", others, tokens, default=others[0]))
    return baseline, variant


def filter_posts(posts, preds, baseline, variant, runs, slicings) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Filter widgets (`slicings`: the columns offered to slice by, the user's own slices last);
    returns the mask of posts shown, the mask of the slice and label filters alone (for the
    confusion matrices), and the slice column chosen (or None)."""
    kind_col, slice_col, value_col, label_col = st.columns([3, 2, 3, 3])
    kind = kind_col.selectbox("Show", runs_lib.FLIP_FILTERS, help="Relative to the baseline: 'fixed' means the "
                              "baseline is wrong and the variant right; 'fixed in most seeds' repeats that test "
                              "for every seed both were trained with.",
                              **ui.url_bound("show", runs_lib.FLIP_FILTERS, default=runs_lib.FLIP_FILTERS[0]))
    slicings = [ANY, *slicings]
    column = slice_col.selectbox("Slice by", slicings, **ui.url_bound("slice", slicings, default=ANY))
    column = None if column == ANY else column
    values = [ANY] + (sorted(posts[column].astype(str).unique()) if column else [])
    value = value_col.selectbox("Slice value", values, disabled=column is None,
                                **ui.url_bound("value", values, default=ANY))
    classes = runs_lib.class_names(posts)
    labels = label_col.multiselect("Gold label", classes, placeholder="any",
                                   **ui.url_bound("label", classes, multi=True, default=[]))
    if kind == runs_lib.CONSISTENT:
        pairs = runs_lib.seed_pairs(runs, baseline, variant)
        pair_tables = ui.test_tables(sorted({f for pair in pairs for f in pair}))
        mask = runs_lib.consistent_fixes(posts, pairs, pair_tables)
        st.caption(f"Fixed in more than half of {len(pairs)} seed pair(s).")
    else:
        mask = runs_lib.flip_mask(posts["label_index"], preds, baseline, variant, kind)
    in_slice = np.ones(len(posts), dtype=bool)
    if column and value != ANY:
        in_slice &= (posts[column].astype(str) == value).to_numpy()
    if labels:
        in_slice &= posts["label"].isin(labels).to_numpy()
    query = st.text_input("Search the posts' texts", placeholder="a word or phrase, any case",
                          help="Keeps the posts whose text contains it, over every page of the table.",
                          **ui.url_bound("q", default=""))
    if query:
        mask = mask & posts["text"].str.contains(query, case=False, regex=False).to_numpy()
    return mask & in_slice, in_slice, column


def show_table(posts: pd.DataFrame, tables, names, change: np.ndarray, pair: tuple[str, str]) -> pd.DataFrame:
    """The filtered posts (already in the chosen order), one page at a time, with thumbnails and
    Δp; a click on a row opens that post's detail. Returns the rows shown. The compared pair's
    columns and Δp come right after the gold label, the other checkpoints' after them: at 1366 px
    the grid shows about seven columns, and the pair is what the page is about."""
    pages = max(1, -(-len(posts) // ROWS_PER_PAGE))
    page = (st.number_input(f"Page (of {pages}, {ROWS_PER_PAGE} posts each)", 1, pages,
                            **ui.url_bound("page", list(range(1, pages + 1)), default=1)) if pages > 1 else 1)
    start = (min(int(page), pages) - 1) * ROWS_PER_PAGE
    shown = posts.iloc[start:start + ROWS_PER_PAGE]
    predictions = runs_lib.prediction_columns(shown, {f: tables[f] for f in dict.fromkeys([*pair, *tables])}, names)
    view = pd.concat([shown[["post_id"]].assign(image=[ui.thumbnail(p) for p in shown["image"]]),
                      shown[["text", "label"]], predictions.iloc[:, :2],
                      pd.DataFrame({"Δp": change[start:start + ROWS_PER_PAGE]}, index=shown.index),
                      predictions.iloc[:, 2:]], axis=1)
    st.session_state[SHOWN_KEY] = list(shown["post_id"])
    current = st.session_state.get(ui.POST_KEY)
    at = [i for i, p in enumerate(shown["post_id"]) if p == current]
    st.dataframe(view, hide_index=True, row_height=60, key=TABLE_KEY, on_select=open_clicked,
                 selection_mode="single-row", selection_default={"selection": {"rows": at[:1]}}, column_config={
                     "post_id": st.column_config.TextColumn("post", width="small"),
                     "image": st.column_config.ImageColumn("image", width="small"),
                     "text": st.column_config.TextColumn(width="medium"),
                     "label": st.column_config.TextColumn("gold", width="small"),
                     # narrow checkpoint columns: four of them, Δp and the post fit 1366 px without scrolling
                     **{name: st.column_config.TextColumn(width="small") for name in predictions.columns},
                     "Δp": st.column_config.NumberColumn("Δp", format="%+.3f", help=(
                         "p(gold label) of the compared checkpoint minus the baseline's: positive where the "
                         "variant is surer of the right answer. Click a column header to sort this page."))})
    st.caption("Click a row to open the post below. The baseline and the compared checkpoint come first, with "
               "Δp; the other chosen checkpoints follow.")
    return shown


def open_clicked() -> None:
    """The post table's row click: that post becomes the selected post (detail, URL, other pages)."""
    rows = st.session_state[TABLE_KEY]["selection"]["rows"]
    ids = st.session_state.get(SHOWN_KEY, [])
    if rows and rows[0] < len(ids):
        ui.select_post(ids[rows[0]])


def show_counts(posts, preds, baseline, variant, column, names) -> None:
    """Posts the variant fixed and broke relative to the baseline, per slice: these two runs only."""
    groups = posts[column].astype(str).to_numpy() if column else None
    table = stats.fixed_broken(posts["label_index"], preds[baseline], preds[variant], groups)
    st.markdown(f"**{names[variant]}** vs **{names[baseline]}**: posts fixed and broken"
                + (f" per {column}" if column else ""))
    st.dataframe(table, hide_index=True)
    st.caption("Counts for these two runs only. Whether the variant helps is estimated over every seed below.")


def show_effects(runs: pd.DataFrame, baseline: str, variant: str, column: str | None, slices) -> None:
    """The effect of the compared variant against CE in its group, on every seed (the estimate,
    family and verdicts of the home page), for the chosen slicing; with the user's own `slices`,
    the group's effects are re-estimated with them in the family."""
    usable = runs_lib.usable(runs)
    by_folder = usable.set_index("folder")
    chosen = [f for f in (variant, baseline) if by_folder.loc[f, "variant"] != runs_lib.BASELINE]
    if not chosen:
        st.info("Both checkpoints are CE runs: there is no auxiliary-loss effect to show.")
        return
    row = by_folder.loc[chosen[0]]
    key = tuple(row[runs_lib.GROUP_COLUMNS])
    group = ui.group_of(runs, chosen[0])
    frame = ui.group_effects_with(group, slices)
    if frame is None:
        return
    rows = frame[(frame["effect"] == row["variant"]) & frame["slicing"].isin([effects.OVERALL, column])]
    st.markdown(f"**Effect of {row['variant']} vs CE** in {runs_lib.group_name(key)}, over all seeds"
                + (f", per {column}" if column else ""))
    if column and column not in set(frame["slicing"]):
        st.caption(f"Effects are estimated per {', '.join(s for s in frame['slicing'].unique() if s != effects.OVERALL)}; "
                   f"{column} is not among them, so only the whole test set is shown.")
    if rows.empty:
        st.info(f"{row['variant']} and CE share no seed in this group: no effect can be estimated.")
        return
    shown = rows.assign(n=rows["n"].astype(str) + rows["small"].map({True: " ⚠ < 30", False: ""}),
                        metric=rows["metric"].map(stats.METRIC_NAMES).fillna(rows["metric"]))
    # the reasons (long) go under the table, so that every column fits 1366 px
    st.dataframe(shown[["slice", "n", "metric", "delta", "ci_low", "ci_high", "p_bh", "val_delta", "detectable",
                        "verdict"]],
                 hide_index=True, column_config={
                     "delta": st.column_config.NumberColumn("Δ (points)", format="%+.2f"),
                     "ci_low": st.column_config.NumberColumn("CI low", format="%+.2f"),
                     "ci_high": st.column_config.NumberColumn("CI high", format="%+.2f"),
                     "p_bh": st.column_config.NumberColumn("p (BH)", format="%.3f"),
                     "val_delta": st.column_config.NumberColumn("Δ val", format="%+.2f"),
                     "detectable": st.column_config.NumberColumn("would detect", format="%.1f")})
    with st.expander("Why each verdict"):
        st.markdown("\n".join(f"- **{r.slice}**: {r.verdict}: {r.reason}" for r in shown.itertuples()))
    note = rows["slicing_note"].iloc[-1]
    st.caption(effects.family_caption(frame) + (f" {column} {note}." if column and note else "") + " " + effects.HELP
               + (" " + ui.slices_caption(slices) if slices else ""))


def show_contrast(runs: pd.DataFrame, posts: pd.DataFrame, slicings: list[str], variant: str, slices) -> None:
    """A contrast of the user's own: Δ(slice A) − Δ(slice B) of one effect over the group's seeds,
    decided as the paper's claims are (CI, validation check, verdict, detectable), alone in its
    family; the choice is kept in the URL."""
    st.subheader("Contrast two slices")
    st.caption("Does an effect differ between two slices? The contrast Δ(A) − Δ(B) per seed, tested over the "
               "group's seeds as the paper's claims are (home page). Each contrast you ask for is tested alone: "
               "trying many and keeping the largest over-calls.")
    by_folder = runs_lib.usable(runs).set_index("folder")
    aux = by_folder.loc[variant, "variant"]
    contrast = ui.contrast_form(posts, slicings, aux if aux != runs_lib.BASELINE else "CE+ITC")
    if contrast is None:
        st.info("These posts have no slicing to contrast.")
        return
    if not st.toggle("Test this contrast", help="Estimated over every seed of the group (about a second)",
                     **ui.url_bound("contrast", (False, True), {False: "0", True: "1"}, default=False)):
        return
    frame = ui.group_contrast(ui.group_of(runs, variant), contrast, slices)
    if frame is None:
        return
    if frame.empty:
        st.info("One side of the contrast has no posts, or the group lacks the effect's variants.")
        return
    with st.container(key="contrast-result"):
        st.dataframe(views.contrast_card(frame), column_config={"_index": st.column_config.TextColumn("", width="medium")})


def show_detail(posts: pd.DataFrame, tables, names, classes, pair: tuple[str, str], trained_itc) -> None:
    """One post of those the filter shows, large, with every checkpoint's probabilities (and its
    ITC cosine where `trained_itc[folder]`, the runs table's `itc`) and links to the other pages.
    The picker searches every such post (not only the table's page); the post clicked in the
    table, chosen elsewhere or given by ?post= is shown while the filter keeps it, else the
    filter's first post."""
    ids = list(posts["post_id"])
    if not ids:
        st.info("No post matches the filter.")
        return
    post_id = ui.selected_post(ids) or ids[0]
    ui.select_post(post_id)
    texts = posts.set_index("post_id")["text"]
    st.session_state["_detail_post"] = post_id
    st.selectbox(f"Post ({len(ids)} match the filter; type to search)", ids, key="_detail_post",
                 format_func=lambda p: f"{p}: {texts[p][:80]}",
                 on_change=lambda: ui.select_post(st.session_state["_detail_post"]))
    rows = pd.DataFrame([table.set_index("post_id").loc[post_id] for table in tables.values()])
    rows["checkpoint"] = [names[f] for f in tables]
    left, right = st.columns([2, 3])
    with left:
        first = rows.iloc[0]
        if first["image"]:
            st.image(first["image"], width="stretch")
        st.markdown(f"**Text:** {first['text']}  \n**Gold:** {first['label']}")
        slices = [c for c in runs_lib.slice_columns(posts) if c != runs_lib.LABEL_SLICE]
        st.caption(" · ".join(f"{c}: {first[c]}" for c in slices))
        baseline, variant = pair
        change = float(views.delta_p(posts[posts["post_id"] == post_id], tables, baseline, variant)[0])
        flipped = rows.iloc[list(tables).index(baseline)]["pred"] != rows.iloc[list(tables).index(variant)]["pred"]
        flip = badges.borderline_flip(change, bool(flipped))
        if flip:
            st.markdown(f"{names[variant]} vs {names[baseline]}: {flip.markdown()}", help=flip.help)
    with right:
        st.plotly_chart(figures.probability_bars(rows, classes), key="detail-probs")
        shown = rows[["checkpoint", "pred_label", "confidence", "itm_match", "itc_cosine"]].copy()
        imported = [ui.imported(f) for f in tables]  # predictions only: scores were never recorded, heads or not
        shown["itm_match"] = [("not recorded" if i else "no ITM head") if pd.isna(v) else f"{v:.3f}"
                              for v, i in zip(shown["itm_match"], imported)]
        # a run not trained with ITC stores the cosine of its untrained projections: not a score
        shown["itc_cosine"] = ["not recorded" if i else "not trained with ITC" if not trained_itc[f] else
                               "no ITC projection" if pd.isna(v) else f"{v:.3f}"
                               for v, i, f in zip(shown["itc_cosine"], imported, tables)]
        st.dataframe(shown.round(3), hide_index=True, column_config={
            "pred_label": "predicted", "itm_match": "ITM match P", "itc_cosine": "ITC cosine"})
    ui.post_links(post_id)


ui.page_header("Predictions", "Test posts side by side with each chosen checkpoint's prediction: which ones an "
               "auxiliary loss fixes or breaks relative to the baseline, per slice, with confusion matrices.")
runs = ui.sidebar_runs()
folders = ui.pick_checkpoints("predictions", min=2, max=4, runs=runs)
tables = ui.test_tables(folders)
if len(tables) < 2:
    ui.stop("Fewer than two of the chosen checkpoints have readable test outputs.", "warning")
slices = ui.custom_slices()
tables = ui.with_custom_columns(runs, tables, slices)
posts, preds = runs_lib.align(tables)
if posts.empty:
    ui.stop("The chosen checkpoints share no test posts: choose checkpoints of one dataset and task.", "warning")
labels = ui.checkpoint_labels(runs)
names = dict(zip(tables, runs_lib.distinguishing_names([labels[f] for f in tables])))
classes = runs_lib.class_names(posts)
baseline, variant = pick_pair(list(tables), runs, names)
ui.show_badges(list(tables), names, runs)
slicings = [*runs_lib.slice_columns(posts), *(s.slicing for s in slices if s.slicing in posts)]
mask, in_slice, column = filter_posts(posts, preds, baseline, variant, runs, slicings)
ui.slice_form(posts, slices)
change = views.delta_p(posts, tables, baseline, variant)
order = st.selectbox("Order", views.ORDERS, help="Fixed and broken posts first (each by the size of Δp), by Δp, "
                     "or by post id; the whole filtered list is sorted, not one table page.",
                     **ui.url_bound("order", views.ORDERS, views.ORDER_TOKENS, default=views.BY_ID))
filtered = np.flatnonzero(mask)
sub_preds = {f: p[filtered] for f, p in preds.items()}
ordered = filtered[views.order_posts(posts.iloc[filtered], sub_preds, baseline, variant, change[filtered], order)]
st.markdown(f"**{len(filtered)}** of {len(posts)} test posts match.")
shown = show_table(posts.iloc[ordered], tables, names, change[ordered], (baseline, variant))
left, right = st.columns([2, 3])
with left:
    show_counts(posts, preds, baseline, variant, column, names)
with right:
    st.markdown(f"**Confusion matrices** ({int(in_slice.sum())} posts of the chosen slice and labels)")
    st.plotly_chart(figures.confusion_grid(posts.loc[in_slice, "label_index"],
                                         {names[f]: p[in_slice] for f, p in preds.items()}, classes), key="confusion")
show_effects(runs, baseline, variant, column, slices)  # full width: its ten columns fit 1366 px
show_contrast(runs, posts, slicings, variant, slices)
st.subheader("Post detail")
show_detail(posts.iloc[ordered], tables, names, classes, (baseline, variant), runs.set_index("folder")["itc"])
ui.footer()
