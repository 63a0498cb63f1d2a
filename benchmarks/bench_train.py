"""crosstune's trainer vs TRL's SFTTrainer: same model, rows, LoRA, effective batch and precision, one run.

    python benchmarks/bench_train.py --data runs/data/crossin/train.jsonl [--rows 512 --steps 64 --batch 8]
        [--threads 1 --repeat 2 --ablation torch_dropout,compile,sdpa]

Each trainer runs in its own subprocess (peak RSS is per process). Reported: real (non-padding) tokens per second
of the training loop, peak RSS, final train loss (mean of the last 5 steps), held-out loss of both trained adapters
on the same 64 rows computed by one function, and the fraction of the 2 cores' matmul peak (6 x params FLOPs per
real token; the peak is measured in the same run). `--repeat N` runs the two trainers N times each in ABBA order
(a drifting load hits both alike); `--ablation` adds crosstune runs with one speed change undone (each change's
share = defaults / variant; the `compile` variant reports tokens/s after the first step, which holds the compile,
separately). Gradient checkpointing is off in both; TRL gets a
prompt/completion dataset so both train on the response only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
LORA = dict(r=16, alpha=32, dropout=0.05, targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                     "down_proj"])


def pick_rows(path: str, rows: int, eval_rows: int, out: Path) -> tuple[Path, Path]:
    from crosstune.data.io import read_examples, write_examples

    examples = list(read_examples(path))
    chosen = random.Random(0).sample(range(len(examples)), rows + eval_rows)
    train, held = out / "train.jsonl", out / "eval.jsonl"
    write_examples(train, [examples[i] for i in chosen[:rows]])
    write_examples(held, [examples[i] for i in chosen[rows:]])
    return train, held


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ablations: crosstune with one change of this issue undone (each change's share = ours / variant)
VARIANTS = {"sdpa": {"model": {"attn_implementation": "sdpa"}},  # before: sdpa attention (now eager on CPU)
            "torch_dropout": {"lora": {"dropout_impl": "torch"}},  # PEFT's layer and bernoulli_ dropout masks
            "fp32_base": {"lora": {"base_dtype": "float32"}},  # frozen base weights float32 (autocast casts them)
            "peft_layer": {"lora": {"fused": False}},  # PEFT's LoRA Linear instead of the fused one
            "unfused_loss": {"model": {"fused_loss": False}},  # head(hidden).float() + cross_entropy
            "eager_norms": {"model": {"compile": "off"}},  # no torch.compile of the norms (`auto` compiles them)
            "session3_start": {"lora": {"base_dtype": "float32", "fused": False},  # all four above undone
                               "model": {"fused_loss": False, "compile": "off"}},
            "compile": {"model": {"compile": "layers"}}}  # torch.compile of each decoder layer (opt-in)
# TRL variants (`--ablation trl_bf16_base`): TRL with the base model loaded in bfloat16 (its default is float32)
TRL_VARIANTS = ("trl_bf16_base",)


def run_ours(a, train: Path, work: Path, name: str = "ours", variant: str = "") -> dict:
    from crosstune.train.config import TrainConfig
    from crosstune.train.loop import train as run

    raw = {"data": str(train), "output_dir": str(work / name), "model": {"name": a.model},
           "lora": {"r": LORA["r"], "alpha": LORA["alpha"], "dropout": LORA["dropout"],
                    "target_modules": LORA["targets"]},
           "tokenize": {"max_length": a.max_length}, "batch": {"size": a.batch, "mode": a.mode},
           "optim": {"lr": 2e-4}, "precision": "bf16_autocast" if a.precision == "bf16" else "fp32",
           "max_steps": a.steps, "seed": 42, "log": {"every": 1, "tensorboard": False}}
    for section, values in VARIANTS.get(variant, {}).items():
        raw[section] = {**raw[section], **values}
    run(TrainConfig.model_validate(raw))
    log = [json.loads(x) for x in (work / name / "log.jsonl").read_text().splitlines()]
    return {"tokens": sum(r["tokens"] for r in log), "seconds": sum(r["seconds"] for r in log),
            "losses": [r["loss"] for r in log], "adapter": str(work / name / "adapter"),
            "first_step_seconds": log[0]["seconds"], "first_step_tokens": log[0]["tokens"]}


def run_trl(a, train: Path, work: Path, name: str = "trl", bf16_base: bool = False) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from crosstune.data.io import read_examples
    from crosstune.models.loading import resolve_model

    rows = []
    for ex in read_examples(train):
        last = ex.last_assistant_index()
        rows.append({"prompt": [{"role": m.role, "content": m.content} for m in ex.messages[:last]],
                     "completion": [{"role": "assistant", "content": ex.messages[last].content}]})
    path = resolve_model(a.model)
    tok = AutoTokenizer.from_pretrained(path)
    import torch

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if bf16_base else torch.float32)
    args = SFTConfig(output_dir=str(work / name), per_device_train_batch_size=a.batch, gradient_accumulation_steps=1,
                     max_steps=a.steps, learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=0.03,
                     weight_decay=0.01, max_length=a.max_length, use_cpu=True, bf16=a.precision == "bf16",
                     gradient_checkpointing=False, logging_steps=1, save_strategy="no", report_to=[], seed=42,
                     dataloader_num_workers=0, completion_only_loss=True)
    peft_cfg = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                          target_modules=LORA["targets"], task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=peft_cfg)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    logs = [h for h in trainer.state.log_history if "loss" in h]
    trainer.model.save_pretrained(work / name / "adapter")
    return {"tokens": int(logs[-1]["num_tokens"]), "seconds": seconds, "losses": [h["loss"] for h in logs],
            "adapter": str(work / name / "adapter")}


def heldout_loss(a, adapter: str, held: Path) -> float:
    """One loss function for both adapters: response-only mean token loss, chat template, bf16 autocast."""
    import torch
    from peft import PeftModel

    from crosstune.data.io import read_examples
    from crosstune.models.loading import load_model, load_tokenizer
    from crosstune.train.tokenize import IGNORE, tokenize_all

    tok = load_tokenizer(a.model)
    model = PeftModel.from_pretrained(load_model(a.model), adapter).eval()
    data, _ = tokenize_all(list(read_examples(held)), tok, "chat", "response", a.max_length, "truncate")
    total, n = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for ex in data:
            logits = model(input_ids=torch.tensor([ex.input_ids])).logits[0, :-1].float()
            target = torch.tensor(ex.labels[1:])
            sel = target != IGNORE
            total += float(torch.nn.functional.cross_entropy(logits[sel], target[sel], reduction="sum"))
            n += int(sel.sum())
    return total / n


def matmul_peak() -> dict:
    import torch

    out = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x, y = torch.randn(2048, 2048, dtype=dt), torch.randn(2048, 2048, dtype=dt)
        x @ y
        best = 0.0
        for _ in range(5):
            t = time.perf_counter()
            x @ y
            best = max(best, 2 * 2048**3 / (time.perf_counter() - t) / 1e9)
        out[name] = round(best, 1)
    return out


def worker(a) -> None:
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    work = Path(a.work)
    kind = a.worker.split("#")[0]
    if kind.startswith("peak"):
        result = matmul_peak()
    else:
        train = work / "train.jsonl"
        name = a.worker.replace("#", "_")
        if kind.startswith("trl"):
            res = run_trl(a, train, work, name, bf16_base=kind == "trl_bf16_base")
        else:
            res = run_ours(a, train, work, name, kind.removeprefix("ours").removeprefix("_"))
        res["heldout_loss"] = heldout_loss(a, res["adapter"], work / "eval.jsonl")
        res["peak_rss_mb"] = peak_rss_mb()
        result = res
    (work / f"{a.worker}.json").write_text(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="crosstune rows of a CrossIn mixture (crosstune data build)")
    p.add_argument("--model", default="default")
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--mode", choices=["pad", "pack"], default="pad", help="crosstune's batching")
    p.add_argument("--threads", type=int, default=0, help="torch threads in every worker (0: torch default)")
    p.add_argument("--ablation", default="", help="comma list of variants to run too: "
                   f"{', '.join([*VARIANTS, *TRL_VARIANTS])}")
    p.add_argument("--repeat", type=int, default=1, help="run crosstune and TRL this many times each, alternating "
                   "(ABBA order: a load drifting during the run affects both alike)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    pick_rows(a.data, a.rows, 64, work)
    argv = sys.argv[1:]
    results = {}
    env = {**os.environ, **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {})}
    pairs = [["ours", "trl"] if i % 2 == 0 else ["trl", "ours"] for i in range(a.repeat)]
    order = ["peak"] + [f"{x}#{i}" for i, pair in enumerate(pairs) for x in pair]
    order += [f"{v if v in TRL_VARIANTS else 'ours_' + v}#0" for v in a.ablation.split(",") if v] + ["peak_end"]
    for name in order:  # peers interleaved in one run; the load average is recorded around each
        load = os.getloadavg()[0]
        subprocess.run([sys.executable, __file__, *argv, "--worker", name, "--work", str(work)], check=True, env=env)
        results[name] = json.loads((work / f"{name}.json").read_text())
        if isinstance(results[name], dict):
            results[name]["load_average"] = [round(load, 1), round(os.getloadavg()[0], 1)]
    print(json.dumps(summarize(a, results), indent=1))


def summarize(a, r: dict) -> dict:
    params = 134_515_008  # SmolLM2-135M (tied head counted once), for 6 x params FLOPs per token
    peak = max(r["peak"][a.precision], r["peak_end"][a.precision])  # the better of two in-run measurements
    rows = {}
    for name in dict.fromkeys(k.split("#")[0] for k in r if not k.startswith("peak")):
        runs = [v for k, v in r.items() if k.split("#")[0] == name]
        tokens, seconds = sum(x["tokens"] for x in runs), sum(x["seconds"] for x in runs)
        tps = tokens / seconds
        x = runs[0]
        rows[name] = {"tokens_per_s": round(tps, 1), "runs_tokens_per_s": [round(y["tokens"] / y["seconds"], 1)
                                                                            for y in runs],
                      "real_tokens": x["tokens"], "train_seconds": round(x["seconds"], 1),
                      "s_per_step": round(seconds / len(runs) / a.steps, 2), "peak_rss_mb": round(x["peak_rss_mb"]),
                      "final_loss_last5": round(sum(x["losses"][-5:]) / len(x["losses"][-5:]), 4),
                      "heldout_loss": round(x["heldout_loss"], 4),
                      "heldout_loss_all_runs": sorted({round(y["heldout_loss"], 6) for y in runs}),
                      "fraction_of_matmul_peak": round(6 * params * tps / (peak * 1e9), 3),
                      "fraction_of_env_peak_363": round(6 * params * tps / 363e9, 3),
                      "load_average": [y["load_average"] for y in runs]}
        if "first_step_seconds" in x:  # the first step holds torch.compile's compile time (variant `compile`)
            rows[name]["first_step_seconds"] = round(x["first_step_seconds"], 1)
            rest = [(y["tokens"] - y["first_step_tokens"], y["seconds"] - y["first_step_seconds"]) for y in runs]
            rows[name]["tokens_per_s_after_first_step"] = round(sum(t for t, _ in rest) / sum(s for _, s in rest), 1)
    o, t = rows["ours"], rows["trl"]
    out = {"setup": vars(a) | {"matmul_peak_gflops": {"start": r["peak"], "end": r["peak_end"]}}, **rows,
           "speedup_tokens_per_s": round(o["tokens_per_s"] / t["tokens_per_s"], 2),
           "speedup_per_pair": [round(x / y, 2) for x, y in zip(o["runs_tokens_per_s"], t["runs_tokens_per_s"])],
           "heldout_loss_rel_diff": round(o["heldout_loss"] / t["heldout_loss"] - 1, 4)}
    ablation = {v: rows[v if v in TRL_VARIANTS else f"ours_{v}"] for v in a.ablation.split(",") if v}
    if ablation:  # each change's share: ours / ours with that change undone (single runs: load drift applies)
        out["ablation"] = {v: {"vs_trl": round(x["tokens_per_s"] / t["tokens_per_s"], 2),
                               "ours_over_variant": round(o["tokens_per_s"] / x["tokens_per_s"], 2)}
                           for v, x in ablation.items()}
    return out


if __name__ == "__main__":
    main()
