"""`crosstune eval fidelity` and `crosstune eval judge` end to end: real generations from the llama.cpp server,
the same server as the judge for both protocols, exit status 2 with a named problem for bad input."""

import json

import pytest

from tests.conftest import run_main

PROMPTS = [{"id": "capital", "prompt": "¿Cuál es la capital de Francia?"}]


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def gen_row(i, lang, response, expected=None):
    return {"id": str(i), "sample": 0, "language": lang, "expected_language": expected or lang, "directive": "none",
            "prompt": "q", "response": response, "model": "m", "fingerprint": "f"}


def test_fidelity_cli_outputs_and_bad_input(tmp_path, capsys):
    rows = [gen_row(0, "es", "La capital de Francia es París, una ciudad con muchos museos y parques."),
            gen_row(1, "es", "The capital of France is Paris, a city with many museums and parks."),
            gen_row(2, "ru", "Столица Франции — Париж, очень красивый город с множеством музеев.")]
    f = write_rows(tmp_path / "run" / "generations.jsonl", rows)
    code, cap = run_main(["eval", "fidelity", str(f.parent), "--out", str(tmp_path / "fid"), "--n-boot", "50"], capsys)
    assert code == 0, cap.err
    assert "es  n    2  expected 0.500  LPR 0.500" in cap.out
    s = json.loads((tmp_path / "fid" / "summary.json").read_text(encoding="utf-8"))
    assert s["confusion"]["es"] == {"es": 1, "en": 1} and s["per_language"]["ru"]["lcpr"] == 1.0
    assert (tmp_path / "fid" / "confusion.png").stat().st_size > 5000
    junk = write_rows(tmp_path / "junk.jsonl", [{"question": "no response here"}])
    code, cap = run_main(["eval", "fidelity", str(junk), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "junk.jsonl:1: not a generation row" in cap.err and "Traceback" not in cap.err
    code, cap = run_main(["eval", "fidelity", str(f), "--out", str(tmp_path / "x"), "--lid", "nope"], capsys)
    assert code == 2 and "--lid 'nope'" in cap.err


def test_judge_cli_names_missing_rows(tmp_path, capsys):
    a = write_rows(tmp_path / "A" / "generations.jsonl", [gen_row(0, "es", "Hola"), gen_row(1, "es", "Hola")])
    b = write_rows(tmp_path / "B" / "generations.jsonl", [gen_row(0, "es", "Adiós")])
    code, cap = run_main(["eval", "judge", "--judge", "openai:x@http://127.0.0.1:9/v1", "--a", str(a.parent),
                          "--b", str(b.parent), "--protocol", "pinch", "--out", str(tmp_path / "j")], capsys)
    assert code == 2 and "but not in B: 1 rows: (id '1', es, sample 0)" in cap.err
    code, cap = run_main(["eval", "judge", "--judge", "openai:x@http://127.0.0.1:9/v1", "--a", str(a.parent),
                          "--b", str(a.parent), "--protocol", "mtbench", "--out", str(tmp_path / "j")], capsys)
    assert code == 2 and "--protocol 'mtbench'" in cap.err
    code, cap = run_main(["eval", "judge", "--judge", "openai:x@http://127.0.0.1:9/v1", "--a", str(a.parent),
                          "--b", str(a.parent), "--protocol", "pinch", "--out", str(tmp_path / "j"),
                          "--cache", str(tmp_path / "c.sqlite")], capsys)  # nothing listens on port 9
    assert code == 2 and "judge requests 1..4 of 4 did not all come back" in cap.err and "rerun the same command" in cap.err
    assert "Traceback" not in cap.err


@pytest.fixture(scope="module")
def generated(llama_server, tmp_path_factory):
    """Two real generation runs from the llama.cpp server: plain prompts (A) and with the directive (B)."""
    root = tmp_path_factory.mktemp("judge-e2e")
    prompts = write_rows(root / "prompts_es.jsonl", PROMPTS)
    runs = {}
    for name, directive in (("A", "none"), ("B", "answer_in")):
        from crosstune.cli import main

        try:
            main(["eval", "generate", "--model", llama_server.spec, "--prompts", f"es={prompts}", "--directive",
                  directive, "--max-new-tokens", "24", "--cache", str(root / "calls.sqlite"), "--out",
                  str(root / name)])
        except SystemExit as e:
            assert not e.code
        runs[name] = root / name
    return root, runs


@pytest.mark.parametrize("protocol", ["pinch", "xinstruct"])
def test_judge_end_to_end_with_the_real_server(llama_server, generated, protocol, capsys):
    root, runs = generated
    out = root / f"judge_{protocol}"
    args = ["eval", "judge", "--judge", llama_server.spec, "--a", str(runs["A"]), "--b", str(runs["B"]),
            "--protocol", protocol, "--out", str(out), "--cache", str(root / "calls.sqlite"), "--n-boot", "50",
            "--max-new-tokens", "24"]
    code, cap = run_main(args, capsys)
    assert code == 0, cap.err
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # 1 pair x 2 orders (identical requests, when A and B gave the same answer, are sent once); Spanish: gate on
    assert s["n_pairs"] == 1 and 1 <= s["calls"] <= 2 and s["gate"] is True and s["max_new_tokens"] == 24
    pf, pb = s["parse_failures"], s["position_bias"]
    assert pf["verdicts"] == 2 and pb["verdicts"] == 2 - pf["failed"]  # every verdict is parsed or counted
    assert "parse failures" in cap.out and "position bias" in cap.out
    items = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(set(it["orders"]) == {"ab", "ba"} and it["orders"]["ab"]["raw"] is not None for it in items)
    code, cap = run_main(args, capsys)  # a rerun answers from the cache
    assert code == 0 and json.loads((out / "summary.json").read_text(encoding="utf-8"))["calls"] == 0
