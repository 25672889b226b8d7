"""What the Predictions page and the home page's links need beyond the runs table: a checkpoint's
short name in a URL, each post's change of gold-label probability between two checkpoints, the
orders the post table can be sorted in, and the link from a home-page cell to its posts."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmaux import selection
from mmaux.analysis import claims, effects
from mmaux.analysis import runs as runs_lib

FLIPS_FIRST, GAIN_FIRST, BY_ID = "fixed, then broken, first", "Δp: largest gain first", "post id"
ORDERS = (FLIPS_FIRST, GAIN_FIRST, BY_ID)
ORDER_TOKENS = {FLIPS_FIRST: "flips", GAIN_FIRST: "dp", BY_ID: "id"}  # ?order=
ANY = "(any)"  # no slice / no slice value


def run_token(runs: pd.DataFrame, folder: str) -> str:
    """'attention:CE+ITC:0': a run's architecture, variant and seed, unique within one task."""
    row = runs.set_index("folder").loc[folder]
    return f"{row['architecture']}:{row['variant']}:{int(row['seed'])}"


def gold_probability(table: pd.DataFrame, post_ids) -> np.ndarray:
    """Each post's predicted probability of its gold label, from a test table's p_<class> columns."""
    rows = table.set_index("post_id").loc[list(post_ids)]
    probs = rows[[f"p_{c}" for c in runs_lib.class_names(table)]].to_numpy(dtype=float)
    return probs[np.arange(len(rows)), rows["label_index"].to_numpy(dtype=int)]


def delta_p(posts: pd.DataFrame, tables: Mapping[str, pd.DataFrame], baseline: str, variant: str) -> np.ndarray:
    """p(gold | variant) − p(gold | baseline) per post of `posts` (positive: the variant is surer
    of the right answer)."""
    ids = posts["post_id"]
    return gold_probability(tables[variant], ids) - gold_probability(tables[baseline], ids)


def order_posts(posts: pd.DataFrame, preds: Mapping[str, np.ndarray], baseline: str, variant: str,
                change: np.ndarray, order: str) -> np.ndarray:
    """Positions of `posts` in the chosen order. FLIPS_FIRST: posts the variant fixed, then the
    ones it broke (each by largest |Δp|), then the rest in id order; GAIN_FIRST: by Δp, largest
    first; BY_ID: as they are."""
    if order == BY_ID:
        return np.arange(len(posts))
    if order == GAIN_FIRST:
        return np.argsort(-change, kind="stable")
    y = posts["label_index"].to_numpy()
    fixed = runs_lib.flip_mask(y, preds, baseline, variant, runs_lib.FIXED)
    broken = runs_lib.flip_mask(y, preds, baseline, variant, runs_lib.BROKEN)
    rank = np.where(fixed, 0, np.where(broken, 1, 2))
    return np.lexsort((np.arange(len(posts)), np.where(rank < 2, -np.abs(change), 0), rank))


def cell_link(runs: pd.DataFrame, key: tuple, variant: str, slicing: str, value: str) -> dict[str, str] | None:
    """Query parameters that open Predictions on one home-page cell: the group's CE and
    `variant` at their lowest common seed, that slice, fixed and broken posts first. None when
    the two share no seed."""
    runs = runs_lib.usable(runs)
    group = runs_lib.group_runs(runs, key)
    seeds = sorted(set(group.loc[group["variant"] == runs_lib.BASELINE, "seed"])
                   & set(group.loc[group["variant"] == variant, "seed"]))
    if not seeds or variant == runs_lib.BASELINE:
        return None
    dataset, task, arch = key
    choice = selection.Selection(dataset, task, (arch,), (runs_lib.BASELINE, variant), (int(seeds[0]),))
    params = choice.to_params()
    params.update(base=f"{arch}:{runs_lib.BASELINE}:{seeds[0]}", vs=f"{arch}:{variant}:{seeds[0]}",
                  order=ORDER_TOKENS[FLIPS_FIRST], show=runs_lib.FLIP_FILTERS[0], label="", page="1",
                  slice=ANY, value=ANY)  # every other filter of the page reset
    if slicing != effects.OVERALL:
        params.update(slice=slicing, value=str(value))
    return params


# --- the home page's answer: one line per group, one heatmap of slices × variants per group -----

AUX_VARIANTS = tuple(v for v in runs_lib.VARIANTS if v != runs_lib.BASELINE)
MARKS = {effects.SUPPORTED: " ✔", effects.TEST_ONLY: " △", effects.VALIDATION_DISAGREES: " ◐",
         effects.EQUIVALENT: " =", effects.INCONCLUSIVE: "", effects.UNTESTABLE: " ∅"}
MARK_HELP = (f"✔ {effects.SUPPORTED} (corrected CI excludes 0 and the validation posts agree); "
             f"△ {effects.TEST_ONLY}; ◐ {effects.VALIDATION_DISAGREES} (test CI excludes 0, validation posts "
             f"disagree); = {effects.EQUIVALENT} (its corrected CI within ±{effects.MARGIN:g} points); "
             f"no mark: {effects.INCONCLUSIVE}; ⚠ fewer than {effects.MIN_POSTS} posts.")
FIRM = (effects.SUPPORTED, effects.TEST_ONLY, effects.VALIDATION_DISAGREES)  # verdicts whose test CI excludes 0


def vs_ce(frame: pd.DataFrame) -> pd.DataFrame:
    """The vs-CE rows of one group's effects table."""
    return frame[frame["kind"] == effects.VS_CE]


def answer_row(frame: pd.DataFrame) -> dict[str, str]:
    """variant -> 'Δ +1.6 (CI −0.9 to +4.0) · inconclusive': each auxiliary variant's effect on
    all posts of one group, with its verdict word ('—' for a variant not trained)."""
    overall = vs_ce(frame)
    overall = overall[overall["slicing"] == effects.OVERALL].set_index("effect")
    return {v: (f"Δ {overall.loc[v, 'delta']:+.1f} (CI {overall.loc[v, 'ci_low']:+.1f} to "
                f"{overall.loc[v, 'ci_high']:+.1f}) · {overall.loc[v, 'verdict']}" if v in overall.index else "—")
            for v in AUX_VARIANTS}


def slice_label(slicing: str, value: str, n: int, small: bool) -> str:
    """'evidence = image_only (n=250)', 'all posts (n=1000)'; ⚠ marks a small slice."""
    name = "all posts" if slicing == effects.OVERALL else f"{slicing} = {value}"
    return f"{name} (n={int(n)}{', ⚠' if small else ''})"


@dataclass(frozen=True)
class Heatmap:
    """One group's slice × variant grid of Δ vs CE (points), as shown and as numbers."""

    text: pd.DataFrame  # rows 'slice (n=…)', one column per variant: '+1.2 ✔'
    delta: pd.DataFrame  # the same cells as numbers (NaN where not estimated)
    verdict: pd.DataFrame  # the same cells' verdicts ('' where not estimated)
    cells: list[tuple[str, str]]  # (slicing, slice) of each row

    def colours(self, scale: float | None = None) -> pd.DataFrame:
        """CSS background per cell: green for a gain, red for a loss, stronger with |Δ| (up to
        `scale` points, default the largest |Δ|) and pale unless the test CI excludes 0 (`FIRM`);
        blank where there is no estimate."""
        values = self.delta.to_numpy(dtype=float)
        firm = self.verdict.isin(FIRM).to_numpy()
        top = scale or (np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0) or 1.0

        def css(v: float, sure: bool) -> str:
            if not np.isfinite(v):
                return ""
            strength = min(abs(v) / top, 1.0)
            r, g, b = (46, 160, 67) if v > 0 else (214, 39, 40)
            alpha = 0.2 + 0.6 * strength if sure else 0.04 + 0.16 * strength
            return f"background-color: rgba({r}, {g}, {b}, {alpha:.2f})"
        return pd.DataFrame([[css(v, f) for v, f in zip(row, sure)] for row, sure in zip(values, firm)],
                            index=self.text.index, columns=self.text.columns)


def heatmap(frame: pd.DataFrame) -> Heatmap:
    """Slices (all posts first, then each slicing's values, the gold label last) × auxiliary
    variants of one group's vs-CE effects."""
    rows = vs_ce(frame)
    order = {s: i for i, s in enumerate([effects.OVERALL, *runs_lib.COMPARISON_SLICES])}
    rows = rows.assign(_order=rows["slicing"].map(order).fillna(len(order))).sort_values(
        ["_order", "slicing", "slice"], kind="stable")
    keys = list(dict.fromkeys(zip(rows["slicing"], rows["slice"])))
    sizes = rows.drop_duplicates(["slicing", "slice"]).set_index(["slicing", "slice"])
    index = [slice_label(s, v, sizes.loc[(s, v), "n"], bool(sizes.loc[(s, v), "small"])) for s, v in keys]
    variants = [v for v in AUX_VARIANTS if v in set(rows["effect"])]
    cell = rows.set_index(["slicing", "slice", "effect"])
    delta = pd.DataFrame([[cell["delta"].get((s, v, e), np.nan) for e in variants] for s, v in keys],
                         index=index, columns=variants)
    text = pd.DataFrame([[(f"{cell['delta'][(s, v, e)]:+.1f}{MARKS.get(cell['verdict'][(s, v, e)], '')}"
                           if (s, v, e) in cell.index else "") for e in variants] for s, v in keys],
                        index=index, columns=variants)
    verdict = pd.DataFrame([[cell["verdict"].get((s, v, e), "") for e in variants] for s, v in keys],
                           index=index, columns=variants)
    return Heatmap(text, delta, verdict, keys)


def row_link(runs: pd.DataFrame, key: tuple, grid: Heatmap, row: int) -> dict[str, str] | None:
    """Query parameters that open Predictions on one heatmap row (a slice's name): the cell of the
    variant whose |Δ| is largest there (the first variant when none is estimated)."""
    deltas = grid.delta.iloc[row].abs()
    variant = deltas.idxmax() if deltas.notna().any() else grid.delta.columns[0]
    return cell_link(runs, key, variant, *grid.cells[row])


# --- the paper's claims ------------------------------------------------------------------------

CLAIM_VARIANT = {"ITC main": "CE+ITC", "ITM main": "CE+ITM"}  # the variant a main effect's link opens


def claims_view(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per group × claim × operationalisation × effect, as the home page shows it."""
    return pd.DataFrame({
        "group": frame["family"], "claim": frame["claim"], "effect": frame["effect"],
        "slice A − slice B": frame["slicing"] + ": " + frame["slice_a"] + " (n=" + frame["n_a"].astype(str) + ") − "
        + frame["slice_b"] + " (n=" + frame["n_b"].astype(str) + ")",
        "slices": frame["slice_source"],  # the dataset's own column, or 'predicted by <checkpoint>' (mmaux tag)
        "Δ on A": frame["delta_a"].map("{:+.1f}".format), "Δ on B": frame["delta_b"].map("{:+.1f}".format),
        "contrast": frame["delta"].map("{:+.1f}".format),
        "CI": frame["ci_low"].map("{:+.1f}".format) + " to " + frame["ci_high"].map("{:+.1f}".format)
        + " (" + (100 * frame["ci_level"]).map("{:.1f}".format) + " %)",
        "Δ val": frame["val_delta"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}"),
        "verdict": [claims.verdict_text(r) for r in frame.itertuples()],
        "detectable (80 % power)": frame["detectable"].map("{:.1f}".format),
    }).reset_index(drop=True)


def contrast_card(frame: pd.DataFrame) -> pd.DataFrame:
    """A user's contrast (one row of `claims_view`) turned on its side: one line per field, so
    the whole result fits a 1366 px page instead of a row cut at the right."""
    card = claims_view(frame).drop(columns=["claim"]).T
    card.columns = ["your contrast"] if len(frame) == 1 else [f"contrast {i + 1}" for i in range(len(frame))]
    return card


def findings_view(supported: pd.DataFrame) -> pd.DataFrame:
    """One row per supported effect, `effects.finding` in columns narrow enough that no cell is
    cut at 1366 px: the group, the effect (a variant vs CE, or a main effect of the 2 × 2 design),
    the posts, Δ with its corrected CI (points of macro-F1, of the class's F1 on slices by class,
    as in the heatmap), n and the validation posts' Δ."""
    if not (supported["verdict"] == effects.SUPPORTED).all():
        raise ValueError("only supported effects are findings")
    return pd.DataFrame({
        "group": supported["family"],
        "effect": supported["effect"],
        "posts": np.where(supported["slicing"] == effects.OVERALL, "all posts",
                          supported["slicing"] + " = " + supported["slice"].astype(str)),
        "Δ (CI)": supported["delta"].map("{:+.1f}".format) + " (" + supported["ci_low"].map("{:+.1f}".format)
        + " to " + supported["ci_high"].map("{:+.1f}".format) + ")",
        "n": supported["n"],
        "Δ val": supported["val_delta"].map("{:+.1f}".format),
    }).reset_index(drop=True)


def claim_link(runs: pd.DataFrame, row) -> dict[str, str] | None:
    """Query parameters that open Predictions on one claim row: its variant against CE at their
    lowest common seed, sliced by the claim's slicing (both sides in the per-slice table), and
    "Contrast two slices" set to the claim's own contrast (its effect, slicing, slice A and B) and
    tested, over every seed of the group as the claim was."""
    variant = CLAIM_VARIANT.get(row.effect, row.effect)
    params = cell_link(runs, (row.dataset, row.task, row.architecture), variant, effects.OVERALL, ANY)
    if params is not None:
        params.update(slice=row.slicing, value=ANY, ceffect=row.effect, cslice=row.slicing, ca=str(row.slice_a),
                      cb=str(row.slice_b), contrast="1")
    return params


def effect_link(runs: pd.DataFrame, row) -> dict[str, str] | None:
    """Query parameters that open Predictions on one effect row (a finding, a group's strongest
    effect): its variant (a main effect: the variant that has that loss alone) against CE, on
    its slice, as its heatmap cell does."""
    get = row.get if isinstance(row, pd.Series) else lambda name: getattr(row, name)
    key = tuple(get(c) for c in runs_lib.GROUP_COLUMNS)
    return cell_link(runs, key, CLAIM_VARIANT.get(get("effect"), get("effect")), get("slicing"), get("slice"))


# --- numbers beside their references (Match scores, Embeddings) ---------------------------------
# A missing number is said in words: an empty cell reads "None" in the browser's table.

REFERENCE_COLUMNS = ("value", "random projection", "chance")
NO_REFERENCE = {"value": "not measured", "random projection": "none (no separate frozen encoders)",
                "chance": "none"}  # what an empty cell of `spaces.reference_table` means, per column
REFERENCE = "reference"  # the row the others are compared with


def reference_text(table: pd.DataFrame) -> pd.DataFrame:
    """A `spaces.reference_table` as shown: its numbers to three decimals, and a reference that
    does not exist (the modality gap has no chance level; ViLT no frozen encoders to project) in
    words."""
    return table.assign(**{c: [f"{v:.3f}" if pd.notna(v) else NO_REFERENCE[c] for v in table[c]]
                           for c in REFERENCE_COLUMNS if c in table})


def against_first(table: pd.DataFrame, columns) -> pd.DataFrame:
    """`table` (one row per checkpoint, the first the reference) with `columns`, which compare each
    checkpoint with the first (CKA, k-NN overlap), as text: 'reference' in the first row."""
    return table.assign(**{c: [REFERENCE if i == 0 else f"{v:.3f}" for i, v in enumerate(table[c])]
                           for c in columns})


# --- Your post's batch mode ---------------------------------------------------------------------

def batch_view(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`probes.batch_predictions` output (one row per post × checkpoint, failed rows with an
    `error`) as one row per post and one column per checkpoint ('positive 0.91'), the failed
    posts first with their reason, every post with its CSV row; and how many posts failed."""
    errors = table["error"] if "error" in table else pd.Series("", index=table.index)
    failed, good = table[errors != ""], table[errors == ""]
    checkpoints = list(dict.fromkeys(good["checkpoint"])) if "checkpoint" in good else []
    rows = [{"row": int(r["row"]), "image": r["image"], "text": r["text"], "error": r["error"],
             **dict.fromkeys(checkpoints, "")} for _, r in failed.iterrows()]
    if len(good):
        cells = good.assign(cell=good["label"] + " " + good["confidence"].map("{:.2f}".format))
        wide = cells.pivot_table(index=["row", "image", "text"], columns="checkpoint", values="cell",
                                 aggfunc="first", sort=False)
        for (row, image, text), values in wide.iterrows():
            rows.append({"row": int(row), "image": image, "text": text, "error": "",
                         **{c: values.get(c, "") for c in checkpoints}})
    frame = pd.DataFrame(rows, columns=["row", "image", "text", "error", *checkpoints])
    return frame, len(failed)
