"""Judges: verdict parsing, order swapping, position bias, parse failures, language gate, joins, cache resume.

Unit-level protocol logic runs against a deterministic OpenAI-compatible judge served over real HTTP on 127.0.0.1
by this test (its rule is in the test, so expected scores follow from it); the real llama.cpp judge runs in
tests/cli/test_eval_fidelity_judge.py.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval import judge_protocols as jp
from crosstune.eval.judge import join_runs, run_judge

GOOD = {"es": "La capital de Francia es París, una ciudad con muchos museos y parques bonitos.",
        "ru": "Столица Франции — Париж, очень красивый город с множеством музеев и парков."}
BAD = {"es": "No lo sé, quizá sea una ciudad del norte, no estoy seguro de nada de esto.",
       "ru": "Я не знаю, может быть, это какой-то город на севере, я ни в чём не уверен."}
ENGLISH = "The capital of France is Paris, a city with many museums and beautiful parks."


class JudgeHandler(BaseHTTPRequestHandler):
    """rule(user_text) -> reply; counts the requests it answers."""

    rule = staticmethod(lambda text: "a")
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"]
        type(self).seen.append(text)
        reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": type(self).rule(text)},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_server():
    handler = type("H", (JudgeHandler,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"openai:judge@http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def write_run(path, answers: dict[tuple[str, str], str], samples: int = 1):
    """A generation run in the documented row format; answers[(id, lang)] = response."""
    path.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "sample": s, "language": lang, "expected_language": lang, "directive": "none",
             "prompt": f"[{lang}] ¿Cuál es la capital de Francia? ({i})", "response": text, "model": str(path.name),
             "fingerprint": "test"}
            for (i, lang), text in answers.items() for s in range(samples)]
    (path / "generations.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")
    return path


def _first_answer(text: str) -> str:
    return text.split("### Response (a):\n")[1].split("### Response (b):")[0]


def _answers(text: str) -> tuple[str, str]:
    return text.split("<answer1>\n")[1].split("\n</answer1>")[0], text.split("<answer2>\n")[1].split("\n</answer2>")[0]


@pytest.fixture
def runs(tmp_path):
    ids = [f"q{k}" for k in range(4)]
    a = write_run(tmp_path / "A", {(i, lang): GOOD[lang] for i in ids for lang in ("es", "ru")})
    b = write_run(tmp_path / "B", {(i, lang): BAD[lang] for i in ids for lang in ("es", "ru")})
    return a, b


def test_pinch_consistent_judge_wins_and_rerun_makes_no_calls(judge_server, runs, tmp_path):
    handler, spec = judge_server
    handler.rule = staticmethod(lambda t: "a" if any(w in _first_answer(t) for w in ("París", "Париж")) else "b")
    a, b = runs
    cache = tmp_path / "calls.sqlite"
    s = run_judge(spec, str(a), [str(b)], "pinch", tmp_path / "out", cache_path=cache, n_boot=200)
    assert s["calls"] == 16 and len(handler.seen) == 16  # 8 pairs x 2 orders
    assert s["overall"]["ungated"]["score"] == 100.0 and s["overall"]["ungated"]["win"] == 8
    assert s["position_bias"]["flip_rate"] == 0.0 and s["position_bias"]["first_share"] == 0.5
    assert set(s["per_language"]) == {"es", "ru"} and s["per_language"]["es"]["ungated"]["score_95"] == [100, 100]
    items = [json.loads(x) for x in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    assert {tuple(it["orders"]) for it in items} == {("ab", "ba")} and items[0]["orders"]["ab"]["raw"] == "a"
    again = run_judge(spec, str(a), [str(b)], "pinch", tmp_path / "out2", cache_path=cache, n_boot=200)
    assert again["calls"] == 0 and again["cache_hits"] == 16 and len(handler.seen) == 16
    assert (tmp_path / "out2" / "summary.json").exists()


def test_pinch_position_biased_judge_gives_ties_and_shows_its_bias(judge_server, runs, tmp_path):
    handler, spec = judge_server
    handler.rule = staticmethod(lambda t: "(a)")  # always the first shown answer
    a, b = runs
    s = run_judge(spec, str(a), [str(b)], "pinch", tmp_path / "out", cache_path=tmp_path / "c.sqlite", n_boot=200)
    u, pb = s["overall"]["ungated"], s["position_bias"]
    assert (u["score"], u["tie"]) == (50.0, 8)
    assert (pb["flip_rate"], pb["first_share"], pb["favours"]) == (1.0, 1.0, "first")
    assert pb["p_value"] == pytest.approx(2 / 2 ** 16, rel=1e-2)  # 16 of 16 verdicts for the first position


def test_binomial_p():
    from crosstune.eval.judge import binomial_p

    assert binomial_p(5, 10) == 1.0 and binomial_p(0, 0) is None
    assert binomial_p(9, 10) == pytest.approx(22 / 1024) and binomial_p(1, 10) == pytest.approx(22 / 1024)


def test_xinstruct_scores_are_averaged_over_orders(judge_server, runs, tmp_path):
    handler, spec = judge_server

    def rule(text):
        one, two = _answers(text)
        good = lambda x: ("París" in x or "Париж" in x)  # noqa: E731
        # 8 for the good answer, 3 for the bad one, plus a bonus of 1 for whoever is shown first
        return f"<score1>{(8 if good(one) else 3) + 1}</score1> <score2>{8 if good(two) else 3}</score2>"

    handler.rule = staticmethod(rule)
    a, b = runs
    s = run_judge(spec, str(a), [str(b)], "xinstruct", tmp_path / "out", cache_path=tmp_path / "c.sqlite",
                  n_boot=200)
    u = s["overall"]["ungated"]
    assert (u["mean_a"], u["mean_b"]) == (8.5, 3.5) and u["score"] == 100.0
    assert s["position_bias"]["flip_rate"] == 0.0 and s["parse_failures"]["failed"] == 0
    assert any("answer in Spanish language" in t for t in handler.seen)  # the X-Instruction prompt
    assert any("answer in Russian language" in t for t in handler.seen) and "<question>" in handler.seen[0]


def test_off_format_verdicts_are_counted_never_guessed(judge_server, runs, tmp_path):
    handler, spec = judge_server
    # off-format whenever B is shown first: "ab" parses (7 vs 7), "ba" never does
    handler.rule = staticmethod(lambda t: "<score1>7</score1><score2>7</score2>" if "no lo sé" not in
                                _answers(t)[0].lower() and "не знаю" not in _answers(t)[0]
                                else "Both answers are fine. Score: 7/10")
    a, b = runs
    s = run_judge(spec, str(a), [str(b)], "xinstruct", tmp_path / "out", cache_path=tmp_path / "c.sqlite",
                  n_boot=200, gate_mode="off")
    pf = s["parse_failures"]
    assert pf["failed"] == 8 and pf["per_order"] == {"ab": 0, "ba": 8} and pf["pairs_excluded"] == 8
    assert s["overall"]["ungated"]["n"] == 0 and s["overall"]["ungated"]["score"] is None
    assert "no <score1>...</score1>" in pf["reasons"] and pf["examples"][0]["raw"].startswith("Both answers")


def test_language_gate_makes_a_wrong_language_answer_lose(judge_server, tmp_path):
    handler, spec = judge_server
    handler.rule = staticmethod(lambda t: "a" if "Paris" in _first_answer(t) else "b")  # the judge likes English
    a = write_run(tmp_path / "A", {(f"q{k}", "es"): GOOD["es"] for k in range(3)})
    b = write_run(tmp_path / "B", {(f"q{k}", "es"): ENGLISH for k in range(3)})
    s = run_judge(spec, str(a), [str(b)], "pinch", tmp_path / "out", cache_path=tmp_path / "c.sqlite", n_boot=200)
    o = s["overall"]
    assert s["gate"] is True and o["ungated"]["score"] == 0.0 and o["gated"]["score"] == 100.0
    assert o["score"] == 100.0 and o["b_wrong_language"] == 3 and o["a_wrong_language"] == 0
    off = run_judge(spec, str(a), [str(b)], "pinch", tmp_path / "off", cache_path=tmp_path / "c.sqlite",
                    n_boot=200, gate_mode="off")
    assert off["gate"] is False and off["overall"]["score"] == 0.0 and off["calls"] == 0


def test_join_errors_name_missing_rows_and_per_language_references(tmp_path):
    a = write_run(tmp_path / "A", {("q1", "es"): GOOD["es"], ("q2", "es"): GOOD["es"], ("q1", "ru"): GOOD["ru"]})
    b = write_run(tmp_path / "B", {("q1", "es"): BAD["es"], ("q3", "es"): BAD["es"], ("q1", "ru"): BAD["ru"]})
    with pytest.raises(CrosstuneError, match=r"in A .* but not in B: 1 rows: \(id 'q2', es, sample 0\).*"
                                             r"in B .* but not in A: 1 rows: \(id 'q3', es"):
        join_runs(str(a), [str(b)])
    b_es = write_run(tmp_path / "Bes", {("q1", "es"): BAD["es"], ("q2", "es"): BAD["es"]})
    b_ru = write_run(tmp_path / "Bru", {("q1", "ru"): BAD["ru"], ("q9", "es"): BAD["es"]})
    pairs = join_runs(str(a), [f"es={b_es}", f"ru={b_ru}"])  # a reference model per language (IF_L)
    assert [(x["id"], x["language"], y["model"]) for x, y in pairs] == [("q1", "es", "Bes"), ("q1", "ru", "Bru"),
                                                                        ("q2", "es", "Bes")]
    assert [(x["id"], x["language"]) for x, _ in join_runs(str(a), [f"es={b_es}", f"ru={b_ru}"], limit=1)] == [
        ("q1", "es"), ("q1", "ru")]
    (tmp_path / "junk.jsonl").write_text('{"text": "not a generation row"}\n')
    with pytest.raises(CrosstuneError, match="junk.jsonl:1"):
        join_runs(str(tmp_path / "junk.jsonl"), [str(b)])


def test_prompt_files(tmp_path):
    p = jp.load_prompt("pinch")
    msgs = p.render("Spanish", "Q {x}", "first {y}", "second")
    assert msgs[0]["role"] == "system" and "Q {x}" in msgs[1]["content"] and "first {y}" in msgs[1]["content"]
    x = jp.load_prompt("xinstruct")
    assert x.user.startswith("Given the question and the answer in {lang} language.")
    assert x.system.startswith("We would like to request your feedback")
    bad = tmp_path / "bad.txt"
    bad.write_text("Compare {output1} and {output2}.")
    with pytest.raises(CrosstuneError, match=r"bad.txt: the judge prompt has no \{instruction\}"):
        jp.load_prompt("pinch", bad)
    mine = tmp_path / "mine.txt"
    mine.write_text("Q: {instruction}\n1: {output1}\n2: {output2}\nPick a or b.")
    assert jp.load_prompt("pinch", mine).render("en", "q", "x", "y") == [
        {"role": "user", "content": "Q: q\n1: x\n2: y\nPick a or b."}]


@pytest.mark.parametrize("text,expected", [
    ("a", "first"), ("(B)", "second"), ("[[A]]", "first"), ("Response (a) is better.", "first"),
    ("Answer: b", "second"), ("b. Because it is in Spanish", "second"), ("Response B", "second")])
def test_parse_choice(text, expected):
    assert jp.parse_choice(text)[0] == {"pick": expected}


@pytest.mark.parametrize("text", ["", "Both (a) and (b) are good", "Response (a) ... Response (b)",
                                  "I will answer a question", "apple",
                                  # ambiguous: both letters offered (each used to count as a vote for the first)
                                  "a or b", "(a) or (b)", "A/B", "[[A]] and [[B]]", "a, b", "Neither."])
def test_parse_choice_failures(text):
    parsed, reason = jp.parse_choice(text)
    assert parsed is None and reason


def test_judge_prompts_use_the_released_language_names():
    """X-Instruction's released prompt says "Bengali" where CLDR (crosstune.languages) says "Bangla"."""
    from crosstune.languages import language_name

    x = jp.load_prompt("xinstruct")
    user = x.render(language_name("bn"), "q", "x", "y")[-1]["content"]
    assert user.startswith("Given the question and the answer in Bengali language.") and "Bangla" not in user
    assert x.render("Swahili", "q", "x", "y")[-1]["content"].startswith("Given the question and the answer in Swahili")


@pytest.mark.parametrize("text,expected", [
    ("<score1>7</score1><score2>4</score2>", (7, 4)), ("<score1> 10 </score1>\n<score2>0</score2>", (10, 0)),
    ("<score1>11</score1><score2>4</score2>", None), ("<score1>7.5</score1><score2>4</score2>", None),
    ("<score1>7</score1>", None), ("score1: 7, score2: 4", None), ("<score1>-1</score1><score2>4</score2>", None)])
def test_parse_scores(text, expected):
    parsed, reason = jp.parse_scores(text)
    assert (None if parsed is None else (parsed["first"], parsed["second"])) == expected
    assert (reason is None) == (expected is not None)


def test_pair_outcome_logic():
    assert jp.pair_outcome("pinch", {"ab": {"pick": "first"}, "ba": {"pick": "second"}})["outcome"] == "win"
    assert jp.pair_outcome("pinch", {"ab": {"pick": "second"}, "ba": {"pick": "first"}})["outcome"] == "loss"
    flip = jp.pair_outcome("pinch", {"ab": {"pick": "first"}, "ba": {"pick": "first"}})
    assert flip["outcome"] == "tie" and flip["flip"]
    x = jp.pair_outcome("xinstruct", {"ab": {"first": 6, "second": 4}, "ba": {"first": 7, "second": 5}})
    assert (x["score_a"], x["score_b"], x["outcome"], x["flip"]) == (5.5, 5.5, "tie", True)
