"""The paper's claims as contrasts between slices: exact by hand, silent under the null (CE runs
relabelled as the variant), found when planted on one slice, robust to a user's columns."""
import numpy as np
import pandas as pd
import pytest

from mmaux.analysis import claims, effects, simulate
from mmaux.analysis.effects import SplitPredictions
from mmaux.analysis.runs import VARIANTS

LABELS = ("neg", "pos")


def _tiny() -> SplitPredictions:
    """8 posts, image_adds on the first 4; two seeds. CE is right on posts 0-5; CE+ITC fixes
    post 6 with seed 0 and post 7 with seed 1, and breaks post 0 with seed 1."""
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    posts = pd.DataFrame({"post_id": [f"p{i}" for i in range(8)], "label_index": y,
                          "image_adds": [True] * 4 + [False] * 4, "label": np.array(LABELS)[y]})
    ce = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    preds = {("CE", 0): ce, ("CE", 1): ce, ("CE+ITC", 0): ce.copy(), ("CE+ITC", 1): ce.copy()}
    preds["CE+ITC", 0][6] = 0
    preds["CE+ITC", 1][7] = 1
    preds["CE+ITC", 1][0] = 1
    return SplitPredictions(posts, preds, LABELS)


def test_contrast_by_hand():
    table = claims.split_contrasts(_tiny()).set_index(["effect", "slicing"])
    row = table.loc[("CE+ITC", "image_adds")]
    # slice A (posts 0-3, both classes): CE perfect; ITC seed 0 perfect, seed 1 calls post 0 'pos':
    # F1(neg) = 2/3, F1(pos) = 4/5 -> macro 11/15
    delta_a = np.mean([0.0, 11 / 15 - 1.0])
    # slice B (posts 4-7): CE right on 4, 5 -> F1(neg) = 1/2, F1(pos) = 1/2; each ITC seed fixes one
    # post: 3 of 4 right, macro-F1 = (2/3 + 4/5) / 2 for both classes' counts -> 11/15
    delta_b = np.mean([11 / 15 - 0.5, 11 / 15 - 0.5])
    assert row["delta_a"] == pytest.approx(100 * delta_a) and row["delta_b"] == pytest.approx(100 * delta_b)
    assert row["delta"] == pytest.approx(100 * (delta_a - delta_b))
    per_seed = 100 * np.array([0.0 - (11 / 15 - 0.5), (11 / 15 - 1.0) - (11 / 15 - 0.5)])
    assert row["se"] == pytest.approx(per_seed.std(ddof=1) / np.sqrt(2)) and row["df"] == 1
    assert (row["n_a"], row["n_b"], row["seeds"]) == (4, 4, 2)
    assert list(table.index) == [("CE+ITC", "image_adds")]  # no ITC main without the four cells; no other column


def _relabelled_ce(rng, seeds: int) -> tuple[SplitPredictions, SplitPredictions]:
    """A null group: 4 × `seeds` CE runs, relabelled as the four variants."""
    splits = simulate.simulate_group(rng, simulate.REGIMES[1], 4 * seeds)
    out = []
    for split in splits:
        preds = {(variant, s): split.preds["CE", i * seeds + s] for i, variant in enumerate(VARIANTS)
                 for s in range(seeds)}
        out.append(SplitPredictions(split.posts, preds, split.labels))
    return out[0], out[1]


def test_under_the_null_no_contrast_is_supported():
    """CE runs relabelled as the variants: every contrast is truly 0. Families with any
    'supported' contrast stay within the 5 % the BH family and the validation check allow (at
    most 3 of 40, the binomial's 95th percentile with p = 0.05), the null p-values at 5 %."""
    rng = np.random.default_rng(21)
    frames = [claims.group_contrasts(*_relabelled_ce(rng, seeds=3)) for _ in range(40)]
    assert all(len(f) == 8 for f in frames)
    assert sum((f["verdict"] == effects.SUPPORTED).any() for f in frames) <= 3
    p = np.concatenate([f["p"].to_numpy() for f in frames])
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09


def test_a_contrast_planted_on_one_slice_is_found_as_claimed():
    """CE+ITC better on image_adds posts only (about +12 points there, 0 elsewhere): the ITC
    claim's image_adds contrast is supported, in the claimed direction, with 5 seeds; the ITM
    claim, which nothing was planted for, is not."""
    rng = np.random.default_rng(22)
    test, val = simulate.simulate_group(rng, simulate.REGIMES[0], 5, planted=0.4, where="image_adds")
    table = claims.group_contrasts(test, val, family="planted").set_index(["claim", "effect", "slicing"])
    row = table.loc[simulate.CLAIM_ROW]
    assert row["verdict"] == effects.SUPPORTED and row["direction"] == claims.AS_CLAIMED
    assert row["delta_a"] > 8 and abs(row["delta_b"]) < 3 and row["ci_low"] > 0
    itm = table.loc[claims.ITM_CLAIM.name]  # nothing planted: never supported (a precise null may be equivalent)
    assert itm["verdict"].isin([effects.INCONCLUSIVE, effects.EQUIVALENT]).all() and (itm["detectable"] > 0).all()
    assert (table["family_size"] == 8).all() and (table["family"] == "planted").all()


def test_a_dataset_without_the_slicings_tests_what_it_can():
    split = _tiny()
    posts = split.posts.drop(columns="image_adds").assign(text_is_represented=[1, 0] * 4)
    table = claims.split_contrasts(SplitPredictions(posts, split.preds, LABELS))
    assert table.empty  # CE+ITM and ITM main are not trained here
    assert claims.missing(posts) == ["ITC helps where the image adds meaning: image_adds = True − image_adds = False",
                                     "ITC helps where the image adds meaning: evidence = image_only − evidence = "
                                     "text_only", "ITM helps where image and text are loosely related: relation = "
                                     "image_notadds_text_notrepr − the rest"]
    op = claims.ITM_CLAIM.operationalisations[0]
    a, b = op.masks(posts)  # TIR's text_is_represented (0/1) stands in for text_represented
    assert list(a) == [False, True] * 4 and list(b) == [True, False] * 4


def test_rest_is_every_other_post_with_a_value():
    posts = pd.DataFrame({"relation": ["image_notadds_text_notrepr", "image_adds_text_repr", None,
                                       "image_notadds_text_repr"]})
    a, b = claims.ITM_CLAIM.operationalisations[1].masks(posts)
    assert list(a) == [True, False, False, False] and list(b) == [False, True, False, True]


def _claim_rows() -> pd.DataFrame:
    """Two groups' headline contrasts and one detail row, as `claims_table` lays them out."""
    base = dict(dataset="D", claim=claims.ITC_CLAIM.name, slice_a="True", slice_b="False", n_a=300, n_b=700,
                ci_level=0.994, seeds=20, margin=3.0)
    rows = [
        dict(base, family="D · s · concat", task="s", architecture="concat", effect="CE+ITC", slicing="image_adds",
             delta=-17.5, ci_low=-20.7, ci_high=-14.3, verdict=effects.SUPPORTED, direction=claims.AGAINST,
             detectable=2.1),
        dict(base, family="D · s · concat", task="s", architecture="concat", effect="ITC main", slicing="image_adds",
             delta=-9.0, ci_low=-12.0, ci_high=-6.0, verdict=effects.SUPPORTED, direction=claims.AGAINST,
             detectable=2.0),
        dict(base, family="D · r · attention", task="r", architecture="attention", effect="CE+ITC",
             slicing="image_adds", delta=0.7, ci_low=-3.8, ci_high=5.3, verdict=effects.INCONCLUSIVE,
             direction=claims.AS_CLAIMED, detectable=4.4),
        dict(base, family="D · m · mmbt", task="m", architecture="mmbt", effect="CE+ITC", slicing="image_adds",
             delta=1.0, ci_low=-2.0, ci_high=4.0, verdict=effects.INCONCLUSIVE, direction=claims.AS_CLAIMED,
             detectable=3.9),
    ]
    return pd.DataFrame(rows)


def test_the_claims_in_words_one_line_per_claim_and_group_and_one_sentence_per_claim():
    frame = _claim_rows()
    glance = claims.glance(frame)
    assert list(glance.columns) == ["claim", "group", "verdict", "contrast [CI]", "would detect"]
    assert glance.values.tolist() == [
        [claims.ITC_CLAIM.name, "s · concat", "contradicted", "-17.5 [-20.7, -14.3]", "≥ 2.1"],
        [claims.ITC_CLAIM.name, "r · attention", "not decided", "+0.7 [-3.8, +5.3]", "≥ 4.4"],
        [claims.ITC_CLAIM.name, "m · mmbt", "not decided", "+1.0 [-2.0, +4.0]", "≥ 3.9"]]
    assert claims.sentences(frame) == [
        f"{claims.ITC_CLAIM.name}: contradicted in s · concat (-17.5 [-20.7, -14.3]); not decided in the other 2 "
        "groups (would detect ≥ 3.9–4.4)."]
    assert [claims.verdict_text(r) for r in frame.itertuples()] == [
        "supported · against the claim", "supported · against the claim", "inconclusive", "inconclusive"]
    disagree = frame.assign(verdict=effects.VALIDATION_DISAGREES)
    assert {claims.outcome(r) for r in disagree.itertuples()} == {claims.DISAGREE}


def test_an_equivalent_contrast_and_an_untestable_one_in_words():
    frame = _claim_rows()
    frame.loc[2, ["verdict", "delta", "ci_low", "ci_high"]] = [effects.EQUIVALENT, 0.4, -1.0, 1.8]
    frame.loc[3, ["verdict", "reason"]] = [effects.UNTESTABLE, "the ITM head did not learn to match (AUROC 0.51)"]
    glance = claims.glance(frame)
    assert glance["verdict"].tolist() == ["contradicted", "no difference beyond ±3 points", effects.UNTESTABLE]
    assert glance["would detect"].tolist() == ["≥ 2.1", "≥ 4.4", "—"]
    assert claims.sentences(frame) == [
        f"{claims.ITC_CLAIM.name}: contradicted in s · concat (-17.5 [-20.7, -14.3]); no difference beyond ±3 points "
        "in r · attention (+0.4 [-1.0, +1.8]); untestable where the ITM head did not learn to match: m · mmbt "
        "(AUROC 0.51)."]
    assert [claims.verdict_text(r) for r in frame.itertuples()][2:] == ["equivalent · within ±3 points",
                                                                         effects.UNTESTABLE]
    # groups untestable for one cause are named once under it, each with its own figures
    frame.loc[2, ["verdict", "reason"]] = [effects.UNTESTABLE, "the ITM head did not learn to match (AUROC 0.50)"]
    assert claims.sentences(frame)[0].endswith(
        "untestable where the ITM head did not learn to match: r · attention (AUROC 0.50), m · mmbt (AUROC 0.51).")


def _groups(deltas, ses, vals, verdicts=None) -> pd.DataFrame:
    """Headline rows of the ITC claim in len(deltas) groups."""
    k = len(deltas)
    return pd.DataFrame({"dataset": "D", "task": "t", "architecture": [f"a{i}" for i in range(k)],
                         "family": [f"D · t · a{i}" for i in range(k)], "claim": claims.ITC_CLAIM.name,
                         "effect": "CE+ITC", "slicing": "image_adds", "delta": deltas, "se": ses, "df": 19.0, "seeds": 20,
                         "n_a": 300, "n_b": 700, "val_delta": vals, "val_n": 300,
                         "verdict": verdicts or [effects.INCONCLUSIVE] * k})


def test_the_pooled_claim_is_a_random_effects_meta_analysis_by_hand():
    """Paule–Mandel τ² (the τ² at which the weighted residuals' Q equals k − 1), random-effects
    weights, the Knapp–Hartung standard error (never below the plain one), t on k − 1 degrees of
    freedom; Cochran's Q for heterogeneity."""
    from scipy import optimize
    from scipy import stats as sstats

    delta, se = np.array([-17.5, 1.0, 2.0, 0.5]), np.array([1.6, 1.5, 2.0, 1.0])
    frame = _groups(delta, se, [-15.0, 0.5, 1.0, 0.2])
    pool = claims.pooled(frame).set_index("claim").loc[claims.ITC_CLAIM.name]
    w = 1 / se ** 2
    fixed = (w * delta).sum() / w.sum()
    q = (w * (delta - fixed) ** 2).sum()

    def excess(tau2):
        weights = 1 / (se ** 2 + tau2)
        return (weights * (delta - (weights * delta).sum() / weights.sum()) ** 2).sum() - 3

    tau2 = optimize.brentq(excess, 0, 1e4)
    w_re = 1 / (se ** 2 + tau2)
    mean = (w_re * delta).sum() / w_re.sum()
    plain = np.sqrt(1 / w_re.sum())
    hksj = np.sqrt((w_re * (delta - mean) ** 2).sum() / (3 * w_re.sum()))
    assert pool["tau"] == pytest.approx(np.sqrt(tau2), rel=1e-3)
    assert pool["delta"] == pytest.approx(mean, rel=1e-4) and pool["se"] == pytest.approx(max(plain, hksj), rel=1e-4)
    assert pool["df"] == 3 and pool["groups"] == 4 and pool["q"] == pytest.approx(q)
    assert pool["heterogeneity"] == claims.DIFFERS and pool["p_het"] < claims.HET_LEVEL
    assert pool["p"] == pytest.approx(2 * sstats.t.sf(abs(mean) / max(plain, hksj), 3), rel=1e-3)
    assert pool["val_delta"] == pytest.approx((w_re / w_re.sum()) @ np.array([-15.0, 0.5, 1.0, 0.2]), rel=1e-4)
    assert pool["verdict"] == effects.INCONCLUSIVE  # one group against the others: the pool cannot decide
    assert "differs by group" in claims.pooled_text(pool)


def test_consistent_groups_pool_to_a_verdict_and_untestable_groups_are_left_out():
    frame = _groups([4.0, 5.0, 4.5, 3.0], [0.8, 0.9, 0.7, 5.0], [3.0, 4.0, 4.0, 2.0],
                    [effects.SUPPORTED] * 3 + [effects.UNTESTABLE])
    pool = claims.pooled(frame).set_index("claim").loc[claims.ITC_CLAIM.name]
    assert pool["groups"] == 3 and pool["left_out"] == "t · a3"
    assert pool["verdict"] == effects.SUPPORTED and pool["direction"] == claims.AS_CLAIMED
    assert pool["heterogeneity"] == claims.CONSISTENT
    text = claims.pooled_text(pool)
    assert text.startswith(f"pooled over 3 groups: {pool['delta']:+.1f} [") and "holds; consistent across groups" in text
    assert text.endswith("not pooled: t · a3")
    precise_zero = _groups([0.2, -0.3, 0.1], [0.3, 0.3, 0.3], [0.1, 0.0, 0.2])
    assert claims.pooled(precise_zero)["verdict"].tolist() == [effects.EQUIVALENT]
    assert claims.pooled(_groups([1.0], [1.0], [1.0])).empty  # one group: nothing to pool
