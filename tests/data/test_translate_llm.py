"""The LLM engine against a real llama.cpp server (SmolLM2-135M): requests go through the one call cache, every
row is accounted for (kept or excluded with a reason), and a rerun sends nothing."""

from __future__ import annotations

import json

from crosstune.data.translate import translate


def test_llm_engine_translates_through_the_cached_backend(llama_server, tmp_path):
    src = tmp_path / "a.jsonl"
    rows = [{"instruction": "Say hello.", "input": "", "output": "Hello!"},
            {"instruction": "Name a color.", "input": "", "output": "Blue. It is calm."}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        f"source: {{path: {src}}}\nlanguages: [es]\n"
        f"engine: {{kind: llm, model: '{llama_server.spec}', max_new_tokens: 16, concurrency: 2}}\n"
        f"cache: {tmp_path / 'calls.sqlite'}\nsignals: {{max_copy_rate: null, min_length_ratio: null, "
        f"max_length_ratio: null}}\n", encoding="utf-8")
    first = translate(cfg, tmp_path / "out")
    segments = first["run"]["segments"]
    assert segments == 5 and first["run"]["engine_calls"] == segments and first["run"]["cache_hits"] == 0
    out = [json.loads(x) for x in (tmp_path / "out" / "parallel.jsonl").read_text().splitlines()]
    excluded = [json.loads(x) for x in (tmp_path / "out" / "excluded.jsonl").read_text().splitlines()]
    kept = {r["id"] for r in out if "es" in r}
    assert kept | {e["id"] for e in excluded} == {"0", "1"}  # nothing silently dropped
    for r in out:
        if "es" in r:
            assert r["es"]["instruction"].strip() and r["es"]["input"] == ""
    again = translate(cfg, tmp_path / "out2")
    assert again["run"]["engine_calls"] == 0 and again["run"]["cache_hits"] == segments
    assert (tmp_path / "out" / "parallel.jsonl").read_bytes() == (tmp_path / "out2" / "parallel.jsonl").read_bytes()
