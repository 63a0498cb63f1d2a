"""Multiple choice with `method: generate` uses the template the task names (`template: raw`), as `loglik` does;
a task that names none keeps the chat template (SeaEval's generate protocol); `--template` overrides both."""

from __future__ import annotations

from crosstune.config import validate
from crosstune.eval.scorers import build_scorer
from crosstune.eval.tasks import TaskConfig

BASE = {"name": "t", "data_files": "x.jsonl", "languages": {"en": "en"}, "prompts": {"default": "{{ q }}"},
        "default_prompt": "default", "choices": "[a, b]", "method": "generate"}


def test_generate_method_honours_the_tasks_template():
    raw = validate(TaskConfig, {**BASE, "template": "raw"}, "t.yaml")
    assert build_scorer(raw).render.template == "raw"
    assert build_scorer(raw, "loglik").render.template == "raw"
    assert build_scorer(validate(TaskConfig, BASE, "t.yaml")).render.template == "auto"
    assert build_scorer(raw, template="chat").render.template == "chat"
