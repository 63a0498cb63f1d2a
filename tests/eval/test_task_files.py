"""Task data files from an independent user's log: gzipped TSV, a header row of other names, column counts."""

from __future__ import annotations

import gzip
import json

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval.tasks import load_items, load_task
from tests.conftest import REPO, run_main

GZ = REPO / "tests" / "eval" / "gz_task" / "arith.yaml"


def test_gzipped_tsv_task_runs(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code, cap = run_main(["eval", "run", "--model", str(tiny_model_dir), "--tasks", str(GZ), "--limit", "2",
                          "--n-boot", "20", "--out", str(out)], capsys)
    assert code == 0, cap.err
    s = json.loads((out / "arith" / "summary.json").read_text())
    assert s["n_items"] == 2 and s["languages"] == ["en", "de"]
    rows = [json.loads(x) for x in (out / "arith" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["language"], r["gold"]) for r in rows] == [("1", "en", "5"), ("1", "de", "5"),
                                                                   ("2", "en", "3"), ("2", "de", "3")]


def _task(tmp_path, text: str, **fields) -> str:
    (tmp_path / "data_en.tsv").write_text(text, encoding="utf-8")
    (tmp_path / "data_de.tsv").write_text(text, encoding="utf-8")
    cfg = {"name": "t", "kind": "generation", "extract": "number", "data_files": "data_{key}.tsv", "format": "tsv",
           "columns": ["question", "answer"], "id_field": None, "languages": {"en": "en", "de": "de"},
           "answer": "answer", "default_prompt": "p", "prompts": {"p": "{{ question }}"}, **fields}
    path = tmp_path / "t.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return str(path)


def test_header_rows(tmp_path):
    # a header of other names, one more column than `columns`: a clean error that names the option ...
    task = _task(tmp_path, "nr\tfrage\tantwort\nWhat is 2 + 3?\t5\n")
    with pytest.raises(CrosstuneError, match=r"data_en.tsv:1: 3 columns, expected 2 \(question, answer\); if this "
                                             r"row is the file's header, set skip_header: true"):
        load_items(load_task(task))
    # ... which skips it; ids stay 1-based data lines
    items = load_items(load_task(task, ["skip_header=true"]))
    assert [(it["en"].id, it["en"].answer) for it in items] == [("1", "5")]
    # a header naming exactly the columns is the file's own header: skipped without the option
    items = load_items(load_task(_task(tmp_path, "question\tanswer\nWhat is 2 + 3?\t5\nWhat is 1 + 1?\t2\n")))
    assert [it["de"].id for it in items] == ["1", "2"]


def test_column_count_is_checked_before_the_filter(tmp_path):
    task = _task(tmp_path, "What is 2 + 3?\t5\nbroken\trow\twith three\n", filter="answer != 'row'")
    with pytest.raises(CrosstuneError, match=r"data_en.tsv:2: 3 columns, expected 2"):
        load_items(load_task(task))


def test_gzip_for_every_format_and_broken_gzip(tmp_path):
    from crosstune.eval.sources import read_any

    squad = {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "q1", "question": "?",
                                                                              "answers": [{"text": "a"}]}]}]}]}
    (tmp_path / "s.json.gz").write_bytes(gzip.compress(json.dumps(squad).encode()))
    assert [r["id"] for _, r in read_any(tmp_path / "s.json.gz", "squad", None)] == ["q1"]
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress("question,answer\n\"a, b\",1\n".encode()))
    assert [r for _, r in read_any(tmp_path / "c.csv.gz", "auto", None)] == [{"question": "a, b", "answer": "1"}]
    (tmp_path / "bad.tsv.gz").write_bytes(gzip.compress("x\ty\n".encode())[:-6])
    with pytest.raises(CrosstuneError, match="bad.tsv.gz: cannot read"):
        list(read_any(tmp_path / "bad.tsv.gz", "auto", ["a", "b"]))
    (tmp_path / "latin1.tsv").write_bytes("caf\xe9\t1\n".encode("latin-1"))
    with pytest.raises(CrosstuneError, match="latin1.tsv: not UTF-8 text"):
        list(read_any(tmp_path / "latin1.tsv", "auto", ["a", "b"]))
