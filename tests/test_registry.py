"""Components by name (`crosstune.registry`): built-in short names keep working; `package.module:Object` imports a
user's own recipe, filter, backend, translation engine, answer extractor, judge protocol or optimizer from a module
written in the test (in tmp_path, on sys.path / PYTHONPATH); a bad path or a wrong kind is one `error:` line
naming the file and field, exit status 2."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest
import yaml

from crosstune.errors import CrosstuneError
from crosstune.registry import ComponentError, Registry, import_object, is_component_path
from tests.conftest import REPO, run_main

USER_MODULE = '''
"""A user's own components, written outside crosstune."""
import dataclasses

from crosstune.data.blocks import Filter
from crosstune.data.recipes import RECIPES
from crosstune.eval import judge_protocols as jp
from crosstune.models.backends.base import LoglikResult

NOT_A_FILTER = 42


class MentionsFilter(Filter):
    """Drops a row whose assistant message mentions any of `words` (case-insensitive)."""

    def __init__(self, words):
        super().__init__()
        self.words = [w.lower() for w in words]

    def check(self, row):
        text = row.example.response.content.lower()
        hit = next((w for w in self.words if w in text), None)
        return None if hit is None else ("mentions_word", hit)


def short_user(example, min_words=0):
    """A function filter: a reason string drops the row."""
    n = len(example.instruction.content.split())
    return None if n >= min_words else "short_instruction"


MONO = dataclasses.replace(RECIPES["monolingual"], name="my_monolingual")


class EchoBackend:
    """Generates the prompt back; log-likelihood is minus the continuation's length."""

    def __init__(self, prefix="echo: ", batch_size=1):
        self.prefix, self.name, self.fingerprint = prefix, "echo", "echo-v1"

    def generate(self, requests):
        return [self.prefix + (r.prompt if isinstance(r.prompt, str) else r.prompt[-1]["content"]) for r in requests]

    def loglikelihood(self, requests):
        return [LoglikResult(-float(len(r.continuation)), False) for r in requests]


def not_a_backend(**kw):
    return "a string"


def last_letter(choices, prediction, rng):
    """An extractor: the choice whose letter is the last capital A-D in the output."""
    letters = [c for c in prediction if c in "ABCD"][-1:]
    idx = "ABCD".index(letters[0]) if letters else 0
    return choices[idx], "last_letter"


def parse_verdict(text):
    a, _, b = text.partition(",")
    return {"first": int(a), "second": int(b)}, None


PROTOCOL = jp.Protocol("pairs", parse_verdict, 8)


class CountSuite:
    """An experiment suite kind: counts the model name's characters (no model is loaded)."""

    def __init__(self, bonus=0):
        if bonus < 0:
            raise ValueError("bonus must be >= 0")
        self.bonus = bonus

    def inputs(self):
        return {"bonus": self.bonus}

    def run(self, model, out_dir, seed):
        (out_dir / "seen.txt").write_text(model)
        return {"metrics": {"chars": len(model) + self.bonus, "seed": seed}, "note": "counted"}


class UpperEngine:
    """A translation engine that upper-cases text (any pair)."""

    kind, limit, cached = "upper", 1000, False

    def __init__(self, cfg, cache=None):
        self.model = cfg.model or "upper"
        self.suffix = cfg.options.get("suffix", "")

    def fingerprint(self):
        return "upper-v1"

    def settings(self):
        return {"suffix": self.suffix}

    def check_pair(self, source, target):
        pass

    def supports(self, source, target):
        return True

    def measure(self, text):
        return len(text)

    def translate_iter(self, texts, source, target):
        for i, t in enumerate(texts):
            yield i, t.upper() + self.suffix
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch) -> str:
    """`user_components` importable in this process (sys.path) and in children (PYTHONPATH)."""
    mod_dir = tmp_path / "userpkg"
    mod_dir.mkdir()
    (mod_dir / "user_components.py").write_text(USER_MODULE, encoding="utf-8")
    (mod_dir / "broken_components.py").write_text("raise RuntimeError('boom at import')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(mod_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(mod_dir), os.environ.get("PYTHONPATH", "")]))
    yield str(mod_dir)
    for name in ("user_components", "broken_components"):
        sys.modules.pop(name, None)


def _demo() -> str:
    return str(resources.files("crosstune") / "demo" / "instructions.jsonl")


def _recipe(tmp_path: Path, name: str = "monolingual", custom: list | None = None) -> Path:
    cfg = {"name": name, "seed": 0,
           "sources": [{"language": "en", "path": _demo(), "format": "alpaca", "prefix": "en_", "id_field": "id"}],
           "recipe": {"language": "en", "total": 40},
           "filters": {"langid": None, "custom": custom or []}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---- the registry itself ----------------------------------------------------------------------------------------
def test_paths_builtins_and_errors(user_module):
    assert is_component_path("user_components:MentionsFilter") and is_component_path("a.b:C.d")
    assert not is_component_path("openai:model@http://x") and not is_component_path("monolingual")
    reg = Registry("widget", {"plain": 1}, lambda o: isinstance(o, int), "an int")
    assert reg.get("plain") == 1
    assert reg.get("user_components:NOT_A_FILTER", "w.yaml: field 'x'") == 42
    cases = {
        "nope": "w.yaml: field 'x': unknown widget 'nope'; expected one of plain, or package.module:Object",
        "no_such_mod_xyz:Thing": "cannot import module 'no_such_mod_xyz'",
        "user_components:Missing": "'user_components' has no attribute 'Missing'",
        "broken_components:X": "importing 'broken_components' failed: RuntimeError: boom at import",
        "user_components:short_user": "is the function 'short_user', not a widget: expected an int",
    }
    for name, msg in cases.items():
        with pytest.raises(ComponentError, match="^w.yaml: field 'x': ") as e:
            reg.get(name, "w.yaml: field 'x'")
        assert msg in str(e.value) and "\n" not in str(e.value)
    assert isinstance(ComponentError("x"), (CrosstuneError, ValueError))
    with pytest.raises(ComponentError, match="not a component path"):
        import_object("no colon")


# ---- filters: the must-show, through the real CLI in a child process ---------------------------------------------
def test_user_filter_class_runs_in_data_build(tmp_path, user_module):
    recipe = _recipe(tmp_path, custom=[
        {"component": "user_components:MentionsFilter", "params": {"words": ["paris", "tokyo"]}},
        {"component": "user_components:short_user", "params": {"min_words": 4}, "name": "short"}])
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "crosstune", "data", "build", str(recipe), "--out", str(out),
                           "--workers", "1"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows, excluded = _lines(out / "train.jsonl"), _lines(out / "exclusions.jsonl")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    mentions = [e for e in excluded if e["block"] == "MentionsFilter"]
    short = [e for e in excluded if e["block"] == "short"]
    assert mentions and short  # both user filters dropped rows, and every drop is recorded with its reason
    assert {e["reason"] for e in mentions} == {"mentions_word"}
    assert {e["detail"] for e in mentions} <= {"paris", "tokyo"}
    assert {e["reason"] for e in short} == {"short_instruction"}
    for r in rows:  # no kept row breaks either rule
        assert not any(w in r["messages"][-1]["content"].lower() for w in ("paris", "tokyo"))
        assert len(r["messages"][0]["content"].split()) >= 4
    assert manifest["filters"]["MentionsFilter"]["dropped:mentions_word"] == len(mentions)
    assert manifest["filters"]["short"]["dropped:short_instruction"] == len(short)
    assert manifest["exclusions"]["rows"] == len(excluded)
    assert len(rows) == 40  # a fixed-budget recipe refills what the user's filters dropped


def test_bad_filter_paths_are_one_error_line(tmp_path, user_module, capsys):
    for component, msg in [("no_such_mod_xyz:F", "cannot import module 'no_such_mod_xyz'"),
                           ("user_components:NOT_A_FILTER", "is an int object, not a filter")]:
        recipe = _recipe(tmp_path, custom=[{"component": component}])
        code, cap = run_main(["data", "build", str(recipe), "--out", str(tmp_path / "o")], capsys)
        assert code == 2 and re.match(rf"error: {re.escape(str(recipe))}(:\d+)?: field 'filters.custom.0.component': ",
                                      cap.err)
        assert msg in cap.err and "Traceback" not in cap.err and len(cap.err.strip().splitlines()) == 1
    recipe = _recipe(tmp_path, custom=[{"component": "user_components:MentionsFilter", "params": {"wrods": []}}])
    code, cap = run_main(["data", "build", str(recipe), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "field 'filters.custom.0'" in cap.err and "'wrods'" in cap.err


# ---- recipes ------------------------------------------------------------------------------------------------------
def test_user_recipe_by_path(tmp_path, user_module, capsys):
    from crosstune.data.build import build

    res = build(_recipe(tmp_path, name="user_components:MONO"), tmp_path / "out")
    assert res.manifest["recipe"] == "user_components:MONO" and res.manifest["counts"]["rows"] == 40
    code, cap = run_main(["data", "build", str(_recipe(tmp_path, name="user_components:EchoBackend")),
                          "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"{tmp_path / 'recipe.yaml'}: field 'name': " in cap.err and "not a recipe" in cap.err


# ---- backends, extractors, judge protocols -------------------------------------------------------------------------
def test_user_backend(user_module):
    from crosstune.models.backends import GenerateRequest, LoglikRequest, build_backend, parse_spec

    assert parse_spec("openai:m@http://h/v1")["kind"] == "openai"
    assert parse_spec("default") == {"kind": "hf", "model": "default"}
    b = build_backend({"kind": "user_components:EchoBackend", "prefix": "> "}, dtype="float32", batch_size=4)
    assert b.generate([GenerateRequest("hi")]) == ["> hi"]
    assert build_backend("user_components:EchoBackend").loglikelihood([LoglikRequest("a", "bcd")])[0].logprob == -3.0
    with pytest.raises(CrosstuneError, match="backend kind 'user_components:not_a_backend': .* returned a str"):
        build_backend("user_components:not_a_backend")


def test_user_extractor_and_task_field(tmp_path, user_module, capsys):
    from crosstune.eval.extract import get_extractor
    from crosstune.eval.tasks import load_task

    align = get_extractor("user_components:last_letter")
    assert align(["(A) x", "(B) y"], "not A but B", random.Random(0)) == ("(B) y", "last_letter")
    task = REPO / "src" / "crosstune" / "demo" / "demo_mc.yaml"
    assert load_task(str(task), ["extract=user_components:last_letter"]).extract == "user_components:last_letter"
    with pytest.raises(CrosstuneError, match=r"field 'extract': unknown answer extractor 'nope'"):
        load_task(str(task), ["extract=nope"])
    from crosstune.eval.scorers import GenerateScorer
    from crosstune.eval.tasks import Item

    cfg = load_task(str(task), ["extract=user_components:last_letter"])
    scorer = GenerateScorer(cfg)  # the task's extractor; --extractor (the argument) would override it
    item = Item("q1", "en", "Which?", ("(A) x", "(B) y", "(C) z"), "(C) z", 2)
    assert scorer.score(item, ["A? no: C"])["pred_index"] == 2 and scorer.settings()["extractor"] == cfg.extract
    with pytest.raises(CrosstuneError, match="^extractor: unknown answer extractor 'nope'"):
        GenerateScorer(cfg, "nope")
    code, cap = run_main(["eval", "consistency", "--model", "x", "--extractor", "user_components:MONO",
                          "--out", str(tmp_path / "c")], capsys)
    assert code == 2 and cap.err.startswith("error: --extractor: 'user_components:MONO' is a Recipe object")


def test_user_judge_protocol(tmp_path, user_module):
    from crosstune.eval import judge_protocols as jp

    proto = jp.get_protocol("user_components:PROTOCOL")
    assert proto.parse("7,3") == ({"first": 7, "second": 3}, None)
    verdicts = {"ab": {"first": 7, "second": 3}, "ba": {"first": 2, "second": 8}}
    assert jp.pair_outcome(proto.name, verdicts)["outcome"] == "win"
    with pytest.raises(CrosstuneError, match="--protocol 'user_components:last_letter': .*not a judge protocol"):
        jp.get_protocol("user_components:last_letter")
    with pytest.raises(CrosstuneError, match="has no packaged prompt; pass --prompt FILE"):
        jp.load_prompt("user_components:PROTOCOL")
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Q: {instruction}\n1: {output1}\n2: {output2}\nScores as a,b:", encoding="utf-8")
    rendered = jp.load_prompt("user_components:PROTOCOL", prompt).render("en", "q", "x", "y")
    assert rendered[0]["content"].startswith("Q: q")


# ---- translation engines --------------------------------------------------------------------------------------------
def test_user_translation_engine(tmp_path, user_module, capsys):
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps({"instruction": f"say hello {i}", "input": "", "output": f"hello {i}"}) + "\n"
                           for i in range(3)), encoding="utf-8")
    cfg = tmp_path / "translate.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        source: {{path: {src}, format: alpaca}}
        languages: [pt]
        engine: {{kind: "user_components:UpperEngine", options: {{suffix: "!"}}}}
        signals: {{min_langid_confidence: 1.0}}
        cache: {tmp_path / 'calls.sqlite'}
        """), encoding="utf-8")
    code, cap = run_main(["data", "translate", str(cfg), "--out", str(tmp_path / "t")], capsys)
    assert code == 0, cap.err
    rows = _lines(tmp_path / "t" / "parallel.jsonl")
    assert rows and rows[0]["pt"]["instruction"].endswith("!") and "SAY HELLO" in rows[0]["pt"]["instruction"]
    code, cap = run_main(["data", "translate", str(cfg), "--out", str(tmp_path / "t2"),
                          "engine.kind=user_components:NOT_A_FILTER"], capsys)
    assert code == 2 and "field 'engine.kind'" in cap.err and "not a translation engine" in cap.err
    code, cap = run_main(["data", "translate", str(cfg), "--out", str(tmp_path / "t3"),
                          "engine.kind=user_components:last_letter"], capsys)  # a function of other arguments
    assert code == 2 and "engine.kind 'user_components:last_letter': expected an engine class" in cap.err


# ---- experiment suite kinds -----------------------------------------------------------------------------------------
def test_user_suite_kind_in_an_experiment(tmp_path, user_module, capsys):
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: mine\nmodel: some-model\neval:\n"
                   "  count: {kind: user_components:CountSuite, settings: {bonus: 2}}\n", encoding="utf-8")
    code, cap = run_main(["run", str(exp), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, cap.err
    rows = _lines(tmp_path / "o" / "results.jsonl")
    assert [(r["arm"], r["count.chars"], r["count.seed"]) for r in rows] == [("untuned", 12.0, 0.0)]
    assert "count.chars" in (tmp_path / "o" / "results.csv").read_text(encoding="utf-8").splitlines()[0]
    for kind, msg in [("user_components:CountSuite, settings: {bonus: -1}", "eval.count.settings: "),
                      ("user_components:NOT_A_FILTER", "not a suite kind"),
                      ("consistensy", "unknown suite kind 'consistensy'; expected one of consistency, generation")]:
        exp.write_text(f"name: mine\neval:\n  count: {{kind: {kind}}}\n", encoding="utf-8")
        code, cap = run_main(["run", str(exp), "--out", str(tmp_path / "o2")], capsys)
        assert code == 2 and msg in cap.err and len(cap.err.strip().splitlines()) == 1, cap.err


# ---- the optimizer ------------------------------------------------------------------------------------------------
def test_user_optimizer(tmp_path):
    import torch

    from crosstune.config import validate
    from crosstune.train.config import OptimSection
    from crosstune.train.optim import build_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    default, _ = build_optimizer(model, OptimSection(), 10)
    assert type(default) is torch.optim.AdamW
    cfg = validate(OptimSection, {"optimizer": "torch.optim:SGD", "optimizer_args": {"momentum": 0.5}}, "t.yaml")
    sgd, sched = build_optimizer(model, cfg, 10)
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["momentum"] == 0.5
    assert [g["weight_decay"] for g in sgd.param_groups] == [0.01, 0.0]
    with pytest.raises(CrosstuneError, match=r"^t.yaml: field 'optimizer': unknown optimizer 'sgd'"):
        validate(OptimSection, {"optimizer": "sgd"}, "t.yaml")
    with pytest.raises(CrosstuneError, match=r"^t.yaml: field '\(top level\)': optimizer_args \['nope'\] do not fit"):
        validate(OptimSection, {"optimizer": "torch.optim:SGD", "optimizer_args": {"nope": 1}}, "t.yaml")


def test_cached_backend_is_the_one_builder(tmp_path, user_module):
    """`cached_backend` puts any spec behind the one call cache: a rerun is answered from the cache."""
    from crosstune.models.backends import GenerateRequest, cached_backend
    from crosstune.models.cache import CallCache

    store = CallCache(tmp_path / "calls.sqlite")  # empty (falsy), and still the one used
    a = cached_backend("user_components:EchoBackend", store, prefix="> ")
    assert a.generate([GenerateRequest("hi")]) == ["> hi"] and (a.calls, a.hits) == (1, 0)
    b = cached_backend("user_components:EchoBackend", tmp_path / "calls.sqlite",
                       fingerprint=lambda raw: raw.fingerprint)
    assert b.generate([GenerateRequest("hi")]) == ["> hi"] and (b.calls, b.hits) == (0, 1)
