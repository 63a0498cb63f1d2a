"""Number extraction (MGSM) and SQuAD/MLQA span scoring."""

from crosstune.eval.answers import exact_match, extract_number, f1, numbers_equal, span_scores


def test_number_after_the_answer_phrase_wins():
    assert extract_number("5 + 6 = 11. The answer is 11.") == ("11", "answer_phrase")
    assert extract_number("逐步解答：2 罐各 3 个就是 6 个。5 + 6 = 11。答案是 11。") == ("11", "answer_phrase")
    assert extract_number("She pays $1,200 then 3 more") == ("3", "last_number")
    assert extract_number("no digits") == (None, "none")
    assert numbers_equal("70000", "70,000") and numbers_equal("18.0", "18") and not numbers_equal(None, "1")


def test_squad_normalisation_per_language():
    assert exact_match("The Panthers!", "panthers", "en") == 1.0
    assert exact_match("la casa", "casa", "es") == 1.0
    assert f1("黑豹队", "黑豹", "zh") == 0.8  # characters are tokens in CJK text
    assert f1("Denver Broncos", "Broncos", "en") == 2 / 3
    pred, em, score = span_scores("\nDenver Broncos\nextra", ["Broncos", "Denver Broncos"], "en")
    assert pred == "Denver Broncos" and em == 1.0 and score == 1.0
