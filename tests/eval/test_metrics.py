"""SeaEval's accuracy / Consistency_s / AC3_s, and the extra diagnostics."""

import itertools

import pytest

from crosstune.eval.metrics import ac3, bootstrap, per_item_scores, position_bias, seaeval_scores, summarize

LANGS = ["en", "zh", "es"]
GOLD = [{lang: c for lang in LANGS} for c in ["(A) a", "(B) b", "(C) c", "(B) b"]]


def test_hand_computed_example():
    preds = [{"en": "(A) a", "zh": "(A) a", "es": "(B) b"},  # en, zh right; en=zh
             {"en": "(B) b", "zh": "(B) b", "es": "(B) b"},  # all right, all agree
             {"en": "(A) a", "zh": "(D) d", "es": "(C) c"},  # es right, none agree
             {"en": "(C) c", "zh": "(C) c", "es": "(C) c"}]  # all wrong, all agree
    s = seaeval_scores(preds, GOLD, LANGS)
    assert s["language_acc"] == {"en": 0.5, "zh": 0.5, "es": 0.5}
    assert s["overall_acc"] == 0.5
    assert s["detailed_consistency_score"]["2_combine"] == {"en,zh": 0.75, "en,es": 0.5, "zh,es": 0.5}
    assert s["consistency_score_2"] == pytest.approx(1.75 / 3)
    assert s["consistency_score_3"] == 0.5
    assert s["AC3_3"] == pytest.approx(2 * 0.5 * 0.5 / (1.0 + 1e-10))
    assert summarize(preds, GOLD, LANGS, n_boot=50)["consistent_correct_3"] == 0.25


def test_consistency_compares_labels_only():
    preds = [{"en": "(A) a", "zh": "(A) 甲", "es": "(A) x"}] * 4  # same label, different text: consistent
    assert seaeval_scores(preds, GOLD, LANGS)["consistency_score_3"] == 1.0


def test_per_item_counting_matches_subset_enumeration():
    import random

    rnd = random.Random(1)
    langs = ["l1", "l2", "l3", "l4", "l5"]
    labels = ["(A) x", "(B) x", "(C) x"]
    preds = [{lang: rnd.choice(labels) for lang in langs} for _ in range(40)]
    golds = [{lang: "(A) x" for lang in langs} for _ in range(40)]
    full = seaeval_scores(preds, golds, langs)
    for s in range(2, 6):
        assert per_item_scores(preds, golds, langs, s)[1].mean() == pytest.approx(full[f"consistency_score_{s}"])
        subsets = list(itertools.combinations(langs, s))
        assert len(full["detailed_consistency_score"][f"{s}_combine"]) == len(subsets)


def test_always_one_label_is_perfectly_consistent():
    preds = [{lang: "(A) a" for lang in LANGS} for _ in GOLD]
    s = summarize(preds, GOLD, LANGS, n_boot=100)
    assert s["consistency_score_3"] == 1.0 and s["overall_acc"] == 0.25
    assert s["AC3_3"] == pytest.approx(ac3(0.25, 1.0))
    assert s["position_bias"]["predicted"] == {"(A)": 12}
    assert s["position_bias"]["always_label_ac3"]["(B)"] == pytest.approx(ac3(0.5, 1.0))


def test_bootstrap_interval_brackets_the_estimate_and_repeats():
    preds = [{"en": g["en"] if i % 3 else "(D) d", "zh": g["zh"], "es": "(A) a"} for i, g in enumerate(GOLD * 10)]
    golds = GOLD * 10
    s = seaeval_scores(preds, golds, LANGS)
    b = bootstrap(preds, golds, LANGS, n_boot=300, seed=1)
    assert b["accuracy"][0] <= s["overall_acc"] <= b["accuracy"][1]
    assert b["consistency_3"][0] <= s["consistency_score_3"] <= b["consistency_3"][1]
    assert b == bootstrap(preds, golds, LANGS, n_boot=300, seed=1)


def test_position_bias_histogram_per_language():
    preds = [{"en": "(A) a", "zh": "(B) b", "es": "(B) b"}] * 2
    pb = position_bias(preds, GOLD[:2], LANGS)
    assert pb["predicted"] == {"(A)": 2, "(B)": 4}
    assert pb["predicted_per_language"]["zh"] == {"(B)": 2}


# ---- index-based metrics, agreement, RankC ------------------------------------------------------------------

from crosstune.eval.metrics import agreement_matrix, rankc, rankc_pair, rankc_weights, summarize_keys  # noqa: E402


def test_agreement_matrix_and_interface_names():
    keys = [{"en": 0, "zh": 0, "es": 1}, {"en": 2, "zh": 1, "es": 2}]
    correct = [{"en": True, "zh": True, "es": False}, {"en": False, "zh": True, "es": False}]
    s = summarize_keys(keys, correct, ["en", "zh", "es"], n_boot=20)
    assert agreement_matrix(keys, ["en", "zh", "es"])["en"] == {"en": 1.0, "zh": 0.5, "es": 0.5}
    assert s["per_language"]["zh"]["accuracy"] == 1.0 and s["accuracy"] == 0.5
    assert s["consistency_3"] == s["consistency_score_3"] == 0.0 and s["ac3_3"] == s["AC3_3"] == 0.0


def test_rankc_by_hand():
    w = rankc_weights(3)  # e^2, e^1, e^0 normalised
    assert w[0] > w[1] > w[2] and abs(w.sum() - 1) < 1e-12
    # identical rankings: P@j = 1 for all j
    assert abs(rankc_pair([2, 0, 1], [2, 0, 1]) - 1.0) < 1e-12
    # top-1 differs, top-2 sets equal, top-3 always equal: P@1 = 0, P@2 = 1, P@3 = 1
    assert abs(rankc_pair([0, 1, 2], [1, 0, 2]) - (w[1] + w[2])) < 1e-12
    r = rankc([{"en": [0, 1, 2], "de": [1, 0, 2], "fr": [0, 1, 2]}], ["en", "de", "fr"])
    assert abs(r["rankc_pairs"]["en,fr"] - 1.0) < 1e-12 and abs(r["rankc"] - (2 * (w[1] + w[2]) + 1) / 3) < 1e-12


@pytest.mark.integration
def test_index_metrics_equal_seaeval_string_metrics_on_real_predictions():
    """Regression: the option-index path gives SeaEval's numbers (labels p[0:3]) on all 6 models' real outputs."""
    from crosstune.eval.predictions import score_predictions
    from crosstune.eval.tasks import load_items, load_task
    from tests.conftest import shared_path

    preds_file = shared_path("seaeval_model_predictions", "seaeval_v0.1_cross_predictions_p1.jsonl.gz")
    for task in ("cross_mmlu", "cross_logiqa"):
        cfg = load_task(task)
        tags = {name: tag for tag, name in cfg.languages.items()}
        items = {g["en"].id: g for g in load_items(cfg)}
        string_form, records = score_predictions(preds_file, cfg, n_boot=50)
        by_key: dict = {}
        for r in records:
            by_key.setdefault(f"{r['model']}|{r['eval_mode']}", {}).setdefault(r["id"], {})[r["language"]] = r
        for key, summary in string_form.items():
            langs = summary["languages"]
            rows = list(by_key[key].items())
            keys = [{lang: items[i][tags[lang]].choices.index(rs[lang]["prediction"]) for lang in langs} for i, rs in rows]
            correct = [{lang: keys[n][lang] == items[i][tags[lang]].answer_index for lang in langs}
                       for n, (i, rs) in enumerate(rows)]
            by_index = summarize_keys(keys, correct, langs, n_boot=50)
            for m in ("overall_acc", "language_acc", "consistency_score_2", "consistency_score_3", "AC3_3",
                      "detailed_consistency_score", "consistent_correct_3", "bootstrap_95"):
                assert by_index[m] == summary[m], (task, key, m)


# ---- the one interval rule (crosstune.eval.intervals) --------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 5, 13, 47, 100])
def test_wilson_equals_scipy_at_every_count_and_never_has_zero_width(n):
    from scipy.stats import binomtest

    from crosstune.eval.intervals import proportion_ci, wilson

    for k in range(n + 1):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        lo, hi = wilson(k, n)
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12), (k, n)
        assert hi - lo > 0.03, (k, n)  # 0/n and n/n too: no [1.00, 1.00]
        assert proportion_ci([True] * k + [False] * (n - k)) == [round(ci.low, 4), round(ci.high, 4)]
    assert proportion_ci([True] * 13) == [0.7719, 1.0]  # the quickstart's en->vi after tuning: 13/13
    assert proportion_ci([True] * 5) == [0.5655, 1.0]  # fidelity results.md, es: 5/5
    assert proportion_ci([]) is None


def test_pooled_rate_is_clustered_by_item():
    """The same 13 prompts in 3 languages are not 39 independent trials: between 13 and 39 effective trials."""
    from crosstune.eval.intervals import effective_n, proportion_ci, wilson

    items = [i for _ in range(3) for i in range(13)]
    assert effective_n([1.0] * 39, items) == 13  # no variation: the cautious end, the items
    assert proportion_ci([True] * 39, items) == [round(x, 4) for x in wilson(13, 13)]
    same_item = [float(i < 6) for i in items]  # an item right in every language or in none: fully correlated
    assert effective_n(same_item, items) == pytest.approx(13)
    independent = [float((i * 7 + j) % 3 == 0) for j, i in enumerate(items)]
    assert 13 <= effective_n(independent, items) <= 39
    assert effective_n([1.0, 0.0, 1.0], None) == 3  # one trial per item: n
    assert effective_n([1.0, 0.0, 1.0], ["q", "q", "q"]) == 1  # one item in three languages
    assert proportion_ci([True, False, True], ["q", "q", "q"]) == [round(x, 4) for x in wilson(2 / 3, 1)]


def test_newcombe_paired_interval_matches_the_published_value_and_has_width_when_no_pair_differs():
    from crosstune.eval.intervals import newcombe_paired, paired_diff_ci

    # Fagerland, Lydersen, Laake, "Statistical Analysis of Contingency Tables" (2017), ch. 8, Cavo et al. 2012:
    # [[59, 6], [16, 80]], p1+ - p+1 = -0.0621, 95% CI -0.1186 to -0.0046 (Newcombe square-and-add)
    lo, hi = newcombe_paired(59, 6, 16, 80)  # A = the rows: right only in A 6, only in B 16; ours is B - A
    assert (-hi, -lo) == (pytest.approx(-0.1186, abs=1e-4), pytest.approx(-0.0046, abs=1e-4))
    same = paired_diff_ci([True] * 13, [True] * 13)
    assert same[0] < 0 < same[1] and same == [-0.2281, 0.2281]  # 13 pairs could have missed about +-0.23
    clustered = paired_diff_ci([True] * 39, [True] * 39, [i % 13 for i in range(39)])
    assert clustered == same  # no pair differs in 13 items x 3 languages: as wide as 13 items


def test_clustered_mcnemar_is_mcnemar_for_one_pair_per_item_and_discounts_pooled_languages():
    from scipy.stats import chi2

    from crosstune.eval.compare import compare_outcomes
    from crosstune.eval.intervals import clustered_mcnemar

    a = [True, True, False, False, True, False]
    b = [False, True, True, True, True, True]
    assert clustered_mcnemar(a, b, range(6)) == pytest.approx(chi2.sf((3 - 1) ** 2 / (3 + 1), 1))
    assert clustered_mcnemar(a, a, range(6)) == 1.0
    # 10 items x 7 languages, the tuned run right on 3 more items in every language: 21 discordant pairs,
    # all in 3 items. Counted as 70 independent pairs it looks certain; clustered, it rests on 3 items.
    base = {(f"q{i}", lang): i < 4 for i in range(10) for lang in "abcdefg"}
    tuned = {(f"q{i}", lang): i < 7 for i in range(10) for lang in "abcdefg"}
    out = compare_outcomes(base, tuned)
    assert out["overall"]["n"] == 70 and out["overall"]["n_items"] == 10
    assert "clustered" in out["overall"]["test"] and out["overall"]["mcnemar_p"] > 0.05
    from crosstune.eval.compare import mcnemar_exact

    assert mcnemar_exact(0, 21) < 1e-5  # what the unclustered pooled test said
    per = out["per_language"]["a"]
    assert per["test"] == "McNemar exact" and per["mcnemar_p"] == mcnemar_exact(0, 3)
    none = compare_outcomes(base, base)["overall"]
    assert none["no_pair_differs"] and none["ci95"][0] < 0 < none["ci95"][1] and none["mcnemar_p"] == 1.0


def test_p_values_print_as_people_read_them():
    from crosstune.eval.intervals import fmt_ci, fmt_p

    assert [fmt_p(p) for p in (0.0001, 0.0039, 0.125, 0.78, 1.0)] == ["< 0.001", "0.0039", "0.12", "0.78", "1.0"]
    assert fmt_ci([0.7719, 1.0]) == " [0.77, 1.00]" and fmt_ci(None) == ""
    assert fmt_ci([-0.2281, 0.2281], 3, signed=True) == " [-0.228, +0.228]"


def test_summary_accuracy_interval_is_the_rule_and_con3_keeps_the_bootstrap():
    from crosstune.eval.intervals import proportion_ci

    preds = [{lang: g[lang] for lang in LANGS} for g in GOLD]  # every answer right
    s = summarize(preds, GOLD, LANGS, n_boot=50)
    assert s["ci95"]["accuracy"] == proportion_ci([True] * 12, [i for i in range(4) for _ in LANGS])
    assert s["ci95"]["accuracy"][0] < 1.0  # 4 items all right is not certainty
    assert s["ci95"]["per_language"]["en"] == proportion_ci([True] * 4)
    assert s["ci95"]["consistency_3"] == s["bootstrap_95"]["consistency_3"]
    assert "Wilson" in s["ci95"]["rules"]["accuracy"] and "bootstrap" in s["ci95"]["rules"]["AC3_3"]
