"""`crosstune.data.build`: recipe YAML -> train.jsonl, manifest.json, exclusions.jsonl; deterministic per seed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from crosstune.data.build import build, input_paths, plan_build
from crosstune.errors import CrosstuneError
from tests.conftest import REPO, shared_path
from tests.data.recipe_slices import slices, source_entries  # noqa: F401  (fixture)


def write_recipe(tmp_path: Path, slices, **changes) -> Path:  # noqa: F811
    cfg = {"name": "crossin", "seed": 0, "sources": source_entries(slices),
           "recipe": {"languages": ["en", "zh", "vi"], "modes": {"base": 100, "en2x": 100, "x2en": 100,
                                                                  "translate": 100}},
           "filters": {"langid": {"backend": "pycld2"}, "near_dedup": {"threshold": 0.9}}}
    cfg.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("train.jsonl", "manifest.json", "exclusions.jsonl")}


def test_same_seed_same_bytes_other_seed_differs(tmp_path, slices):  # noqa: F811
    recipe = write_recipe(tmp_path, slices)
    build(recipe, tmp_path / "a")
    build(recipe, tmp_path / "b")
    build(recipe, tmp_path / "c", seed=1)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a")["train.jsonl"] != files(tmp_path / "c")["train.jsonl"]


def test_rows_and_manifest(tmp_path, slices):  # noqa: F811
    recipe = write_recipe(tmp_path, slices)
    result = build(recipe, tmp_path / "out", overrides=["recipe.modes.en2x=50"])
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m == result.manifest
    for r in rows:
        assert list(r) == ["id", "messages", "meta"]
        # the recipe's own keys first; CrossIn adds its structured fields for the named templates after them
        assert list(r["meta"])[:5] == ["recipe", "mode", "instruction_language", "response_language", "source_ids"]
        assert [list(msg) for msg in r["messages"]] == [["role", "content", "language"]] * 2
    assert m["seed"] == 0 and len(m["config_hash"]) == 16 and m["config"]["recipe"]["modes"]["en2x"] == 50
    assert m["counts"]["rows"] == len(rows)
    assert sum(m["counts"]["per_mode"].values()) == len(rows)
    assert set(m["counts"]["per_mode"]) == {"base", "en2x", "x2en", "translate"}
    assert m["counts"]["per_mode_and_pair"]["base:en->en"] <= 100
    alpaca = Path(slices["alpaca"])
    assert {"path": str(alpaca), "sha256": hashlib.sha256(alpaca.read_bytes()).hexdigest()} in m["inputs"]
    excluded = [json.loads(line) for line in (tmp_path / "out" / "exclusions.jsonl").read_text().splitlines()]
    assert m["exclusions"]["rows"] == len(excluded)
    dropped = sum(v for stats in m["filters"].values() for k, v in stats.items() if k.startswith("dropped:"))
    assert dropped == len(excluded)
    assert {e["block"] for e in excluded} <= set(m["filters"])
    assert m["filters"]["langid"]["assistant:agreement"] >= 0.9


@pytest.mark.parametrize("changes, message", [
    ({"name": "crossover"}, "unknown recipe 'crossover'; expected one of crossin, pinch"),
    ({"recipe": {"languages": ["en", "es"], "modes": {"en2x": 5}}}, "recipe asks for es but sources only have"),
    ({"recipe": {"languages": ["en", "zh"], "modes": {"zh2en": 5}}}, "unknown mode"),
    ({"recipe": {"languages": ["en", "zh"], "modes": {"en2x": 5}, "colour": 1}}, "unknown key 'colour'"),
    ({"filters": {"langid": {"backend": "fasttext"}}}, "filters.langid.backend"),
    ({"name": "pinch", "recipe": {"languages": ["zh"], "percent": 101}}, "within 0..100"),
    ({"recipe": {"languages": ["en", "zh"], "modes": {"en2x": 0}}}, "modes.en2x': expected a number of items from 1 to 100,000,000 or 'all'"),
    ({"recipe": {"languages": ["en"], "modes": {"en2x": 5}}}, "at least one language besides English"),
])
def test_config_errors_come_before_any_work(tmp_path, slices, changes, message):  # noqa: F811
    recipe = write_recipe(tmp_path, slices, **changes)
    with pytest.raises(CrosstuneError, match=message):
        build(recipe, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_source_file_is_named(tmp_path, slices):  # noqa: F811
    sources = [{"language": "en", "path": "no/such.jsonl"}, {"language": "zh", "path": str(slices["alpaca"])}]
    recipe = write_recipe(tmp_path, slices, sources=sources, recipe={"languages": ["en", "zh"], "modes": {"en2x": 5}})
    with pytest.raises(CrosstuneError, match=r"recipe.yaml: field 'sources.0.path': 'no/such.jsonl': not found \(looked in "):
        build(recipe, tmp_path / "out")


def test_volume_larger_than_corpus(tmp_path, slices):  # noqa: F811
    recipe = write_recipe(tmp_path, slices, recipe={"languages": ["en", "zh"], "modes": {"en2x": 1000},
                                                    "replace": False})
    with pytest.raises(CrosstuneError, match="asks for 1,000 items but the corpus has 300.*replace: true"):
        build(recipe, tmp_path / "out")


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")))
def test_shipped_recipes_validate_and_point_at_real_files(name, tmp_path):
    shared_path()  # skip without the shared data
    raw = yaml.safe_load((REPO / "recipes" / name).read_text(encoding="utf-8"))
    # a recipe reading another command's output (runs/...) is validated with a stand-in file
    made = [f"sources.{i}.path={tmp_path / 'made.jsonl'}" for i, s in enumerate(raw.get("sources") or [])
            if str(s.get("path", "")).startswith("runs/")]
    (tmp_path / "made.jsonl").write_text("{}\n")
    plan = plan_build(REPO / "recipes" / name, made)
    specs = input_paths(plan)
    assert specs and all(plan.lookup(p, f).exists() for f, p in specs)


@pytest.mark.integration
def test_crossin_on_full_alpaca_en_zh(tmp_path):
    """All of Alpaca en/zh (52,002 items), every mode; the aligned vi is in benchmarks/bench_build.py."""
    alpaca = str(shared_path("alpaca_chinese_parallel", "alpaca_en_zh_52k_v3.jsonl.gz"))
    sources = [{"language": lang, "path": alpaca, "format": "alpaca", "prefix": f"{lang}_"} for lang in ("en", "zh")]
    result = build(REPO / "recipes" / "crossin.yaml", tmp_path, overrides=[
        f"sources={json.dumps(sources)}", "recipe.languages=[en, zh]",
        "recipe.modes={base: all, en2x: all, x2en: all, x2x: all, translate: all}"])
    m = result.manifest
    assert m["corpus"]["items"] == {"en": 52002, "zh": 52002}
    assert set(m["counts"]["per_mode"]) == {"base", "en2x", "x2en", "x2x", "translate"}
    assert m["filters"]["langid"]["user:agreement"] >= 0.98
    assert m["filters"]["langid"]["assistant:agreement"] >= 0.98


def test_encode_row_matches_the_generic_encoder():
    from crosstune.data.build import encode_row
    from crosstune.data.io import dumps_row
    from crosstune.data.schema import Example, Message

    ex = Example("crossin-en2x-3", [Message("user", 'Say "hi"\n\n[zh]', "en"), Message("assistant", "你好\u2028", None)],
                 meta={"recipe": "crossin", "source_ids": ["en:3", "zh:3"], "fields": {"instruction": "é"}})
    row = {"id": ex.id, "messages": [m.to_dict() for m in ex.messages], "meta": ex.meta}
    assert encode_row(ex) == (dumps_row(row) + "\n").encode("utf-8")


@pytest.mark.parametrize("name, changes", [
    ("crossin", {}),  # near dedup after language ID: the next batch is gathered while a worker detects
    ("pinch", {"recipe": {"languages": ["zh", "vi"], "percent": 10, "total": 200}}),  # a quota: no read-ahead
])
def test_workers_do_not_change_the_bytes(tmp_path, slices, monkeypatch, name, changes):  # noqa: F811
    from crosstune.data.filters.langid import LangIdFilter

    monkeypatch.setattr(LangIdFilter, "batch_size", 16)  # many batches, many worker jobs on a small corpus
    monkeypatch.setattr(LangIdFilter, "SEND", 4)
    monkeypatch.setattr(LangIdFilter, "FRONT_CHARS", 20_000)  # and front evictions on the way
    recipe = write_recipe(tmp_path, slices, name=name, **changes)
    one = build(recipe, tmp_path / "one", workers=1)
    two = build(recipe, tmp_path / "two", workers=2)
    assert files(tmp_path / "one") == files(tmp_path / "two")
    assert one.timings["langid_worker_texts"] == 0 and two.timings["langid_worker_texts"] > 0
    assert two.manifest["filters"]["langid"]["texts_detected"] >= two.timings["langid_worker_texts"]
    with pytest.raises(CrosstuneError, match="workers must be at least 1"):
        build(recipe, tmp_path / "zero", workers=0)
