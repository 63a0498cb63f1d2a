"""Map a generated answer to one of the choices: SeaEval's TiGEr `heuristic_align`, exactly, plus the CrossIn
fork's variant. Each random decision uses the `rng` passed in (seeded per item by the caller, so results repeat;
SeaEval itself uses the unseeded global `random`), and the path taken is returned for the per-item log.

Paths: `empty_random`, `stage1`, `stage1_tie_random`, `stage2`, `stage2_tie_random`, `no_match_random`.
A user's extractor (`package.module:function`, through `get_extractor`) takes the same arguments.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from crosstune.eval.options import LETTERS
from crosstune.registry import Registry, is_function

MAX_CHOICES = 10  # SeaEval's extractor maps at most A..J
_CN = str.maketrans("，。“”‘’！？【】《》（）", ",.\"\"''!?[]<>()")
_STRIP = "(。$,|！|\\!|\\.|？|\\?)，；：？！…—·《》“”‘’{}[]（）()、|\\\\/\n\t\r\v\f "  # SeaEval's strip set, verbatim
_A = " *&^%$asa "  # SeaEval's stand-in for a lone capital "A" (the English article would match otherwise)


def simple_segment(text: str) -> list[str]:
    parts = re.findall("[^!?。\\.\\!\\?]+[!?。\\.\\!\\?]?", text, flags=re.U)
    return parts or ["nothing here actually"]


def _vote(labels: list[str], rng: random.Random, stage: str) -> tuple[str, str]:
    top2 = Counter(labels).most_common(2)
    if len(top2) == 2 and top2[0][1] == top2[1][1]:
        return rng.choice([top2[0][0], top2[1][0]]), f"{stage}_tie_random"
    return top2[0][0], stage


def _ordered_keys(first: dict[str, str], second: dict[str, str]):
    """Keys longest first, as both extractors iterate them; stage-2 keys are segmented like the sentences and
    single characters are dropped."""
    first = dict(sorted(first.items(), key=lambda kv: len(kv[0]), reverse=True))
    second = {simple_segment(k)[0]: v for k, v in sorted(second.items(), key=lambda kv: len(kv[0]), reverse=True)}
    return first, list(first), second, [k for k in second if len(k) > 1]


def _stage2(padded: list[str], second: dict[str, str], second_keys: list[str], choices: list[str],
            rng: random.Random) -> tuple[str, str]:
    """Stage 2: the first (longest) standalone letter or option text per sentence, majority vote, else random."""
    chosen = [hits[0] for hits in ([k for k in second_keys if k in sent] for sent in padded) if hits]
    if chosen:
        return _vote([second[k] for k in chosen], rng, "stage2")
    return rng.choice(choices), "no_match_random"


def seaeval_align(choices: list[str], prediction: str, rng: random.Random) -> tuple[str, str]:
    """TiGEr-Eval `multichoice_align.heuristic_align`; returns (choice string, extraction path)."""
    if len(prediction.strip()) == 0:
        return rng.choice(choices), "empty_random"
    if len(choices) > MAX_CHOICES:
        raise ValueError(f"at most {MAX_CHOICES} choices are supported")
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    for i, c in enumerate(choices):
        first[c] = first[c.lower()] = first[c.upper()] = c
        first[f"({LETTERS[i]})"] = first[f"({LETTERS[i].lower()})"] = c
        second[_A if LETTERS[i] == "A" else f" {LETTERS[i]} ".lower()] = c
        second[c[4:].lower()] = c  # the option text without its "(X) " label
    first, first_keys, second, second_keys = _ordered_keys(first, second)

    sentences = simple_segment(prediction.translate(_CN))
    chosen = []
    for sent in sentences:
        hits = [k for k in first_keys if k in sent] + [k for k in first_keys if k in sent.lower()]
        if hits:
            chosen.append(sorted(hits, key=len, reverse=True)[0])  # the longest key of the sentence
    if chosen:
        return _vote([first[k] for k in chosen], rng, "stage1")
    padded = [(" " + sent.strip(_STRIP) + " ").replace(" A ", _A).lower() for sent in sentences]
    return _stage2(padded, second, second_keys, choices, rng)


def crossin_align(choices: list[str], prediction: str, rng: random.Random) -> tuple[str, str]:
    """The CrossIn fork (`my_seaeval/src/metric.py`, `_compute_cross_mmlu`): lower-cased keys, also `(a` and `a)`,
    a *random* key when a sentence matches several, at most 4 choices, empty output read as "None"."""
    if len(choices) > 4:
        raise ValueError("the CrossIn extractor supports at most 4 choices")
    if prediction == "":
        prediction = "None"
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    for i, c in enumerate(choices):
        x = LETTERS[i].lower()
        first[c.lower()] = first[f"({x})"] = first[f"({x}"] = first[f"{x})"] = c
        second[" aasspecialsymbol " if i == 0 else f" {x} "] = c
        second[c[4:].lower()] = c
    first, first_keys, second, second_keys = _ordered_keys(first, second)

    sentences = simple_segment(prediction.translate(_CN))
    chosen = []
    for sent in sentences:
        hits = [k for k in first_keys if k in sent.lower()]
        if hits:
            chosen.append(rng.choice(hits) if len(hits) > 1 else hits[0])
    if chosen:
        return _vote([first[k] for k in chosen], rng, "stage1")
    padded = [" " + (" " + sent.strip(_STRIP) + " ").replace(" A ", " aasspecialsymbol ").lower() + " "
              for sent in sentences]
    return _stage2(padded, second, second_keys, choices, rng)


EXTRACTORS = {"seaeval": seaeval_align, "crossin": crossin_align}
REGISTRY = Registry("answer extractor", EXTRACTORS, is_function,
                    "a function (choices, prediction, rng) -> (chosen choice string, extraction path)")


def get_extractor(name: str, where: str | None = None):
    """`seaeval`, `crossin`, or `package.module:function` (a user's extractor with the same signature)."""
    return REGISTRY.get(name, where)


def item_rng(seed: int, *key: str) -> random.Random:
    """A generator seeded by (seed, key...): the same item gets the same draws in any order, after a resume too."""
    return random.Random("|".join([str(seed), *key]))  # str seeds hash with sha512: stable across processes
