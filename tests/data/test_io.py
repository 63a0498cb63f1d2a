import gzip
import json

import pytest

from crosstune.data.io import read_examples, write_examples
from crosstune.data.schema import Example, Message
from crosstune.errors import CrosstuneError


def _write(path, text, mode="w"):
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_alpaca_jsonl_gz(tmp_path):
    p = _write(tmp_path / "a.jsonl.gz", json.dumps({"instruction": "Add", "input": "1+1", "output": "2"}) + "\n")
    (ex,) = read_examples(p, language="English")
    assert ex.id == "0"
    assert [m.role for m in ex.messages] == ["user", "assistant"]
    assert ex.messages[0].content == "Add\n\n1+1" and ex.messages[0].language == "en"
    assert ex.meta["fields"] == {"instruction": "Add", "input": "1+1"}


def test_prefixed_parallel_columns(tmp_path):
    row = {"en_instruction": "Hi", "en_input": "", "en_output": "Hello", "zh_instruction": "嗨", "zh_output": "你好"}
    p = _write(tmp_path / "p.jsonl", json.dumps(row, ensure_ascii=False) + "\n")
    (zh,) = read_examples(p, "alpaca", language="zho", prefix="zh_")
    assert zh.instruction.content == "嗨" and zh.response.content == "你好" and zh.response.language == "zh"


def test_sharegpt_and_openai_json_array(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]
    (ex,) = read_examples(_write(tmp_path / "s.json", json.dumps(rows)))
    assert ex.response.content == "a"
    rows = [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                          {"role": "assistant", "content": "a"}]}]
    (ex,) = read_examples(_write(tmp_path / "o.json", json.dumps(rows)))
    assert ex.instruction.content == "q" and len(ex.prompt_messages) == 2


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "parquet", "json"])
def test_roundtrip_crosstune_rows(tmp_path, suffix):
    exs = [Example(str(i), [Message("user", f"q{i}", "en"), Message("assistant", f"回答{i}", "zh")],
                   meta={"mode": "en2x"}) for i in range(3)]
    p = tmp_path / f"out.{suffix}"
    assert write_examples(p, exs) == 3
    back = list(read_examples(p))
    assert [b.to_dict() for b in back] == [e.to_dict() for e in exs]


def test_gzip_output_is_byte_stable(tmp_path):
    exs = [Example("1", [Message("user", "q", "en"), Message("assistant", "a", "en")])]
    write_examples(tmp_path / "a.jsonl.gz", exs)
    write_examples(tmp_path / "b.jsonl.gz", exs)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_hf_dataset_folder(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"instruction": "i", "input": "", "output": "o"}]).save_to_disk(tmp_path / "ds")
    (ex,) = read_examples(tmp_path / "ds")
    assert ex.response.content == "o"


@pytest.mark.parametrize("content,pattern", [
    ('{"instruction": "a", "output": "b"}\n{"instruction": "a", "output"\n', r"bad.jsonl:2: malformed JSON"),
    ('{"instruction": "a"}\n', r"bad.jsonl:1: .*cannot tell the row format"),
    ('{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n', r"bad.jsonl:2: missing field 'output'"),
    ('{"instruction": "a", "output": 3}\n', r"bad.jsonl:1 field 'output': expected a string"),
    ("", r"bad.jsonl: empty file"),
    ("[1, 2]\n", r"bad.jsonl:1: expected a JSON object"),
])
def test_bad_rows_name_file_and_line(tmp_path, content, pattern):
    p = _write(tmp_path / "bad.jsonl", content)
    with pytest.raises(CrosstuneError, match=pattern):
        list(read_examples(p))


def test_non_utf8_names_the_line(tmp_path):
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n')
    with pytest.raises(CrosstuneError, match=r"latin1.jsonl:2: not UTF-8"):
        list(read_examples(p))


def test_unknown_language_and_format(tmp_path):
    p = _write(tmp_path / "a.jsonl", '{"instruction": "a", "output": "b"}\n')
    with pytest.raises(CrosstuneError, match="unknown language 'xx'"):
        list(read_examples(p, language="xx"))
    with pytest.raises(CrosstuneError, match="unknown format"):
        list(read_examples(p, "csv"))
    with pytest.raises(CrosstuneError, match="unknown file type"):
        list(read_examples(tmp_path / "a.txt" if (tmp_path / "a.txt").write_text("x") else None))


def test_dumps_row_is_the_canonical_encoder_output():
    from crosstune.jsonl import _ROW_ENCODER, dumps_row

    rows = [{"id": "1", "x": [1, 2.5, None, True, {"a": "é\n\"\\"}], "nested": {"k": 1e300, "z": -0.0}},
            {"messages": [{"role": "user", "content": "中文\u2028\x01", "language": None}], "meta": {}}]
    for row in rows:
        assert dumps_row(row) == _ROW_ENCODER.encode(row) == json.dumps(row, ensure_ascii=False)
