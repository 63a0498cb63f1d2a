"""A response that only repeats its prompt is no faithful answer, whatever language it is in (fidelity's echo rule)."""

import pytest

from crosstune.eval.fidelity import is_echo

PROMPT = "¿Cómo se dan las gracias con cortesía a un amigo?"


@pytest.mark.parametrize("response", [
    PROMPT,
    "Cómo se dan las gracias con cortesía a un amigo.",  # punctuation and case differ
    "cómo se dan las gracias con cortesía a un amigo",
    f"{PROMPT}\n\n{PROMPT}\n\n",  # repeated
    "¿Cómo se dan las gracias con cortes",  # cut off by the token limit
    f"{PROMPT}\n\n¿Cómo se dan",  # repeated, the second copy cut off
    "Ｃómo se dan las gracias con cortesía a un amigo？",  # full-width forms (NFKC)
])
def test_echoes(response):
    assert is_echo(response, PROMPT)


@pytest.mark.parametrize("response", [
    "Se dice «muchas gracias» con una sonrisa.",
    f"{PROMPT} Se dice «muchas gracias».",  # the prompt, then an answer
    "Cómo se dan las gracias con cortesía a un amigo, con una sonrisa.",
    "",  # nothing at all: not an echo (the detector calls it unknown)
    "?!…",
])
def test_not_echoes(response):
    assert not is_echo(response, PROMPT)


def test_no_prompt_no_echo():
    assert not is_echo("Hola", "") and not is_echo("Hola", "¿?")


def test_an_echo_in_the_expected_language_is_a_miss_and_its_own_confusion_column():
    """Real detector (pycld2), the quickstart's own cases: the tuned model echoed Spanish and Vietnamese prompts."""
    from crosstune.eval.fidelity import build_detector, check_rows, summarize
    from crosstune.report.fidelity import confusion_columns, fidelity_table

    kitchen = "Nombra dos cosas que puedes encontrar en una cocina."
    rows = [{"id": "demo-067", "language": "es", "prompt": kitchen, "response": kitchen},
            {"id": "demo-060", "language": "es", "prompt": "Describe el color verde a un niño.",
             "response": "El verde es el color de la hierba y de las hojas de los árboles."},
            {"id": "demo-065", "language": "vi", "prompt": "Tại sao chúng ta chải tóc?",
             "response": "Tại sao chúng ta chải tóc?\n\nTại sao chúng ta chải tóc?\n\n"},
            {"id": "demo-068", "language": "vi", "prompt": "Làm thế nào để cảm ơn bạn bè một cách lịch sự?",
             "response": "Bạn có thể nói lời cảm ơn chân thành và mỉm cười với bạn bè của mình."}]
    items = check_rows(rows, build_detector("pycld2"))
    assert [it["echo"] for it in items] == [True, False, True, False]
    assert [it["detected"] for it in items] == ["es", "es", "vi", "vi"]  # detected right, yet not faithful
    assert [it["match"] for it in items] == [False, True, False, True]
    assert items[0]["reason"] == "echo"
    s = summarize(items, "pycld2")
    assert s["per_language"]["es"]["expected_rate"] == 0.5 and s["overall"]["expected_rate"] == 0.5
    assert s["confusion"]["es"] == {"echo": 1, "es": 1}
    assert confusion_columns(s["confusion"])[-2:] == ["echo", "unknown"]
    assert "| es | 2 | 0.500 [0.09, 0.91] |" in fidelity_table(s)  # Wilson 1/2
