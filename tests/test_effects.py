"""Effects of the auxiliary losses: the seed-paired estimate on simulated runs with known
answers (false-positive rate at 3 and 5 seeds, power, a bad seed), FDR families, verdicts, slices.
The calibration of the whole procedure (family, validation check, coverage) over many simulated
groups is `bench/effects_calibration.py`'s: too slow for the suite."""
import numpy as np
import pandas as pd
import pytest

from mmaux.analysis import effects, runs, stats
from mmaux.analysis.effects import INCONCLUSIVE, SUPPORTED, TEST_ONLY, VALIDATION_DISAGREES, SplitPredictions
from mmaux.analysis.stats import paired_contrast

N_SIMULATIONS = 1000  # a rate's Monte Carlo error is then ±0.7 points at 5 %
N_BOOT = 200


# --- simulated runs -----------------------------------------------------------------------------

def simulate_runs(rng, effect=0.0, seeds=5, posts=300, classes=3, seed_sd=0.1, run_sd=0.1, bad_seed=None):
    """(y (posts,), arms (2, seeds, posts)): a CE and a variant arm trained with the same seeds.

    Post i has a difficulty θ_i; run (arm a, seed s) an ability α = effect·a + u_s + v_as, with
    u_s shared by the two runs of a seed (what pairing by seed removes) and v_as its own; it
    answers post i right when α − θ_i + 0.7·ε > 0, else a random wrong class. Runs agree on most
    posts, as checkpoints trained on the same data do. `bad_seed` = (s, shift) moves the
    variant's run of seed s by `shift`.
    """
    theta = rng.normal(-0.7, 1.0, posts)
    y = rng.integers(0, classes, posts)
    u = rng.normal(0, seed_sd, seeds)
    ability = np.stack([arm * effect + u + rng.normal(0, run_sd, seeds) for arm in (0, 1)])
    if bad_seed is not None:
        ability[1, bad_seed[0]] += bad_seed[1]
    right = ability[..., None] - theta + 0.7 * rng.normal(0, 1, (2, seeds, posts)) > 0
    wrong = (y + rng.integers(1, classes, (2, seeds, posts))) % classes
    return y, np.where(right, y, wrong)


def rejection_rate(regime: dict, effect: float, seeds: int = 5) -> float:
    rng = np.random.default_rng(12)
    rejected = 0
    for i in range(N_SIMULATIONS):
        y, arms = simulate_runs(rng, effect, seeds, **regime)
        estimate = paired_contrast(y, arms, [-1, 1], range(3), n_boot=N_BOOT, seed=i)
        rejected += estimate.p <= 0.05
    return rejected / N_SIMULATIONS


POSTS_NOISE = dict(seed_sd=0.05, run_sd=0.03)  # seeds agree: the test posts are the noise
SEED_NOISE = dict(seed_sd=0.3, run_sd=0.3)  # seeds disagree: few seeds are the noise


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize("regime", [POSTS_NOISE, SEED_NOISE], ids=["posts-noise", "seed-noise"])
def test_no_true_effect_is_rejected_about_5_percent_of_the_time(regime, seeds):
    """A valid test at α = 0.05 rejects a true null 5 % of the time: not more (the old two-level
    bootstrap rejected 10 % with 3 disagreeing seeds), and not far less (it was 1 % where posts
    dominate, its intervals 1.4× too wide)."""
    assert 0.035 <= rejection_rate(regime, effect=0.0, seeds=seeds) <= 0.065


def test_large_true_effect_is_found_80_percent_of_the_time():
    # ability +0.3 is about +8 points of macro-F1, with seed and run noise 0.1 each
    assert rejection_rate(dict(seed_sd=0.1, run_sd=0.1), effect=0.3) >= 0.8


def test_one_bad_seed_widens_the_interval_to_cover_zero():
    rng = np.random.default_rng(3)
    y, arms = simulate_runs(rng, effect=0.3, seeds=5, posts=1000, **POSTS_NOISE)
    good = paired_contrast(y, arms, [-1, 1], range(3), n_boot=N_BOOT)
    assert good.interval()[0] > 0  # four seeds and one more agree: clearly positive
    arms[1, 2] = (y + 1) % 3  # the variant's seed 2 run gets every post wrong
    bad = paired_contrast(y, arms, [-1, 1], range(3), n_boot=N_BOOT)
    low, high = bad.interval()
    assert low < 0 < high and bad.df == 4 and bad.se > 5 * good.se


# --- the estimate, by hand ----------------------------------------------------------------------

def test_identical_arms_have_no_effect():
    y = np.array([0, 1, 2] * 10)
    runs_ = np.stack([np.roll(y, s) for s in range(3)])
    estimate = paired_contrast(y, np.stack([runs_, runs_]), [-1, 1], range(3), n_boot=50)
    assert (estimate.delta, estimate.se, estimate.p, estimate.interval()) == (0.0, 0.0, 1.0, (0.0, 0.0))


def test_perfect_against_always_wrong():
    y = np.array([0, 1] * 20)
    arms = np.stack([np.tile(1 - y, (3, 1)), np.tile(y, (3, 1))])
    estimate = paired_contrast(y, arms, [-1, 1], [0, 1], n_boot=50)
    assert (estimate.delta, estimate.se, estimate.p, estimate.seeds, estimate.posts) == (1.0, 0.0, 0.0, 3, 40)


def test_contrast_of_four_cells_by_hand():
    y = np.zeros(10, dtype=int)
    right = lambda k: np.r_[np.zeros(k, int), np.ones(10 - k, int)]  # noqa: E731  accuracy k / 10
    # accuracy F(itc, itm): F00 0.5, F10 0.7, F01 0.6, F11 1.0 (arms in VARIANTS order)
    arms = np.stack([right(k)[None] for k in (5, 7, 6, 10)])
    weights = {name: [w[v] for v in runs.VARIANTS] for name, (_, w) in effects.CONTRASTS.items()
               if name in ("ITC main", "ITM main", "ITC×ITM")}
    delta = {name: paired_contrast(y, arms, w, [0, 1], "accuracy", n_boot=20).delta
             for name, w in weights.items()}
    assert delta["ITC main"] == pytest.approx(((0.7 - 0.5) + (1.0 - 0.6)) / 2)
    assert delta["ITM main"] == pytest.approx(((0.6 - 0.5) + (1.0 - 0.7)) / 2)
    assert delta["ITC×ITM"] == pytest.approx((1.0 - 0.6) - (0.7 - 0.5))


def test_several_seeds_are_a_paired_t_and_one_seed_a_post_bootstrap():
    """With seeds, the error is the seeds' spread alone (each seed's contrast already holds its
    runs' post noise; counting the posts again made intervals 1.4× too wide): se = sd/√S,
    df = S − 1, whatever the post resamples say. One seed: the resamples' spread, df = inf."""
    point = np.array([0.01, -0.02, 0.03])
    resamples = np.random.default_rng(0).normal(0, 0.5, (100, 3))
    estimate = stats.contrast_estimate(point, resamples, posts=100)
    assert (estimate.se, estimate.df) == (pytest.approx(point.std(ddof=1) / np.sqrt(3)), 2.0)
    assert estimate.p == pytest.approx(stats.stats.ttest_1samp(point, 0).pvalue)
    single = stats.contrast_estimate(point[:1], resamples[:, :1], posts=100)
    assert (single.se, single.df) == (pytest.approx(resamples[:, 0].std(ddof=1)), np.inf)


def test_detectable_effect_has_the_stated_power():
    """At the detectable effect, a t test at that level rejects with probability 0.8 (checked by
    simulating t statistics), and more seeds (more df) detect smaller effects."""
    detectable = stats.detectable_effect(se=1.0, df=4, alpha=0.01)
    rng = np.random.default_rng(1)
    t = (detectable + rng.normal(0, 1, 200_000)) / np.sqrt(rng.chisquare(4, 200_000) / 4)
    assert np.mean(np.abs(t) > stats.stats.t.ppf(0.995, 4)) == pytest.approx(0.8, abs=0.005)
    assert stats.detectable_effect(1.0, 20, 0.01) < detectable < stats.detectable_effect(1.0, 2, 0.01)
    assert stats.detectable_effect(0.0, 4, 0.01) == 0.0
    assert stats.detectable_effect(1.0, np.inf, 0.05) == pytest.approx(1.96 + 0.8416, abs=1e-3)


def test_pairing_by_seed_removes_the_shared_seed_effect():
    """Seed s helps both arms alike: the per-seed differences are equal, so the seeds add no
    variance (se = 0) although the scores themselves vary a lot between seeds."""
    y = np.zeros(20, dtype=int)
    base = np.stack([np.r_[np.zeros(k, int), np.ones(20 - k, int)] for k in (4, 10, 16)])
    variant = np.stack([np.r_[np.zeros(k + 2, int), np.ones(18 - k, int)] for k in (4, 10, 16)])
    estimate = paired_contrast(y, np.stack([base, variant]), [-1, 1], [0, 1], "accuracy", n_boot=100)
    assert estimate.delta == pytest.approx(0.1) and estimate.se == pytest.approx(0) and estimate.p == 0.0


def test_estimate_p_and_interval_agree():
    estimate = stats.Estimate(delta=2.0, se=1.0, df=4.0, seeds=5, posts=100)
    low, _ = estimate.interval(1 - estimate.p)
    assert low == pytest.approx(0.0, abs=1e-9)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    y, arms = simulate_runs(rng, seeds=3, posts=100)
    first = paired_contrast(y, arms, [-1, 1], range(3), n_boot=100, seed=4)
    assert first == paired_contrast(y, arms, [-1, 1], range(3), n_boot=100, seed=4)


def test_fcr_level():
    assert stats.fcr_level([0.01, 0.04, 0.5, 0.9]) == pytest.approx(1 - 2 * 0.05 / 4)
    assert stats.fcr_level([0.5, 0.9]) == pytest.approx(1 - 0.05 / 2)


# --- a group: slices, family, verdicts ----------------------------------------------------------

LABELS = ("neg", "pos")


def _split(rng, posts=200, seeds=3, effect=0.0, variants=runs.VARIANTS):
    """SplitPredictions of the four variants; slicing `source` has a one-class slice ('conflict',
    all pos) and a 10-post slice ('rare'); slicing `mirror` duplicates the label."""
    y = rng.integers(0, 2, posts)
    source = np.where(y == 1, "conflict", "agree").astype(object)
    source[np.flatnonzero(y == 0)[:10]] = "rare"
    frame = pd.DataFrame({"post_id": [f"p{i}" for i in range(posts)], "label_index": y, "source": source,
                          "mirror": np.where(y == 1, "yes", "no"), "label": np.array(LABELS)[y]})
    preds = {}
    for v in variants:
        for s in range(seeds):
            right = rng.random(posts) < 0.7 + (effect if v != "CE" else 0.0)
            preds[v, s] = np.where(right, y, 1 - y)
    return SplitPredictions(frame, preds, LABELS)


def test_group_effects_family_slices_and_intervals():
    rng = np.random.default_rng(5)
    table = effects.group_effects(_split(rng), None, slicings=("source", "mirror", "label"), n_boot=100,
                                  family="toy")
    per_variant = 1 + 3 + 2  # all, source (3 values), mirror (2); label duplicates mirror: dropped
    assert len(table) == 3 * per_variant + 3 and (table["family_size"] == len(table)).all()
    np.testing.assert_allclose(table["p_bh"], stats.bh_adjust(table["p"]))
    design = table[table["kind"] == effects.DESIGN]
    assert list(design["effect"]) == ["ITC main", "ITM main", "ITC×ITM"] and set(design["slice"]) == {"all"}
    rows = table.set_index(["effect", "slicing", "slice"])
    assert rows.loc[("CE+ITC", "source", "conflict"), "metric"] == stats.CLASS_F1  # each slice one class
    assert rows.loc[("CE+ITC", "mirror", "yes"), "metric"] == stats.CLASS_F1
    assert "label" not in set(table["slicing"])
    assert rows.loc[("CE+ITC", "all", "all"), "metric"] == "macro_f1"
    assert rows.loc[("CE+ITC", "source", "rare"), "small"] and rows.loc[("CE+ITC", "source", "rare"), "n"] == 10
    notes = table.drop_duplicates("slicing").set_index("slicing")["slicing_note"]
    assert notes["mirror"].startswith("every slice is one gold class") and notes["source"] == notes["mirror"]
    assert notes["all"] == ""
    # the FCR-adjusted interval excludes 0 exactly when p_bh <= alpha
    excludes = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    assert (excludes == (table["p_bh"] <= effects.ALPHA)).all()
    assert (table["verdict"] == INCONCLUSIVE).all()
    assert table["reason"].str.contains("no validation outputs").all()
    assert (table["detectable"] > 0).all()
    # "would detect" is a priori: 80 % power at the family's first BH level, α / family size
    first = effects.ALPHA / len(table)
    expected = [100 * stats.detectable_effect(r.se / 100, r.df, first, effects.POWER) for r in table.itertuples()]
    np.testing.assert_allclose(table["detectable"], expected, rtol=1e-12)


def test_a_slice_holding_all_posts_of_a_class_is_scored_by_the_class_f1_over_all_posts():
    """A threshold moved toward 'pos' raises its recall for free; its F1 also pays for the 'neg'
    posts now called 'pos'. Here CE+ITM says 'pos' for every post: recall on the 'conflict' slice
    (all pos) would be 100 − 70 = +30 points, the class's F1 is 2/3 of the way there."""
    rng = np.random.default_rng(6)
    split = _split(rng, seeds=2)
    y = split.posts["label_index"].to_numpy()
    for s in range(2):
        split.preds["CE+ITM", s] = np.ones_like(y)
    table = effects.group_effects(split, slicings=("source",), n_boot=20)
    row = table.set_index(["effect", "slice"]).loc[("CE+ITM", "conflict")]
    f1 = lambda pred: 2 * np.sum((pred == 1) & (y == 1)) / (np.sum(y == 1) + np.sum(pred == 1))  # noqa: E731
    expected = np.mean([f1(split.preds["CE+ITM", s]) - f1(split.preds["CE", s]) for s in range(2)])
    assert row["metric"] == stats.CLASS_F1 and row["delta"] == pytest.approx(100 * expected)
    assert row["n"] == np.sum(y == 1)


def test_a_lone_one_class_slice_is_scored_by_its_class_f1_with_false_alarms_anywhere():
    rng = np.random.default_rng(6)
    split = _split(rng, seeds=2)
    y = split.posts["label_index"].to_numpy()
    mixed = np.where(y == 1, "only_pos", "mixed").astype(object)
    mixed[np.flatnonzero(y == 1)[:5]] = "mixed"  # the other slice holds both classes
    split.posts["mixed"] = mixed
    table = effects.group_effects(split, slicings=("mixed",), n_boot=20)
    row = table.set_index(["effect", "slice"]).loc[("CE+ITM", "only_pos")]
    mask = mixed == "only_pos"

    def f1(pred):  # recall on the slice, false alarms among every post of another class
        tp, fn = np.sum(pred[mask] == 1), np.sum(pred[mask] != 1)
        return 2 * tp / (2 * tp + fn + np.sum((pred == 1) & (y != 1)))

    expected = np.mean([f1(split.preds["CE+ITM", s]) - f1(split.preds["CE", s]) for s in range(2)])
    assert row["metric"] == stats.CLASS_F1 and row["delta"] == pytest.approx(100 * expected)
    assert row["n"] == mask.sum()


def test_a_small_precise_effect_is_equivalent_and_an_untestable_one_leaves_the_family():
    """The corrected CI within ±3 points (two one-sided tests at the CI's level) and the
    validation Δ within the margin: 'equivalent'. A row marked untestable keeps its estimate, gets the reason,
    and is not counted in the family (nor in its BH levels)."""
    table = pd.DataFrame({"effect": ["CE+ITC", "CE+ITM", "CE+ITC+ITM"], "slicing": "all", "slice": "all",
                          "delta": [0.2, 0.1, 5.0], "se": [0.3, 0.3, 0.3], "df": 19.0, "seeds": 20, "n": 1000})
    table["p"] = [stats.Estimate(r.delta, r.se, r.df, r.seeds, r.n).p for r in table.itertuples()]
    check = table.assign(delta=[0.5, 0.4, 4.0])
    key = ["effect", "slicing", "slice"]
    decided = effects.decide(table, check, key, 0.05, "f", pd.Series([100.0] * 3), 3.0,
                             {"CE+ITM": "the ITM head did not learn to match"}).set_index("effect")
    assert decided.loc["CE+ITC", "verdict"] == effects.EQUIVALENT
    assert "no difference larger than ±3 points" in decided.loc["CE+ITC", "reason"]
    assert decided.loc["CE+ITM", "verdict"] == effects.UNTESTABLE
    assert decided.loc["CE+ITM", "reason"] == "the ITM head did not learn to match"
    assert np.isnan(decided.loc["CE+ITM", "p_bh"]) and (decided["family_size"] == 2).all()
    tested = decided.drop(index="CE+ITM")
    np.testing.assert_allclose(tested["p_bh"], stats.bh_adjust(tested["p"]))
    row = decided.loc["CE+ITC"]
    assert -3 < row["ci_low"] < 0 < row["ci_high"] < 3  # the verdict can be read off the CI
    assert decided.loc["CE+ITC+ITM", "verdict"] == effects.SUPPORTED
    # the validation posts outside the margin: not equivalent
    far = effects.decide(table, check.assign(delta=[3.5, 0.4, 4.0]), key, 0.05, "f", pd.Series([100.0] * 3), 3.0)
    assert far.set_index("effect").loc["CE+ITC", "verdict"] == effects.INCONCLUSIVE
    # the same small estimate, imprecise: inconclusive, not equivalent
    wide = table.assign(se=[3.0, 3.0, 0.3])
    imprecise = effects.decide(wide, check, key, 0.05, "f", pd.Series([100.0] * 3), 3.0).set_index("effect")
    assert imprecise.loc["CE+ITC", "verdict"] == effects.INCONCLUSIVE


def test_duplicate_slicings_leave_the_family():
    posts = pd.DataFrame({"label_index": [0, 1, 1, 2], "relation": ["a", "b", "b", "c"], "label": ["x", "y", "y", "z"],
                          "evidence": ["e", "e", "f", "f"]})
    assert effects.distinct_slicings(posts, ("relation", "evidence", "label", "absent")) == ["relation", "evidence"]


def _row(**values):
    base = dict(delta=2.0, p_bh=0.001, seeds=5, n=500, val_delta=1.0, detectable=3.54)
    return pd.Series({**base, **values})


@pytest.mark.parametrize("values, expected, reason", [
    ({}, SUPPORTED, "validation Δ +1.0 agrees"),
    (dict(val_delta=-0.4), VALIDATION_DISAGREES, "validation Δ -0.4 does not share"),
    (dict(val_delta=0.0), VALIDATION_DISAGREES, "does not share"),
    (dict(val_delta=np.nan), TEST_ONLY, "no validation outputs to check it on"),
    (dict(p_bh=0.2), INCONCLUSIVE, "corrected CI covers 0; would detect ≥ 3.5 points"),
    (dict(p_bh=0.2, val_delta=np.nan), INCONCLUSIVE, "corrected CI covers 0; would detect ≥ 3.5 points; no validation"),
    (dict(n=12), INCONCLUSIVE, "n = 12 < 30 posts"),
    (dict(seeds=1), INCONCLUSIVE, "one seed"),
])
def test_verdicts(values, expected, reason):
    row = _row(**values)
    verdict, why = effects.verdict(pd.Series(row).to_frame().T.itertuples().__next__())
    assert verdict == expected and reason in why


def test_supported_needs_the_validation_split_to_agree():
    rng = np.random.default_rng(7)
    test = _split(rng, posts=400, seeds=3, effect=0.25)
    agreeing = _split(rng, posts=400, seeds=3, effect=0.25)
    opposite = _split(rng, posts=400, seeds=3, effect=-0.25)
    kwargs = dict(slicings=(), n_boot=100)
    supported = effects.group_effects(test, agreeing, **kwargs).set_index("effect")
    assert supported.loc["CE+ITC", "verdict"] == SUPPORTED
    assert supported.loc["CE+ITC", "ci_low"] > 0 and supported.loc["CE+ITC", "val_n"] == 400
    refuted = effects.group_effects(test, opposite, **kwargs).set_index("effect")
    assert refuted.loc["CE+ITC", "verdict"] == VALIDATION_DISAGREES
    assert effects.finding(supported.reset_index().iloc[0]).startswith("CE+ITC (vs CE) raises macro-F1 on all posts")
    with pytest.raises(ValueError, match="only supported"):
        effects.finding(refuted.reset_index().iloc[0])


def test_missing_variant_or_seed_is_left_out():
    rng = np.random.default_rng(8)
    split = _split(rng, variants=("CE", "CE+ITM"))
    table = effects.group_effects(split, slicings=(), n_boot=20)
    assert list(table["effect"]) == ["CE+ITM"]  # no 2 × 2 without its four cells
    one_seed = effects.group_effects(_split(rng, seeds=1), slicings=(), n_boot=20)
    assert one_seed["reason"].str.startswith("one seed").all()


# --- from checkpoint folders --------------------------------------------------------------------

def test_effects_table_reads_validation_outputs_where_they_exist(tmp_path):
    from test_runs import make_run

    from mmaux.checkpoint import read_outputs, write_outputs

    base = tmp_path / "ckpts" / "synthposts-sentiment" / "attention"
    for variant, preds in (("ce", (0, 1, 2, 0)), ("itc", (0, 1, 2, 1))):  # gold (0, 1, 2, 0)
        for seed in (0, 1):
            folder = make_run(base / f"{variant}-seed{seed}", variant, seed, preds=preds)
            if seed == 0:  # validation outputs for seed 0 only: ITC misses post 2
                outputs, _ = read_outputs(folder)
                write_outputs(folder / runs.SPLIT_OUTPUTS["val"],
                              outputs.assign(pred=(0, 1, 1, 0) if variant == "itc" else (0, 1, 2, 0)), {})
    slices = pd.DataFrame({"post_id": [f"test_{i:05d}" for i in range(4)], "evidence": ["a", "a", "b", "b"]})

    def load(folder, split):  # as runs.load_split_table, with the slices given here
        path = f"{folder}/{runs.SPLIT_OUTPUTS[split]}"
        return slices.merge(read_outputs(folder, runs.SPLIT_OUTPUTS[split])[0]) if split == "test" or \
            __import__("os").path.exists(path) else None

    frame = effects.effects_table(runs.discover_runs([tmp_path / "ckpts"]), load, slicings=("evidence",), n_boot=50)
    assert list(frame.columns) == effects.COLUMNS
    assert list(frame["effect"]) == ["CE+ITC"] * 3 and list(frame["slice"]) == ["all", "a", "b"]
    overall = frame.iloc[0]
    assert overall["family"] == "SynthPosts · sentiment · attention" and overall["family_size"] == 3
    assert overall["delta"] == pytest.approx(100 * (7 / 9 - 1)) and overall["seeds"] == 2
    assert overall["val_delta"] == pytest.approx(100 * (5 / 9 - 1)) and overall["val_n"] == 4
    assert (frame["verdict"] == INCONCLUSIVE).all() and frame["small"].all()  # 4 posts: n < 30


@pytest.mark.parametrize("regime", [0, 2], ids=["calibrated", "seed-heavy"])
def test_whole_groups_under_the_null_keep_the_family_wise_error(regime):
    """Simulated groups with seed-to-seed model variance (`simulate`), no true effect, 3 seeds,
    through group_effects itself (39 effects, BH, validation check): few families call anything
    'supported' (at most 4 of 40), and the raw p-values are those of a valid test. The full
    calibration (100 groups per cell, coverage, power, both seed counts) is
    bench/effects_calibration.py's."""
    from mmaux.analysis import simulate

    rng = np.random.default_rng([31, regime])
    frames = [effects.group_effects(*simulate.simulate_group(rng, simulate.REGIMES[regime], 3)) for _ in range(40)]
    assert all(len(f) == 39 for f in frames)
    assert sum((f["verdict"] == SUPPORTED).any() for f in frames) <= 4
    p = np.concatenate([f["p"].to_numpy() for f in frames])
    assert 0.035 <= np.mean(p <= 0.05) <= 0.065
