"""The whole loop in a few minutes on the embedded default model: data -> train -> eval -> report.

Builds a small CrossIn mixture (en/zh/vi Alpaca from the shared data), tunes SmolLM2-135M-Instruct with LoRA for a
few steps, and scores the base and the tuned model on Cross-MMLU by option log-likelihood. It is a smoke run of
every stage with real data and a real model, not a replication: the step count is far too small to change scores.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from crosstune.console import console, out
from crosstune.errors import CrosstuneError

ALPACA = "alpaca_chinese_parallel/alpaca_en_zh_52k_v3.jsonl.gz"
VI_ALPACA = "alpaca_vietnamese_gpt4vn/vi_alpaca_reduced.jsonl.gz"
EVAL_LANGUAGES = ["en", "zh", "vi", "es"]  # CrossIn's evaluation languages


@contextmanager
def _stage(title: str):
    console.rule(title)
    t0 = time.perf_counter()
    yield
    console.print(f"[dim]{title}: {time.perf_counter() - t0:.1f} s[/dim]")


def _recipe(data_root: Path, per_mode: int) -> dict:
    alpaca = str(data_root / ALPACA)
    return {
        "name": "crossin", "seed": 0,
        "sources": [
            {"language": "en", "path": alpaca, "format": "alpaca", "prefix": "en_"},
            {"language": "zh", "path": alpaca, "format": "alpaca", "prefix": "zh_"},
            {"language": "vi", "path": str(data_root / VI_ALPACA), "format": "prompt_response",
             "align_to": {"path": alpaca, "prefix": "en_"}},
        ],
        "recipe": {"languages": ["en", "zh", "vi"], "base_languages": ["en"], "marking": {"style": "tag"},
                   "modes": {"base": per_mode, "en2x": per_mode, "x2en": per_mode, "translate": per_mode // 2}},
        "filters": {"langid": {"backend": "pycld2", "sides": ["user", "assistant"]}},
    }


def _check_data(data_root: Path) -> None:
    for rel in (ALPACA, VI_ALPACA):
        if not (data_root / rel).is_file():
            raise CrosstuneError(f"{data_root / rel}: not found; quickstart reads the project's shared data "
                                 "(pass --data-root DIR holding alpaca_chinese_parallel/ and alpaca_vietnamese_gpt4vn/)")


def _evaluate(model: str, out_dir: Path, limit: int) -> dict:
    from crosstune.eval.runner import run_task
    from crosstune.eval.scorers import LoglikScorer
    from crosstune.eval.tasks import load_items, load_task
    from crosstune.models.backends import build_backend

    cfg = load_task("cross_mmlu")
    items = load_items(cfg, EVAL_LANGUAGES, None, limit)
    backend = build_backend(model, dtype="float32", batch_size=32)
    return run_task(backend, cfg, LoglikScorer(cfg), items, out_dir, model, cfg.default_prompt, n_boot=200)


def run(out_dir: Path, data_root: Path, steps: int = 12, per_mode: int = 64, limit: int = 30, seed: int = 0) -> dict:
    from crosstune.data.build import build
    from crosstune.models.loading import prepare_default
    from crosstune.train.config import TrainConfig
    from crosstune.train.loop import train

    _check_data(data_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _stage("1/4 model"):
        out.print(f"default model: {prepare_default()}")
    with _stage("2/4 data: a small CrossIn mixture"):
        recipe_path = out_dir / "recipe.yaml"
        recipe_path.write_text(yaml.safe_dump(_recipe(data_root, per_mode), sort_keys=False), encoding="utf-8")
        built = build(recipe_path, out_dir / "data", seed=seed)
        out.print(f"mixture: {built.manifest['counts']}")
    with _stage("3/4 train: LoRA on the default model"):
        cfg = TrainConfig(data=str(out_dir / "data" / "train.jsonl"), output_dir=str(out_dir / "train"),
                          method="lora", max_steps=steps, seed=seed, merge=True, tokenize={"max_length": 128},
                          batch={"size": 4}, optim={"lr": 2e-4}, log={"every": 2})
        trained = train(cfg, resume=(out_dir / "train").exists())
    with _stage("4/4 eval: Cross-MMLU, option log-likelihood, base vs tuned"):
        scores = {"base": _evaluate("default", out_dir / "eval" / "base", limit),
                  "tuned": _evaluate(trained["merged"], out_dir / "eval" / "tuned", limit)}
    report = _report(scores, built.manifest, trained)
    (out_dir / "report.md").write_text(report, encoding="utf-8")
    (out_dir / "summary.json").write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    out.print(report)
    out.print(f"wrote {out_dir / 'report.md'}")
    return scores


def _report(scores: dict, manifest: dict, trained: dict) -> str:
    langs = EVAL_LANGUAGES
    head = "| model | " + " | ".join(f"acc {x}" for x in langs) + " | Accuracy | Consistency_3 | AC3_3 |"
    rows = [head, "|" + "---|" * (len(langs) + 4)]
    for name, s in scores.items():
        accs = " | ".join(f"{s['language_acc'][x]:.3f}" for x in langs)
        rows.append(f"| {name} | {accs} | {s['overall_acc']:.3f} | {s['consistency_score_3']:.3f} | {s['AC3_3']:.3f} |")
    return (f"# crosstune quickstart\n\nMixture: {manifest['counts'].get('rows', '')} rows; "
            f"LoRA {trained['steps']} steps, final loss {trained['final_loss']:.4f}.\n\n"
            f"Cross-MMLU ({scores['base']['n_items']} items x {len(langs)} languages), option log-likelihood:\n\n"
            + "\n".join(rows) + "\n\nA few LoRA steps do not move these scores; run `crosstune train "
            "configs/train/lora_smollm2_cpu.yaml` for a real run.\n")
