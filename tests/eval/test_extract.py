"""SeaEval's TiGEr heuristic and the CrossIn fork's variant: each documented rule, and seeded fallbacks."""

import random

from crosstune.eval.extract import crossin_align, item_rng, seaeval_align, simple_segment

CHOICES = ["(A) Paris", "(B) Rome", "(C) Berlin", "(D) Madrid"]


def align(text, choices=CHOICES, seed=0):
    return seaeval_align(choices, text, random.Random(seed))


def test_stage1_label_and_full_choice():
    assert align("The answer is (B).") == ("(B) Rome", "stage1")
    assert align("(c) berlin") == ("(C) Berlin", "stage1")  # lower-case keys
    assert align("答案是（D）。") == ("(D) Madrid", "stage1")  # Chinese brackets are mapped to ASCII first


def test_stage1_majority_vote_across_sentences():
    assert align("I think (A). No wait, (C). Definitely (C).") == ("(C) Berlin", "stage1")


def test_stage1_tie_is_random_but_seeded():
    a = {align("(A) maybe. (B) maybe.", seed=s)[0] for s in range(20)}
    assert a == {"(A) Paris", "(B) Rome"}
    assert align("(A) maybe. (B) maybe.", seed=3) == align("(A) maybe. (B) maybe.", seed=3)
    assert align("(A) maybe. (B) maybe.")[1] == "stage1_tie_random"


def test_stage2_letters_and_option_text():
    assert align("I pick b") == ("(B) Rome", "stage2")  # a standalone letter
    assert align("It must be madrid") == ("(D) Madrid", "stage2")  # the option text without its label
    # a lower-case article "a" is not option A; a capital "A" word is (SeaEval's special case), and its key is
    # longer than the option text "rome", so it wins within the sentence
    assert align("it is a city called rome")[0] == "(B) Rome"
    assert align("A") == ("(A) Paris", "stage2")
    assert align("A city called rome")[0] == "(A) Paris"


def test_random_fallbacks_are_labelled():
    assert align("   ")[1] == "empty_random"
    choice, path = align("no idea at all")
    assert path == "no_match_random" and choice in CHOICES


def test_empty_option_text_key_quirk():
    # SeaEval segments every stage-2 key; an empty option text becomes "nothing here actually"
    assert simple_segment("") == ["nothing here actually"]
    assert align("nothing here actually", ["(A) ", "(B) x"])[0] == "(A) "


def test_crossin_variant_accepts_half_brackets():
    assert crossin_align(CHOICES, "answer: b)", random.Random(0)) == ("(B) Rome", "stage1")
    assert crossin_align(CHOICES, "(c is right", random.Random(0)) == ("(C) Berlin", "stage1")
    assert seaeval_align(CHOICES, "answer: b)", random.Random(0))[1] == "stage2"  # SeaEval reads the letter


def test_item_rng_is_stable_and_keyed():
    assert item_rng(0, "m", "t1").random() == item_rng(0, "m", "t1").random()
    assert item_rng(0, "m", "t1").random() != item_rng(0, "m", "t2").random()
