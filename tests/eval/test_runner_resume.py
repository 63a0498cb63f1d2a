"""The runner on a tiny model: predictions go to a JSONL as the run goes, a killed run resumes without redoing
finished items, and the same settings give the same bytes."""

import json

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval.runner import run_task
from crosstune.eval.scorers import GenerateScorer, LoglikScorer
from crosstune.eval.tasks import load_items, load_task
from crosstune.models.backends import build_backend


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
    # a fresh run with the same settings writes the same bytes
    run_task(backend, cfg, LoglikScorer(cfg), items, tmp_path / "b", "tiny", "crossin_p1", chunk_size=4, n_boot=50)
    for name in ("summary.json", "table.md"):
        assert (tmp_path / "a/toy/loglik" / name).read_bytes() == (tmp_path / "b/toy/loglik" / name).read_bytes()
    assert (tmp_path / "a/toy/loglik/position_bias.png").stat().st_size > 0


def test_generate_run_records_extraction(toy_task, backend, tmp_path):
    cfg, items = toy_task
    scorer = GenerateScorer(cfg, max_new_tokens=4)
    s = run_task(backend, cfg, scorer, items[:2], tmp_path, "tiny", "crossin_p1", n_boot=20)
    rows = [json.loads(x) for x in (tmp_path / "toy/generate/predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["extraction"] and "output" in r for r in rows)
    assert sum(s["extraction_paths"].values()) == 6
    with pytest.raises(CrosstuneError, match="different settings"):  # a changed setting cannot mix into old results
        run_task(backend, cfg, GenerateScorer(cfg, max_new_tokens=5), items[:2], tmp_path, "tiny", "crossin_p1")
