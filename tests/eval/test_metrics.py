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
