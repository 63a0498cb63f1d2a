"""The bytes of two small CrossIn builds, locked: a speed change to the build must not change what it writes.

The hashes were taken from the code before the CPU-time pass of issue 21 (9fb29f4) and after it (the same), on
the synthetic corpus of `tests/data/synthetic.py` (300 items; CrossIn's rows as `PairRow`s with tags, and with
directives, x2x and translate both ways, which mixes them with plain rows). If the synthetic corpus or a
recipe's documented output changes on purpose, rebuild and update them; otherwise a mismatch is a regression.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from crosstune.data.build import build
from tests.data.synthetic import write_alpaca

RECIPES = {
    "tag": ({"seed": 0, "recipe": {"languages": ["en", "zh", "vi"],
                                   "modes": {"base": "all", "en2x": 400, "x2en": 400, "translate": 400}},
             "filters": {"length": {"min_chars": 1, "max_chars": 300}, "langid": {"backend": "pycld2"}}},
            "c57e800e5ee303857044ef8fca88a6939659f0f3fc7ef5e269d8023e11902451",
            "193fbeed83173f58e7b8da02a925a5114ab47282162816a4c004e6a73322d7d4",
            "3e5198f10158455401585be5fc9ee538ea7b07675ffa57bd901790bf1a1b09bf"),
    "directive": ({"seed": 3, "recipe": {"languages": ["en", "zh", "vi"], "marking": {"style": "directive"},
                                         "translate_direction": "both",
                                         "modes": {"base": 200, "en2x": 300, "x2en": 300, "x2x": 300,
                                                   "translate": 300}},
                   "filters": {"langid": {"backend": "pycld2", "drop_undetermined": True}}},
                  "524e2a9ee6ba0bcf5366d67e2f15e3a6b3adcdff68a0383cff86a30171213fbd",
                  "c11e39e88bd4a0a4b19fd47aa30a6e9f037785e43974d79090d4ec2b49cf522e",
                  "f842436b8331f4ba6c03778cc7ec25b1be1b33e7294a0fca5f535d53e6b49993"),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize("workers", [1, 2])
def test_small_crossin_builds_write_the_locked_bytes(tmp_path, name, workers):
    cfg, train, exclusions, manifest = RECIPES[name]
    d = write_alpaca(tmp_path / "data", 300)
    sources = [{"language": "en", "path": str(d["alpaca"]), "format": "alpaca", "prefix": "en_"},
               {"language": "zh", "path": str(d["alpaca"]), "format": "alpaca", "prefix": "zh_"},
               {"language": "vi", "path": str(d["vi"]), "format": "prompt_response",
                "align_to": {"path": str(d["alpaca"]), "prefix": "en_"}}]
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump({"name": "crossin", "sources": sources, **cfg}, allow_unicode=True),
                      encoding="utf-8")
    out = tmp_path / "out"
    build(recipe, out, workers=workers)
    assert sha((out / "train.jsonl").read_bytes()) == train
    assert sha((out / "exclusions.jsonl").read_bytes()) == exclusions
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))  # paths aside: counts, filters, log
    summary = json.dumps([m["counts"], m["filters"], m["exclusions"], m["log"]], sort_keys=True).encode()
    assert sha(summary) == manifest
