"""The runner on a tiny model: predictions go to a JSONL as the run goes, a killed run resumes without redoing
finished items, and the same settings give the same bytes."""

import json

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval.runner import run_task
from crosstune.eval.scorers import GenerateScorer, LoglikScorer
from crosstune.eval.tasks import load_items, load_task
from crosstune.models.backends import build_backend
from crosstune.report.evaluation import write_eval_report


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    rows = []
    for i in range(5):
        ch = [f"({x}) {x.lower() * (i + 1)}" for x in "ABCD"]
        rows.append({"id": f"t{i}", "English": {"question": f"pick {i}", "choices": ch, "answer": ch[i % 4]},
                     "Chinese": {"question": f"选 {i}", "choices": ch, "answer": ch[i % 4]},
                     "Spanish": {"question": f"elige {i}", "choices": ch, "answer": ch[i % 4]}})
    data = d / "toy.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = load_task("cross_mmlu", [f"data_files={data}", "name=toy", "languages={en: English, zh: Chinese, es: Spanish}"])
    return cfg, load_items(cfg)


class CountingBackend:
    """Wraps a backend and counts the requests it is asked to serve."""

    def __init__(self, inner):
        self.inner, self.n = inner, 0

    def __getattr__(self, attr):  # tokenizer, model, fingerprint of the wrapped backend
        return getattr(self.inner, attr)

    def loglikelihood(self, reqs):
        self.n += len(reqs)
        return self.inner.loglikelihood(reqs)

    def generate(self, reqs):
        self.n += len(reqs)
        return self.inner.generate(reqs)


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return build_backend(str(tiny_model_dir), batch_size=4)


def test_loglik_run_resumes_and_repeats(toy_task, backend, tmp_path):
    cfg, items = toy_task
    first = run_task(backend, cfg, LoglikScorer(cfg), items, tmp_path / "a", "tiny", "crossin_p1", chunk_size=4, n_boot=50)
    pred = tmp_path / "a" / "toy" / "loglik" / "predictions.jsonl"
    lines = pred.read_text().splitlines()
    assert len(lines) == 15 and first["n_items"] == 5
    pred.write_text("\n".join(lines[:9]) + "\n")  # a run killed after 9 of 15 prompts
    counting = CountingBackend(backend)
    again = run_task(counting, cfg, LoglikScorer(cfg), items, tmp_path / "a", "tiny", "crossin_p1", chunk_size=4, n_boot=50)
    assert counting.n == 6 * 4  # only the 6 missing prompts, 4 options each
    assert again == first
    # a fresh run with the same settings writes the same bytes, and so does its report
    run_task(backend, cfg, LoglikScorer(cfg), items, tmp_path / "b", "tiny", "crossin_p1", chunk_size=4, n_boot=50)
    for run in ("a", "b"):
        write_eval_report(tmp_path / run, "toy", by_mode=True)
    for name in ("summary.json", "predictions.jsonl", "table.md"):
        assert (tmp_path / "a/toy/loglik" / name).read_bytes() == (tmp_path / "b/toy/loglik" / name).read_bytes()
    assert (tmp_path / "a/toy/loglik/position_bias.png").stat().st_size > 0


def test_generate_run_records_extraction(toy_task, backend, tmp_path):
    cfg, items = toy_task
    scorer = GenerateScorer(cfg, max_new_tokens=4)
    s = run_task(backend, cfg, scorer, items[:2], tmp_path, "tiny", "crossin_p1", n_boot=20)
    rows = [json.loads(x) for x in (tmp_path / "toy/generate/predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["extraction"] and "output" in r for r in rows)
    assert sum(s["extraction_paths"].values()) == 6
    with pytest.raises(CrosstuneError, match="other settings"):  # a changed setting cannot mix into old results
        run_task(backend, cfg, GenerateScorer(cfg, max_new_tokens=5), items[:2], tmp_path, "tiny", "crossin_p1")


def test_half_written_last_line_is_dropped_on_resume(toy_task, backend, tmp_path):
    cfg, items = toy_task
    first = run_task(backend, cfg, LoglikScorer(cfg), items, tmp_path, "tiny", "crossin_p1", n_boot=20)
    pred = tmp_path / "toy" / "loglik" / "predictions.jsonl"
    lines = pred.read_text().splitlines()
    pred.write_text("\n".join(lines[:7]) + "\n" + lines[7][:25])  # killed in the middle of writing row 8
    counting = CountingBackend(backend)
    again = run_task(counting, cfg, LoglikScorer(cfg), items, tmp_path, "tiny", "crossin_p1", n_boot=20)
    assert counting.n == 8 * 4 and again == first
    bad = pred.read_text().splitlines()
    pred.write_text("\n".join(bad[:3] + ["{broken"] + bad[3:]) + "\n")  # damage in the middle is an error
    with pytest.raises(CrosstuneError, match=r"predictions.jsonl:4: malformed prediction row"):
        run_task(backend, cfg, LoglikScorer(cfg), items, tmp_path, "tiny", "crossin_p1", n_boot=20)


def test_run_identity_is_recorded_and_a_changed_template_is_refused(toy_task, backend, tmp_path):
    cfg, items = toy_task
    run_task(backend, cfg, LoglikScorer(cfg), items[:2], tmp_path, "tiny", "crossin_p1", n_boot=20)
    meta = json.loads((tmp_path / "toy/loglik/run.json").read_text())
    ident = meta["identity"]
    assert ident["model_fingerprint"].startswith("sha256:") and ident["dtype"] == "float32"
    assert ident["template"] == "raw" and ident["task_config"].startswith("sha256:")
    assert list(ident["data_files"]) == ["toy.jsonl"]
    with pytest.raises(CrosstuneError, match=r"changed: identity.template: 'raw' -> 'chat', scorer.template"):
        run_task(backend, cfg, LoglikScorer(cfg, "chat"), items[:2], tmp_path, "tiny", "crossin_p1")


def test_training_template_reaches_the_model(toy_task, backend, tmp_path):
    from crosstune.models.render import render_prompt

    cfg, items = toy_task
    scorer = LoglikScorer(cfg, "chat").bind(backend)
    req = scorer.requests(items[0]["en"])[0]  # token ids from the one renderer (models/render.py)
    text = backend.tok.decode(list(req.context))
    assert text == render_prompt([{"role": "user", "content": items[0]["en"].prompt}], "chat", backend.tok)
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")
    raw = LoglikScorer(cfg).bind(backend).requests(items[0]["en"])[0]
    assert backend.tok.decode(list(raw.context)) == items[0]["en"].prompt.rstrip()  # lm-eval: trailing space moves


@pytest.mark.integration
def test_real_cross_mmlu_summary_equals_seaeval_string_metrics(backend, tmp_path):
    """Regression on real data: the runner's index-based summary equals SeaEval's label-prefix formulas."""
    from crosstune.eval.metrics import summarize
    from tests.conftest import shared_path

    shared_path("seaeval_cross_mmlu")
    cfg = load_task("cross_mmlu")
    items = load_items(cfg, ["en", "zh", "es", "vi"], limit=6)
    s = run_task(backend, cfg, LoglikScorer(cfg), items, tmp_path, "tiny", "crossin_p1", n_boot=50)
    rows = {(r["id"], r["language"]): r for r in map(json.loads, (tmp_path / "cross_mmlu/loglik/predictions.jsonl")
                                                     .read_text().splitlines())}
    langs = ["en", "zh", "es", "vi"]
    preds = [{lang: rows[(it[lang].id, lang)]["prediction"] for lang in langs} for it in items]
    golds = [{lang: it[lang].answer for lang in langs} for it in items]
    old = summarize(preds, golds, langs, n_boot=50)
    for key in ("overall_acc", "language_acc", "consistency_score_3", "AC3_3", "detailed_consistency_score",
                "consistent_correct_3", "bootstrap_95", "position_bias"):
        assert s[key] == old[key], key
