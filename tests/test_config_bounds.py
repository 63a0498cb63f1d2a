"""Every numeric config field has its real range, checked when the config is read (the probe's values first)."""

from __future__ import annotations

import pytest

from crosstune.config import config_hash, validate
from crosstune.errors import CrosstuneError


def _models():
    from crosstune.data.build import BuildConfig
    from crosstune.data.recipes.crossin import CrossInParams
    from crosstune.data.recipes.pinch import PinchParams
    from crosstune.data.translate.config import TranslateConfig
    from crosstune.data.xinstruct.config import XInstructConfig
    from crosstune.eval.tasks import TaskConfig
    from crosstune.experiments.config import Experiment
    from crosstune.train.config import TrainConfig

    return {"train": (TrainConfig, {"data": "d.jsonl", "output_dir": "o"}),
            "crossin": (CrossInParams, {"languages": ["en", "zh"], "modes": {"base": 10}}),
            "pinch": (PinchParams, {"languages": ["zh"], "percent": 10}),
            "build": (BuildConfig, {"name": "crossin"}),
            "translate": (TranslateConfig, {"source": {"path": "s.jsonl"}, "languages": ["pt"]}),
            "xinstruct": (XInstructConfig, {"sources": [{"language": "zh", "path": "p.txt"}]}),
            "task": (TaskConfig, {"name": "t", "data_files": "x.jsonl", "languages": {"en": "en"},
                                  "prompts": {"default": "{{ q }}"}, "default_prompt": "default"}),
            "experiment": (Experiment, {"name": "e"})}


def _set(data: dict, dotted: str, value) -> dict:
    import copy

    out = copy.deepcopy(data)
    node = out
    *parents, last = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return out


CASES = [  # the five, then one per kind of bound
    ("crossin", "modes.en2x", 10**15, "field 'modes.en2x': expected a number of items from 1 to 100,000,000 or 'all'"),
    ("train", "lora.r", 10**12, "field 'lora.r': Input should be less than or equal to 65536"),
    ("xinstruct", "generate.candidates", 10**12, "field 'generate.candidates': Input should be less than or equal"),
    ("task", "generation.max_new_tokens", -1, "field 'generation.max_new_tokens': Input should be greater than or "
                                              "equal to 1"),
    ("translate", "signals.max_copy_rate", -1, "field 'signals.max_copy_rate': Input should be greater than or equal "
                                               "to 0"),
    ("train", "seed", -1, "field 'seed': Input should be greater than or equal to 0"),
    ("train", "seed", 2**32, "field 'seed': Input should be less than or equal to 4294967295"),
    ("train", "optim.lr", float("nan"), "field 'optim.lr': Input should be a finite number"),
    ("train", "optim.betas", [0.9, 1.5], "field 'optim.betas.1': Input should be less than 1"),
    ("train", "batch.size", 10**9, "field 'batch.size': Input should be less than or equal to 65536"),
    ("train", "tokenize.max_length", 10**10, "field 'tokenize.max_length'"),
    ("pinch", "count", -5, "field 'count': Input should be greater than or equal to 0"),
    ("build", "seed", -3, "field 'seed'"),
    ("translate", "engine.concurrency", 0, "field 'engine.concurrency': Input should be greater than or equal to 1"),
    ("translate", "engine.num_beams", 10**6, "field 'engine.num_beams'"),
    ("translate", "signals.min_langid_confidence", 2, "field 'signals.min_langid_confidence'"),
    ("xinstruct", "diversify.k", 0, "field 'diversify.k"),
    ("xinstruct", "segment.min_confidence", -0.5, "field 'segment.min_confidence'"),
    ("task", "fewshot", {"file": "f", "template": "x", "n": -2}, "field 'fewshot.n'"),
    ("experiment", "threads", 10**6, "field 'threads'"),
    ("experiment", "eval", {"g": {"kind": "generation", "prompts": ["p"], "max_new_tokens": 0}},
     "field 'eval.g.max_new_tokens'"),
]


@pytest.mark.parametrize("kind, key, value, message", CASES, ids=[f"{c[0]}:{c[1]}={c[2]!r}"[:60] for c in CASES])
def test_out_of_range_numbers_are_config_errors(kind, key, value, message):
    model, good = _models()[kind]
    validate(model, good, "c.yaml")  # the base config is valid
    with pytest.raises(CrosstuneError) as e:
        validate(model, _set(good, key, value), "c.yaml")
    assert message in str(e.value)


def test_cache_path_is_not_part_of_the_config_hash():
    models = _models()
    for kind, key in (("translate", "cache"), ("xinstruct", "model.cache")):
        model, good = models[kind]
        a = validate(model, _set(good, key, "/tmp/a.sqlite"), "c.yaml")
        b = validate(model, _set(good, key, "/elsewhere/b.sqlite"), "c.yaml")
        assert config_hash(a) == config_hash(b), kind
        assert config_hash(a) != config_hash(validate(model, _set(good, "seed" if kind == "xinstruct" else "limit",
                                                                   7), "c.yaml"))
