"""`crosstune train`: bad input fails before training with `error: ...`; a tiny run exports a loadable merged model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from crosstune.cli import main


def run(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(["train", *args])
    code = e.value.code
    return code, capsys.readouterr().err


def cfg(tmp_path: Path, model, data, **extra) -> str:
    c = {"data": str(data), "output_dir": str(tmp_path / "out"), "model": {"name": str(model)},
         "tokenize": {"max_length": 160}, "batch": {"size": 2}, "precision": "fp32", "max_steps": 2, **extra}
    p = tmp_path / "c.yaml"
    p.write_text(json.dumps(c))
    return str(p)


def test_unknown_key_and_bad_override(tmp_path, capsys, tiny_model_dir, mixture_file):
    code, err = run(capsys, cfg(tmp_path, tiny_model_dir, mixture_file, lora={"rank": 8}))
    assert code == 2 and "unknown key 'lora.rank'" in err and "r, alpha" in err
    code, err = run(capsys, cfg(tmp_path, tiny_model_dir, mixture_file), "max_steps=-1")
    assert code == 2 and "max_steps" in err


def test_empty_dataset(tmp_path, capsys, tiny_model_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, err = run(capsys, cfg(tmp_path, tiny_model_dir, empty))
    assert code == 2 and "empty" in err and str(empty) in err


def test_model_folder_without_tokenizer(tmp_path, capsys, tiny_model_dir, mixture_file):
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / f, bare / f)
    code, err = run(capsys, cfg(tmp_path, bare, mixture_file))
    assert code == 2 and "tokenizer" in err and str(bare) in err


def test_target_modules_that_match_nothing(tmp_path, capsys, tiny_model_dir, mixture_file):
    code, err = run(capsys, cfg(tmp_path, tiny_model_dir, mixture_file, lora={"target_modules": ["c_attn"]}))
    assert code == 2 and "no module of the model matches" in err and "q_proj" in err
    assert not (tmp_path / "out" / "log.jsonl").exists()


def test_tiny_run_logs_per_language_and_exports_merged_model(tmp_path, capsys, tiny_model_dir, mixture_file):
    # CrossIn's typo `p_proj` matches nothing: a warning, and the other targets still get adapters
    c = cfg(tmp_path, tiny_model_dir, mixture_file, merge=True, eval_rows=6, log={"every": 1},
            lora={"target_modules": ["p_proj", "k_proj", "v_proj"], "modules_to_save": ["lm_head"]})
    code, err = run(capsys, c)
    assert code == 0 and "['p_proj'] match no module" in err
    out = tmp_path / "out"
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert set(records[0]["loss_by_language"]) <= {"en", "zh"} and records[0]["data"]["train"]["rows"] == 42
    assert {"en", "zh"} == set(records[-1]["eval_loss_by_language"])
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "checkpoint-2").is_dir()
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    tok = AutoTokenizer.from_pretrained(out / "merged")
    ids = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    gen = merged.generate(**ids, max_new_tokens=5, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert isinstance(merged.lm_head.weight, torch.Tensor)


def test_shipped_configs_validate_and_take_top_level_overrides():
    from crosstune.config import load_config
    from crosstune.train.config import TrainConfig
    from tests.conftest import REPO

    for name in ("lora_smollm2_cpu", "full_smollm2_cpu", "crossin_paper"):
        cfg = load_config(TrainConfig, REPO / "configs/train" / f"{name}.yaml",
                          ["data=x.jsonl", "output_dir=o", "max_steps=10", "save_steps=5", "seed=3"])
        assert (cfg.data, cfg.output_dir, cfg.max_steps, cfg.save_steps, cfg.seed) == ("x.jsonl", "o", 10, 5, 3)


def test_training_runs_in_train_mode_so_dropout_is_active(tmp_path, capsys, tiny_model_dir, mixture_file):
    # from_pretrained returns a model in eval mode; without model.train() full fine-tuning runs without dropout
    first = {}
    for p in (0.0, 0.5):
        model = tmp_path / f"m{p}"
        shutil.copytree(tiny_model_dir, model)
        conf = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps({**conf, "attention_dropout": p}))
        out = tmp_path / f"d{p}"
        out.mkdir()
        assert run(capsys, cfg(out, model, mixture_file, max_steps=1, method="full"))[0] == 0
        first[p] = json.loads((out / "out" / "log.jsonl").read_text().splitlines()[0])["loss"]
    assert first[0.0] != first[0.5]


def test_crossin_paper_config_keeps_tied_embeddings_tied(tmp_path, capsys, tiny_model_dir, mixture_file):
    """crossin_paper.yaml on a model with tied embeddings (the tiny Llama, like Gemma/SmolLM2): the p_proj quirk
    leaves q_proj without an adapter, and embed_tokens/lm_head are trained as one matrix, exported tied."""
    from tests.conftest import REPO

    out = tmp_path / "out"
    code, err = run(capsys, str(REPO / "configs/train/crossin_paper.yaml"), f"data={mixture_file}",
                    f"output_dir={out}", f"model.name={tiny_model_dir}", "max_steps=1", "batch.grad_accum=2",
                    "tokenize.max_length=160", "precision=fp32", "merge=true", "lora.r=4", "lora.alpha=8")
    assert code == 0, err[-2000:]
    assert "['p_proj'] match no module" in err and "ensure_weight_tying" not in err
    weights = load_file(out / "checkpoint-1" / "trainable.safetensors")
    assert not any("q_proj" in k for k in weights) and any("k_proj" in k for k in weights)
    saved = [k for k in weights if "modules_to_save" in k]
    assert saved == ["base_model.model.model.embed_tokens.modules_to_save.default.weight"]  # one shared matrix
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert torch.equal(merged.get_input_embeddings().weight, merged.get_output_embeddings().weight)
    assert not torch.equal(merged.get_input_embeddings().weight, base.get_input_embeddings().weight)  # trained
