"""mmaux dashboard, home page: every checkpoint and how ITC and ITM change its scores."""
import pandas as pd
import streamlit as st

from mmaux import figures, ui
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError

N_BOOT = 500  # bootstrap resamples per test: enough for a stable 95% CI, cheap to recompute

ABOUT = """
**ITC** (image-text contrastive): text and image are projected into one space, and each post's
text must pick out its own image among the batch's (and vice versa), as in CLIP.
**ITM** (image-text matching): a head on the fused vector tells a post's real image-text pair
from a pair with another post's text. Both are added to the cross-entropy (CE) loss with weight β;
the four variants CE, +ITC, +ITM and +ITC+ITM form a 2 × 2 design (ITC off/on × ITM off/on),
so each loss's *main effect* and their *interaction* can be estimated.
**SynthPosts**: procedurally generated posts whose image-text relation and evidence source
(text only, image only, both agreeing, both conflicting) are known for every post, so scores can
be broken down by what the model had to use.
"""


@st.cache_data(show_spinner="Comparing the loss variants…", max_entries=32)
def compare(group: pd.DataFrame, stamps: tuple) -> runs_lib.GroupComparison | None:
    """The group's comparison, cached until one of its checkpoints changes (`stamps`)."""
    try:
        tables = {folder: ui.test_table(folder) for folder in group["folder"]}
    except (CheckpointError, OSError, ValueError):
        return None
    return runs_lib.compare_group(group, tables, n_boot=N_BOOT)


def variant_table(group: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per variant, with the seed-paired difference from CE."""
    tests = runs_lib.seed_tests(group)[["variant", "diff", "p"]]
    table = runs_lib.seed_summary(group).merge(tests, how="left", on="variant")
    return table[["variant", "seeds", "macro_f1", "accuracy", "weighted_f1", "diff", "p"]].rename(columns={
        "macro_f1": "macro-F1", "weighted_f1": "weighted-F1", "diff": "Δ macro-F1 vs CE", "p": "p (paired t, seeds)"})


def show_group(key: tuple, group: pd.DataFrame) -> None:
    st.subheader(runs_lib.group_name(key))
    st.dataframe(variant_table(group), hide_index=True, column_config={
        "Δ macro-F1 vs CE": st.column_config.NumberColumn(format="%+.1f"),
        "p (paired t, seeds)": st.column_config.NumberColumn(format="%.3f")})
    result = compare(group, tuple(runs_lib.checkpoint_stamp(f) for f in group["folder"]))
    if result is None:
        st.warning("Some test outputs of this group cannot be read (see the Predictions page for which); "
                   "the comparison is skipped.")
        return
    left, right = st.columns([2, 3])
    with left:
        st.markdown(f"**2 × 2 design** ({result.n_posts} test posts; seeds: "
                    + ", ".join(f"{v} {n}" for v, n in result.seeds.items()) + ")")
        if result.effects.empty:
            st.info("The main effects need all four variants (CE, +ITC, +ITM, +ITC+ITM) in this group.")
        else:
            st.plotly_chart(figures.effects_chart(result.effects), key=f"effects-{key}")
            st.dataframe(result.effects.round(3), hide_index=True)
            st.caption("Effects on macro-F1 in points; 95% CIs and p from a bootstrap over test posts and seeds.")
    with right:
        show_slices(key, result)


def show_slices(key: tuple, result: runs_lib.GroupComparison) -> None:
    if not result.slice_scores:
        st.info("These test posts carry no slice columns.")
        return
    tabs = st.tabs([f"by {c}" for c in result.slice_scores])
    for tab, (column, scores) in zip(tabs, result.slice_scores.items()):
        with tab:
            st.plotly_chart(figures.slice_bars(scores, column), key=f"slices-{key}-{column}")
            differences = result.slice_differences[column]
            if not differences.empty:
                st.dataframe(differences[["variant", "slice", "n", "diff", "ci_low", "ci_high", "p", "p_bh"]].round(3),
                             hide_index=True)
                st.caption("Δ macro-F1 vs CE (points) per slice: paired bootstrap over (post, seed) pairs; "
                           "p_bh is Benjamini–Hochberg-adjusted across the slices of each variant.")


ui.page_header("Checkpoints", "Every checkpoint found, grouped by dataset · task · architecture: scores per loss "
                              "variant over seeds, the ITC × ITM design, and scores per slice of the test posts.")
with st.expander("What are ITC, ITM and SynthPosts?"):
    st.markdown(ABOUT)
runs = ui.sidebar_runs()
broken = runs[runs["error"] != ""]
if not broken.empty:
    st.warning(f"{len(broken)} checkpoint folder(s) cannot be used and are left out:")
    st.dataframe(broken[["folder", "error"]], hide_index=True)
usable = runs_lib.usable(runs)
st.markdown(f"**{len(usable)} checkpoints** in {usable.groupby(runs_lib.GROUP_COLUMNS).ngroups} group(s).")
for key, group in runs_lib.groups(usable):
    show_group(key, group)
ui.footer()
