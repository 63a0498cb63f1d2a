"""The CLI as a user sees it: real subprocesses, exit codes, one-line errors, no tracebacks."""

import json
import subprocess
import sys

import pytest

from crosstune import __version__
from tests.conftest import shared_path


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "crosstune", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"crosstune {__version__}"
    r = run("--help")
    assert r.returncode == 0 and "data" in r.stdout and "train" in r.stdout


def _assert_user_error(r, pattern):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert pattern in lines[0]


@pytest.mark.parametrize("args,pattern", [
    (("eval", "generate", "--prompts", "x.jsonl", "--limit", "-3", "--out", "o"),
     "crosstune eval generate: Invalid value for '--limit'"),
    (("eval", "run", "--bogus"), "crosstune eval run: No such option: --bogus"),
    (("train",), "crosstune train: Missing argument 'config'"),
    (("data", "build", "r.yaml"), "crosstune data build: Missing option '--out'"),
])
def test_click_usage_errors_are_one_error_line(tmp_path, args, pattern):
    """A bad option value, an unknown option or a missing argument: our one-line form, exit 2 (not click's block)."""
    r = run(*args, cwd=tmp_path)
    _assert_user_error(r, pattern)
    assert "--help" in r.stderr and r.stdout == ""


def test_a_group_alone_shows_its_help():
    r = run("data")
    assert "Usage: crosstune data" in r.stdout + r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("content,pattern", [
    ("{bad json\n", "bad.jsonl:1: malformed JSON"),
    ("", "bad.jsonl: empty file"),
])
def test_inspect_bad_files(tmp_path, content, pattern):
    (tmp_path / "bad.jsonl").write_text(content)
    _assert_user_error(run("data", "inspect", str(tmp_path / "bad.jsonl")), pattern)


def test_inspect_non_utf8(tmp_path):
    (tmp_path / "bad.jsonl").write_bytes(b'{"instruction": "caf\xe9", "output": "x"}\n')
    _assert_user_error(run("data", "inspect", str(tmp_path / "bad.jsonl")), "bad.jsonl:1: not UTF-8")


def test_models_prepare_rejects_non_gguf(tmp_path):
    (tmp_path / "m.gguf").write_text("hello")
    _assert_user_error(run("models", "prepare", str(tmp_path / "m.gguf")), "not a GGUF model file")


def test_inspect_small_file(tmp_path):
    rows = [{"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well and sleep."},
            {"instruction": "给出保持健康的三个建议。", "input": "", "output": "均衡饮食，确保多吃水果和蔬菜。"}] * 3
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    r = run("data", "inspect", str(p))
    assert r.returncode == 0, r.stderr
    assert "rows: 6" in r.stdout and "field instruction:" in r.stdout


@pytest.mark.integration
def test_inspect_real_alpaca_en_zh():
    p = shared_path("alpaca_chinese_parallel", "alpaca_en_zh_52k_v3.jsonl.gz")
    r = run("data", "inspect", str(p), "--sample", "300")
    assert r.returncode == 0, r.stderr
    assert "rows: 52002" in r.stdout
    assert "field en_instruction: en" in r.stdout and "field zh_output: zh" in r.stdout


def test_inspect_validates_instruction_rows(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n')
    _assert_user_error(run("data", "inspect", str(p)), "m.jsonl:2: missing field 'output'")
    p.write_text('{"id": "1", "messages": [{"role": "user", "content": "hi", "language": "xx"}], "meta": {}}\n')
    _assert_user_error(run("data", "inspect", str(p)), "m.jsonl:1 message 0 field 'language': unknown language 'xx'")


def test_inspect_nested_parallel_records(tmp_path):
    p = tmp_path / "mc.jsonl"
    row = {"id": "t1", "English": {"question": "Which planet is the largest in our solar system?"},
           "Chinese": {"question": "我们太阳系中最大的行星是哪一颗？"}}
    p.write_text(json.dumps(row, ensure_ascii=False) + "\n")
    r = run("data", "inspect", str(p))
    assert "field English.question: en" in r.stdout and "field Chinese.question: zh" in r.stdout
