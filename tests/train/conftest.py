"""A small real CrossIn-style mixture (base/en2x/x2en/trans from the shared en-zh Alpaca) for training tests."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from crosstune.data.io import alpaca_user_text, read_examples, write_examples
from crosstune.data.schema import Example, Message
from tests.conftest import shared_path

ALPACA = ("alpaca_chinese_parallel", "alpaca_en_zh_52k_v3.jsonl.gz")


def _row(rid, mode, il, rl, instr, inp, out):
    return Example(rid, [Message("user", alpaca_user_text(instr, inp), il), Message("assistant", out, rl)],
                   meta={"recipe": "test", "mode": mode, "instruction_language": il, "response_language": rl,
                         "source_ids": [rid.split("-")[1]], "fields": {"instruction": instr, "input": inp}})


def crossin_rows(limit: int, max_chars: int) -> list[Example]:
    """Rows from the first Alpaca pairs whose texts are short (the tiny model's tokenizer is per character)."""
    p = shared_path(*ALPACA)
    en = read_examples(p, "alpaca", language="en", prefix="en_")
    zh = read_examples(p, "alpaca", language="zh", prefix="zh_")
    out: list[Example] = []
    quota = {"base": limit // 3, "en2x": limit // 3, "x2en": limit - 2 * (limit // 3)}
    for e, z in itertools.islice(zip(en, zh), 20000):
        ef, zf = e.meta["fields"], z.meta["fields"]
        i = e.id
        cands = [_row(f"base-{i}", "base", "en", "en", ef["instruction"], ef["input"], e.response.content),
                 _row(f"en2x-{i}", "en2x", "en", "zh", ef["instruction"], ef["input"] + "\n[zh]", z.response.content),
                 _row(f"x2en-{i}", "x2en", "zh", "en", zf["instruction"], zf["input"] + "\n[en]", e.response.content)]
        for c in cands:
            if quota[c.meta["mode"]] and sum(len(m.content) for m in c.messages) <= max_chars:
                quota[c.meta["mode"]] -= 1
                out.append(c)
        if not any(quota.values()):
            break
    return out


@pytest.fixture(scope="session")
def mixture_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mix") / "train.jsonl"
    write_examples(path, crossin_rows(48, 40))
    return path
