"""Small experiments on the tiny random model and the embedded demo data (no shared data, no default model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

DEMO = Path(__file__).resolve().parents[2] / "src" / "crosstune" / "demo"


def write_experiment(tmp: Path, model: Path, **changes) -> Path:
    """A tiny sweep: the demo CrossIn mixture x a 3-value LoRA-rank sweep, the demo MC set and a generation check."""
    train_cfg = tmp / "train.yaml"
    train_cfg.write_text(yaml.safe_dump({
        "data": "x", "output_dir": "x", "method": "lora", "max_steps": 3, "save_steps": 1, "seed": 0,
        "tokenize": {"max_length": 160}, "batch": {"size": 4}, "optim": {"lr": 1e-3},
        "log": {"every": 1, "tensorboard": False}, "lora": {"r": 4, "alpha": 8}}), encoding="utf-8")
    exp = {
        "name": "tiny_sweep", "model": str(model), "threads": 1, "seed": 0,
        "data": {"crossin": {"recipe": "{demo}/crossin_demo.yaml",
                             "overrides": {"recipe.modes": {"base": 8, "en2x": 8, "x2en": 8}}},
                 "heldout": {"recipe": "{demo}/heldout_demo.yaml", "overrides": {"recipe.total": 8}}},
        "train": {"lora": {"config": str(train_cfg), "eval_data": "heldout"}},
        "eval": {"mc": {"kind": "consistency", "tasks": ["{demo}/demo_mc.yaml"], "languages": ["en", "zh", "es"],
                        "limit": 3, "n_boot": 50},
                 "fid": {"kind": "generation", "prompts": ["{demo}/heldout_prompts.jsonl"], "limit": 1,
                         "max_new_tokens": 3, "lid": "pycld2", "n_boot": 50,
                         "runs": [{"languages": ["en"], "directive": "answer_in", "target_language": "zh"}]}},
        "sweep": {"train.lora.lora.r": [2, 4, 8]},
    }
    for key, value in changes.items():
        node = exp
        parts = key.split("/")
        for p in parts[:-1]:
            node = node[p]
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(exp, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No shared data, no data root, a private call cache: what a user's fresh machine has."""
    monkeypatch.setenv("CROSSTUNE_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.delenv("CROSSTUNE_DATA", raising=False)
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    return tmp_path
