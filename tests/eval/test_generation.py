"""Generation runs: prompt sets and their languages, directives, the row contract, the call cache (a rerun makes no
calls, a changed setting never reuses stale outputs), resume after a failure with the same bytes, bad rows."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from crosstune.data.recipes.common import Marking, marked_user_text
from crosstune.errors import CrosstuneError
from crosstune.eval.generation import (ROW_FIELDS, Decoding, load_items, plan_generation, read_generations,
                                       run_generation)
from crosstune.eval.prompt_sets import directed_text, parse_prompt_spec
from crosstune.models.backends import build_backend
from crosstune.models.cache import CachedBackend, CallCache
from tests.conftest import shared_path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def prompt_files(tmp_path):
    en = write_jsonl(tmp_path / "en.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in
                                             enumerate(["What is the capital of France?", "Say hi.", "2+2?"])])
    zh = write_jsonl(tmp_path / "zh.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in
                                             enumerate(["法国的首都是哪里？", "打个招呼。", "二加二？"])])
    return en, zh


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return build_backend(str(tiny_model_dir), batch_size=4)


class Flaky:
    """Wraps a backend; raises after `fail_after` results, like a server that dies mid-run."""

    def __init__(self, inner, fail_after=None):
        self.inner, self.fail_after, self.sent = inner, fail_after, 0
        self.fingerprint, self.name, self.batch_size = inner.fingerprint, "flaky", 2

    def generate_iter(self, requests):
        for i, text in self.inner.generate_iter(requests):
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise ConnectionError("server died")
            self.sent += 1
            yield i, text

    def generate(self, requests):
        out = [None] * len(requests)
        for i, t in self.generate_iter(requests):
            out[i] = t
        return out


def test_prompt_specs_and_languages(tmp_path, prompt_files):
    en, zh = prompt_files
    assert parse_prompt_spec(f"zh-CN={zh}") == ("zh", str(zh))
    assert parse_prompt_spec(str(en)) == (None, str(en))
    items = load_items([f"en={en}", f"Chinese={zh}"], limit=2)
    assert [(it.language, it.id, it.index) for it in items] == [("en", "q0", 0), ("en", "q1", 1),
                                                                ("zh", "q0", 0), ("zh", "q1", 1)]
    assert items[0].source == f"{en}:1"
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [
        {"language": "vi", "instruction": "Dịch câu này", "input": "hello", "output": "xin chào"},
        {"messages": [{"role": "user", "content": "hola", "language": "es"}, {"role": "assistant", "content": "x"}]},
        {"language": "fr", "conversations": [{"from": "human", "value": "salut"}]}])
    got = load_items([str(mixed)])
    assert [(it.language, it.user_text) for it in got] == [("vi", "Dịch câu này\n\nhello"), ("es", "hola"),
                                                           ("fr", "salut")]
    assert got[0].id == "mixed-0"  # no id field: file stem and row position


@pytest.mark.parametrize("rows, spec, match", [
    ([{"prompt": "hi"}], "{p}", r"bad\.jsonl:1: no language for this prompt; give it as LANG=FILE"),
    ([{"prompt": "hi", "language": "not a language"}], "{p}", r"bad\.jsonl:1 field 'language': unknown language"),
    ([{"prompt": "hi"}], "xx-nope={p}", r"--prompts 'xx-nope=.*': unknown language"),
    ([{"prompt": "a", "id": 1}, {"prompt": "b", "id": 1}], "en={p}", r"bad\.jsonl:2: id '1' \(en\) repeats .*bad\.jsonl:1"),
    ([{"text_x": "a"}], "en={p}", r"bad\.jsonl:1: no prompt found in fields \['text_x'\]"),
    ([{"messages": [{"role": "assistant", "content": "a"}]}], "en={p}", r"bad\.jsonl:1: the conversation has no user turn"),
    ([{"prompt": "  "}], "en={p}", r"bad\.jsonl:1: the prompt is empty"),
])
def test_bad_prompt_rows_name_file_and_line(tmp_path, rows, spec, match):
    p = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(CrosstuneError, match=match):
        load_items([spec.format(p=p)])


def test_bad_rows_can_be_skipped_and_are_recorded(tmp_path):
    p = tmp_path / "hi.jsonl"
    p.write_text('{"id": "a", "prompt": "one"}\n{"id": "b", "prompt": "two"}"\n{"id": "c"}\n{"id": "d", "prompt": "4"}\n')
    with pytest.raises(CrosstuneError, match=r"hi\.jsonl:2: malformed JSON"):
        load_items([f"hi={p}"])
    skipped: list = []
    items = load_items([f"hi={p}"], skipped=skipped)
    assert [(it.id, it.index) for it in items] == [("a", 0), ("d", 3)]  # positions still count the bad lines
    assert [s["source"] for s in skipped] == [f"{p}:2", f"{p}:3"]
    assert "not a JSON object" in skipped[0]["reason"] and "no prompt found" in skipped[1]["reason"]


def test_directives_reuse_the_recipes_marking():
    text = "What is the capital of France?"
    assert directed_text(text, "en", "answer_in", "zh") == "What is the capital of France? Answer in Chinese."
    assert directed_text(text, "en", "tag", "zh") == marked_user_text(text, "", "en", "zh", Marking(style="tag"))
    assert directed_text(text, "en", "tag", "zh").endswith("\n[zh]")
    assert directed_text(text, "en", "none", "zh") == text
    with pytest.raises(CrosstuneError, match="--directive 'please'"):
        directed_text(text, "en", "please", "zh")


def test_plan_cross_lingual_target_and_samples(prompt_files):
    en, _ = prompt_files
    items = load_items([f"en={en}"], limit=1)
    plan = plan_generation(items, Decoding(temperature=0.7, top_p=0.9, samples=3, seed=10), "answer_in", "zh-Hans")
    assert [(r["expected_language"], r["sample"]) for r in plan.rows] == [("zh", 0), ("zh", 1), ("zh", 2)]
    seeds = [r["seed"] for r in plan.rows]
    assert len(set(seeds)) == 3 and seeds == [q.seed for q in plan.requests]
    assert seeds == [r["seed"] for r in plan_generation(items, Decoding(temperature=0.7, seed=10), "answer_in",
                                                        "zh").rows[:1]] + seeds[1:]  # stable per (seed, prompt, k)
    assert {q.seed for q in plan_generation(items, Decoding(samples=2)).requests} == {0}  # greedy: seed unused
    assert {(q.temperature, q.top_p) for q in plan.requests} == {(0.7, 0.9)}
    assert plan.requests[0].prompt == [{"role": "user", "content": "What is the capital of France? Answer in Chinese."}]
    assert plan_generation(items, Decoding(template="raw")).requests[0].prompt == "What is the capital of France?"
    with pytest.raises(CrosstuneError, match="--target-language needs --directive"):
        plan_generation(items, Decoding(), "none", "zh")


def test_run_rows_rerun_and_changed_settings(tmp_path, prompt_files, tiny):
    en, zh = prompt_files
    items = load_items([f"en={en}", f"zh={zh}"])
    cache = CallCache(tmp_path / "calls.sqlite")
    dec = Decoding(max_new_tokens=6)
    first = CachedBackend(tiny, cache)
    s1 = run_generation(first, items, tmp_path / "run", model="tiny", decoding=dec, directive="answer_in")
    rows = read_generations(tmp_path / "run")
    assert len(rows) == 6 and s1["calls"] == 6 and s1["cache_hits"] == 0 and s1["tokens_per_s"]
    assert list(rows[0])[:len(ROW_FIELDS)] == list(ROW_FIELDS)
    assert rows[3]["prompt"] == "法国的首都是哪里？ Answer in Chinese." and rows[3]["expected_language"] == "zh"
    assert {r["fingerprint"] for r in rows} == {tiny.fingerprint}
    assert read_generations(tmp_path / "run" / "generations.jsonl") == rows
    before = (tmp_path / "run" / "generations.jsonl").read_bytes()
    again = CachedBackend(tiny, cache)  # a rerun into a fresh folder: every row from the cache
    s2 = run_generation(again, items, tmp_path / "run2", model="tiny", decoding=dec, directive="answer_in")
    assert (s2["calls"], s2["cache_hits"]) == (0, 6)
    assert (tmp_path / "run2" / "generations.jsonl").read_bytes() == before
    s3 = run_generation(CachedBackend(tiny, cache), items, tmp_path / "run", model="tiny", decoding=dec,
                        directive="answer_in")  # the same folder again: nothing to do
    assert (s3["calls"], s3["rows_resumed"]) == (0, 6)
    with pytest.raises(CrosstuneError, match=r"run\.json: this folder holds a run with other settings \(changed: decoding\."):
        run_generation(CachedBackend(tiny, cache), items, tmp_path / "run", model="tiny",
                       decoding=replace(dec, max_new_tokens=7), directive="answer_in")
    longer = CachedBackend(tiny, cache)  # a changed setting is a new key: no stale outputs
    s4 = run_generation(longer, items, tmp_path / "run7", model="tiny", decoding=replace(dec, max_new_tokens=7),
                        directive="answer_in")
    assert s4["calls"] == 6


def test_killed_run_resumes_without_repeats_and_same_bytes(tmp_path, prompt_files, tiny):
    en, zh = prompt_files
    items = load_items([f"en={en}", f"zh={zh}"])
    dec = Decoding(max_new_tokens=5, temperature=0.9, samples=2, seed=3)
    whole = run_generation(CachedBackend(tiny, CallCache(tmp_path / "a.sqlite")), items, tmp_path / "whole",
                           model="tiny", decoding=dec, chunk_size=4)
    assert whole["n_rows"] == 12
    cache = CallCache(tmp_path / "b.sqlite")
    dying = CachedBackend(Flaky(tiny, fail_after=7), cache, flush_every=1)
    with pytest.raises(ConnectionError):
        run_generation(dying, items, tmp_path / "run", model="tiny", decoding=dec, chunk_size=4)
    assert dying.calls == 7 and len(read_generations(tmp_path / "run")) == 4  # one full chunk written
    with open(tmp_path / "run" / "generations.jsonl", "a") as f:
        f.write('{"id": "torn')  # a kill in the middle of a write
    resumed = CachedBackend(Flaky(tiny), cache)
    s = run_generation(resumed, items, tmp_path / "run", model="tiny", decoding=dec, chunk_size=4)
    assert (s["rows_resumed"], s["cache_hits"], s["calls"]) == (4, 3, 5)  # 7 + 5 = 12: no call made twice
    assert (tmp_path / "run" / "generations.jsonl").read_bytes() == \
        (tmp_path / "whole" / "generations.jsonl").read_bytes()


def test_read_generations_checks_the_contract(tmp_path):
    write_jsonl(tmp_path / "g.jsonl", [{"id": "a", "response": "x"}])
    with pytest.raises(CrosstuneError, match=r"g\.jsonl:1: not a generation row, missing sample"):
        read_generations(tmp_path / "g.jsonl")
    with pytest.raises(CrosstuneError, match="no such file"):
        read_generations(tmp_path / "nothing")


def test_hplt_prompt_set_eleven_languages():
    d = shared_path("hplt_oasst_multilingual_test")
    langs = ["en", "bg", "bn", "cs", "es", "fi", "fr", "hi", "no", "ru", "zh"]
    items = load_items([f"{x}={d}/test_{x}.jsonl" for x in langs], limit=3)
    assert len(items) == 33 and {it.language for it in items} == set(langs)
    skipped: list = []
    hi = load_items([f"hi={d}/test_hi.jsonl"], skipped=skipped)
    assert len(hi) == 49 and skipped[0]["source"].endswith("test_hi.jsonl:50")  # the upstream's broken last line
    alpaca = load_items([f"en={shared_path('alpaca_eval_en', 'text_davinci_003_model_outputs.json')}"], limit=2)
    assert alpaca[0].user_text.startswith("What are the names of some famous actors")
