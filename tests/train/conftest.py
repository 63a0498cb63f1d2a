"""A small CrossIn-style mixture (base/en2x/x2en) for training tests, from the synthetic parallel Alpaca of
tests/data/synthetic.py, so a user's clone runs the training tests without ../shared. Tests that need the real
shared data (tests/models/test_render.py's CrossIn layouts, test_default_model.py) are marked integration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crosstune.data.formats import alpaca_user_text
from crosstune.data.io import write_examples
from crosstune.data.schema import Example, Message
from tests.data.synthetic import alpaca_items


def _row(rid, mode, il, rl, instr, inp, out):
    return Example(rid, [Message("user", alpaca_user_text(instr, inp), il), Message("assistant", out, rl)],
                   meta={"recipe": "test", "mode": mode, "instruction_language": il, "response_language": rl,
                         "source_ids": [rid.split("-")[1]], "fields": {"instruction": instr, "input": inp,
                                                                       "output": out}})


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.。])\s*", text, maxsplit=1)[0]


def crossin_rows(limit: int) -> list[Example]:
    """`limit` rows, a third per mode, from synthetic parallel items (short: the tiny tokenizer is per character)."""
    out: list[Example] = []
    quota = {"base": limit // 3, "en2x": limit // 3, "x2en": limit - 2 * (limit // 3)}
    for i, item in enumerate(alpaca_items(3 * limit)):
        (ei, en_in, eo), (zi, zh_in, zo) = item["en"], item["zh"]
        eo, zo = _first_sentence(eo), _first_sentence(zo)
        cands = [_row(f"base-{i}", "base", "en", "en", ei, en_in, eo),
                 _row(f"en2x-{i}", "en2x", "en", "zh", ei, en_in + "\n[zh]", zo),
                 _row(f"x2en-{i}", "x2en", "zh", "en", zi, zh_in + "\n[en]", eo)]
        c = cands[(i // 3) % 3]  # modes cycle independently of which items have an input
        if quota[c.meta["mode"]]:
            quota[c.meta["mode"]] -= 1
            out.append(c)
        if not any(quota.values()):
            break
    return out


@pytest.fixture(scope="session")
def mixture_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mix") / "train.jsonl"
    write_examples(path, crossin_rows(48))
    return path
