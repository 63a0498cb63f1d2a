"""Option letters live in one place (`crosstune.eval.options`): task templates, the extractors, the scorers and
the agreement labels all use it."""

from __future__ import annotations

from crosstune.eval import extract, options, scorers, summary, tasks, templating


def test_one_alphabet_and_one_label_form():
    assert options.LETTERS == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert templating.LETTERS is tasks.LETTERS is extract.LETTERS is options.LETTERS
    assert scorers.labelled is options.labelled and summary.label is options.label
    assert options.label(2) == "(C)"
    assert options.labelled(["x", "y"]) == ["(A) x", "(B) y"]
    assert options.labelled(["(A) x", "(B) y"]) == ["(A) x", "(B) y"]  # already labelled: kept
