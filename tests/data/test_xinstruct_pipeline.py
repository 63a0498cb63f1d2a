"""The whole X-Instruction pipeline through real backends: a tiny random HF model (every block, bad inputs counted,
cache reuse), a real second process killed mid-run and resumed without repeating a call, and the real llama.cpp
server when present."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_main
from tests.data.test_xinstruct_blocks import EN, TH, TR, VI, ZH


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model gains nothing from threads; a busy machine loses a lot
    yield
    torch.set_num_threads(before)


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(tmp_path: Path, model: str, n: int, **over) -> Path:
    """n Vietnamese and n Chinese passages, plus bad documents: empty, a number, and three in the wrong language."""
    vi = [{"id": f"vi{i}", "text": f"{VI} Đoạn văn số {i}."} for i in range(n)] + [{"id": "vi-tr", "text": TR}]
    zh = [{"id": f"zh{i}", "text": f"{ZH}第{i}段。"} for i in range(n)] + [
        {"id": "zh-empty", "text": "   "}, {"id": "zh-number", "text": 42}, {"id": "zh-english", "text": EN},
        {"id": "zh-thai", "text": TH}]
    cfg = {
        "sources": [{"language": "vi", "path": str(_write_jsonl(tmp_path / "vi.jsonl", vi)), "id_field": "id"},
                    {"language": "zh", "path": str(_write_jsonl(tmp_path / "zh.jsonl", zh)), "id_field": "id"}],
        "segment": {"min_chars": 40, "max_chars": 600},
        "model": {"backend": model, "cache": str(tmp_path / "calls.sqlite"), "batch_size": 4},
        "generate": {"candidates": 2, "max_new_tokens": 12, "english": False, "max_overlap": 1.0, "min_chars": 1},
        "refine": {"rounds": 2, "off_format": "keep", "max_new_tokens": 4},
        "diversify": {"k": "auto", "keep_fraction": 0.5},
    }
    for key, value in over.items():
        section, name = key.split(".")
        cfg[section][name] = value
    path = tmp_path / "xi.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _run(cfg: Path, out: Path, capsys, *overrides: str) -> tuple[dict, dict]:
    code, cap = run_main(["data", "xinstruct", str(cfg), "--out", str(out), *overrides], capsys)
    assert code == 0, cap.err
    return (json.loads((out / "manifest.json").read_text(encoding="utf-8")),
            json.loads((out / "run.json").read_text(encoding="utf-8")))


def test_pipeline_tiny_model_counts_and_cache(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    cfg = _config(tmp_path, str(tiny_model_dir), 6)
    manifest, run = _run(cfg, tmp_path / "out", capsys)
    counts = manifest["counts"]
    assert counts["passages"] == 12  # 6 vi + 6 zh; the bad documents are counted, not read
    excluded = [json.loads(x) for x in (tmp_path / "out" / "excluded.jsonl").read_text().splitlines()]
    reasons = {(e["block"], e["reason"]) for e in excluded}
    assert {("read", "empty_document"), ("read", "not_text"), ("langid", "langid_mismatch")} <= reasons
    wrong = {e["id"].split("#")[0] for e in excluded if e["reason"] == "langid_mismatch"}
    assert wrong == {"vi:vi-tr", "zh:zh-english", "zh:zh-thai"}
    # every candidate is accounted for: kept by refine, or excluded with a reason
    gen = manifest["blocks"]["generate"]["generate"]
    assert gen["candidates"] == 24 and gen["candidates"] == gen["out"] + sum(
        v for k, v in gen.items() if k.startswith("dropped:"))
    refine = manifest["blocks"]["refine"]["refine"]
    graded = sum(refine["grades_per_round"][0].values()) + sum(
        v for k, v in refine.items() if k.startswith("off_format:"))
    assert refine["in"] == gen["out"] and graded >= gen["out"]  # off-format answers are counted, not lost
    assert counts["rows"] == manifest["blocks"]["diversify"]["diversify"]["out"] > 0
    assert sum(sum(s) for s in manifest["cluster_sizes"].values()) == counts["refined"]
    assert run["model_calls"] > 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert all(r["messages"][0]["content"].endswith((" Answer in Vietnamese.", " Answer in Chinese."))
               for r in rows)
    first = (tmp_path / "out" / "train.jsonl").read_bytes()

    manifest2, run2 = _run(cfg, tmp_path / "out2", capsys)  # unchanged config: everything from the cache
    assert run2["model_calls"] == 0 and run2["cache_hits"] == run["model_calls"] + run["cache_hits"]
    assert (tmp_path / "out2" / "train.jsonl").read_bytes() == first
    assert manifest2 == {**manifest, "config_file": manifest2["config_file"]}

    _, run3 = _run(cfg, tmp_path / "out3", capsys, "limit=2", "generate.candidates=1")
    assert run3["model_calls"] == 0  # a smaller run reuses the same calls


def test_loglik_grading_is_never_off_format(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """refine.mode=loglik: every pair gets the grade word the judge finds most likely (the three log-probabilities
    recorded, equal to the backend's own scores), through the call cache: a rerun makes no call."""
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    cfg = _config(tmp_path, str(tiny_model_dir), 3, **{"refine.mode": "loglik", "refine.off_format": "drop",
                                                        "refine.rounds": 1, "diversify.enabled": False})
    manifest, run = _run(cfg, tmp_path / "out", capsys)
    refine = manifest["blocks"]["refine"]["refine"]
    assert refine["in"] > 0 and not any(k.startswith("off_format:") for k in refine)
    assert sum(refine["grades_per_round"][0].values()) == refine["in"]  # every pair graded
    grades = [json.loads(x) for x in (tmp_path / "out" / "grades.jsonl").read_text().splitlines()]
    assert len(grades) == refine["in"]
    for g in grades:
        assert set(g["logprobs"]) == {"good", "acceptable", "bad"} and g["off_format"] is None
        assert g["grade"] == max(g["logprobs"], key=g["logprobs"].get)
    with sqlite3.connect(str(tmp_path / "calls.sqlite")) as con:
        assert con.execute("SELECT COUNT(*) FROM calls WHERE kind='loglikelihood'").fetchone()[0] == 3 * len(grades)
    _, again = _run(cfg, tmp_path / "again", capsys)
    assert again["model_calls"] == 0 and again["cache_hits"] == run["model_calls"] + run["cache_hits"]
    assert (tmp_path / "again" / "grades.jsonl").read_bytes() == (tmp_path / "out" / "grades.jsonl").read_bytes()


def test_loglik_scores_are_the_judges_own(tiny_model_dir, tmp_path):
    """The Refine block in loglik mode: the grade prompt in the judge's chat template is the context, each grade
    word the continuation; the recorded log-probabilities are the backend's own scores for exactly that."""
    from crosstune.data.blocks import ExclusionSink
    from crosstune.data.xinstruct.config import GenerateConfig, ModelConfig, RefineConfig, fill, load_prompt
    from crosstune.data.xinstruct.generate import CandidateChecks
    from crosstune.data.xinstruct.model import ModelHandle
    from crosstune.data.xinstruct.refine import Refine
    from crosstune.models.backends import LoglikRequest
    from crosstune.models.backends.hf import HFBackend
    from crosstune.models.loading import load_tokenizer
    from crosstune.models.render import generate_ids
    from tests.data.test_xinstruct_blocks import _pair

    rows = [_pair(0, "Describe Hanoi."), _pair(1, "Describe Beijing.", "zh", ZH)]
    model = ModelHandle(ModelConfig(backend=str(tiny_model_dir), cache=str(tmp_path / "c.sqlite")))
    cfg = RefineConfig(mode="loglik", rounds=1, per_passage=0, actions={"good": "keep", "acceptable": "keep",
                                                                         "bad": "keep"})
    prompts = {"grade": load_prompt("xinstruct_grade")}
    refine = Refine(cfg, prompts, model, CandidateChecks(GenerateConfig()), batch_size=4)
    kept = list(refine.run(rows, ExclusionSink()))
    assert len(kept) == 2 and model.calls == 6  # 3 grade words x 2 pairs, all through the call cache
    backend, tok = HFBackend(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    for row, rec, lang in zip(rows, refine.records, ("Vietnamese", "Chinese")):
        prompt = fill(prompts["grade"], instruction=row.example.instruction.content,
                      response=row.example.response.content, language=lang)
        # the judge's generation prompt ids, each grade word encoded on its own (as training encodes an answer)
        context = tuple(generate_ids([{"role": "user", "content": prompt}], "chat", tok).ids)
        scores = backend.loglikelihood([LoglikRequest(context, tuple(tok(w, add_special_tokens=False)["input_ids"]))
                                        for w in ("good", "acceptable", "bad")])
        assert list(rec["logprobs"].values()) == pytest.approx([r.logprob for r in scores], abs=1e-3)
        assert rec["grade"] == row.example.meta["grade"] == max(rec["logprobs"], key=rec["logprobs"].get)


def test_loglik_grading_on_a_server_is_refused_before_any_call(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    cfg = _config(tmp_path, "default", 1, **{"refine.mode": "loglik"})
    code, cap = run_main(["data", "xinstruct", str(cfg), "--out", str(tmp_path / "o"),
                          "model.judge=openai:m@http://127.0.0.1:9/v1"], capsys)
    assert code == 2 and "refine.mode loglik" in cap.err and "model.judge" in cap.err and "Traceback" not in cap.err
    assert not (tmp_path / "calls.sqlite").exists() and not (tmp_path / "o").exists()


def test_bad_config_is_one_error_line(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sources: [{language: vi, path: nowhere.jsonl}]\n")
    code, cap = run_main(["data", "xinstruct", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "nowhere.jsonl" in cap.err and "Traceback" not in cap.err
    cfg.write_text("sources: [{language: vi, path: x.jsonl}]\ngenerate: {candidatez: 2}\n")
    code, cap = run_main(["data", "xinstruct", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "candidatez" in cap.err


def _entries(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(str(db), timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_resume_after_kill_makes_no_repeated_calls(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    cfg = _config(tmp_path, str(tiny_model_dir), 8, **{"generate.max_new_tokens": 16, "model.batch_size": 1,
                                                        "refine.rounds": 1, "diversify.enabled": False})
    db = tmp_path / "calls.sqlite"
    env = {**os.environ, "CROSSTUNE_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "crosstune", "data", "xinstruct", str(cfg), "--out",
                             str(tmp_path / "killed")], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _entries(db) < 8 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not (tmp_path / "killed" / "train.jsonl").exists()  # nothing half-written
    done = _entries(db)
    assert done >= 8

    _, run = _run(cfg, tmp_path / "resumed", capsys)
    assert run["cache_hits"] == done  # every call the killed run finished is reused...
    assert _entries(db) == done + run["model_calls"]  # ...and every new call is a new request: none repeated
    _, again = _run(cfg, tmp_path / "again", capsys)
    assert again["model_calls"] == 0
    assert (tmp_path / "again" / "train.jsonl").read_bytes() == (tmp_path / "resumed" / "train.jsonl").read_bytes()


def test_pipeline_on_real_llama_server(request, tmp_path, capsys, monkeypatch):
    try:
        server = request.getfixturevalue("llama_server")
    except pytest.FixtureLookupError:
        if os.environ.get("CROSSTUNE_REQUIRE_SERVER") == "1":
            pytest.fail("CROSSTUNE_REQUIRE_SERVER=1 but the llama_server fixture is not available")
        pytest.skip("the llama_server fixture (llama-cpp-python[server]) is not available")
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    cfg = _config(tmp_path, server.spec, 1,
                  **{"generate.candidates": 1, "generate.max_new_tokens": 24, "refine.rounds": 1})
    manifest, run = _run(cfg, tmp_path / "out", capsys)
    assert manifest["counts"]["passages"] == 2 and run["model_calls"] >= 2
    assert manifest["model"]["fingerprint"]
    _, again = _run(cfg, tmp_path / "again", capsys)
    assert again["model_calls"] == 0
