"""Packing keeps examples apart; batch plans give every process its share of the same global batch."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from crosstune.train.packing import check_isolation, collate, epoch_plan
from crosstune.train.tokenize import IGNORE, Tokenized


def test_packed_row_equals_separate_examples(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    assert check_isolation(model, model.config.vocab_size)


def test_collate_shifts_targets_inside_each_example():
    data = [Tokenized("a", [5, 6, 7], [IGNORE, 6, 7], "en", "base"),
            Tokenized("b", [8, 9], [IGNORE, 9], "zh", "en2x")]
    b = collate([[0, 1]], data, 0, "pack", {"en": 0, "zh": 1}, {"base": 0, "en2x": 1})
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    # the last token of `a` predicts nothing (not the first token of `b`)
    assert b["targets"].tolist() == [[6, 7, IGNORE, 9, IGNORE]]
    assert b["attention_mask"] is None and b["lang"].tolist() == [[0, 0, 0, 1, 1]]
    p = collate([[0], [1]], data, 0, "pad", {"en": 0, "zh": 1}, {"base": 0, "en2x": 1})
    assert p["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]] and p["real_tokens"] == 5


def test_plans_are_deterministic_and_cover_each_example_once():
    lengths = [(i * 37) % 50 + 5 for i in range(40)]
    for mode in ("pad", "pack"):
        a = epoch_plan(lengths, mode, 2, 64, 4, seed=1, epoch=0)
        assert a == epoch_plan(lengths, mode, 2, 64, 4, seed=1, epoch=0)
        assert a != epoch_plan(lengths, mode, 2, 64, 4, seed=1, epoch=1)
        seen = [i for step in a for micro in step for row in micro for i in row]
        assert len(seen) == len(set(seen))
        assert all(len(step) == 4 for step in a)
    packed = epoch_plan(lengths, "pack", 2, 64, 1, seed=1, epoch=0)
    assert all(sum(lengths[i] for i in row) <= 64 for step in packed for micro in step for row in micro)
    pad = epoch_plan(lengths, "pad", 2, 64, 1, seed=1, epoch=0)
    spread = [max(lengths[r[0]] for r in m) - min(lengths[r[0]] for r in m) for s in pad for m in s]
    assert sum(spread) / len(spread) < 10  # length-grouped: little padding inside a micro-batch
