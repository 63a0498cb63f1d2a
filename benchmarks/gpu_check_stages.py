"""The measured parts of the GPU check (`benchmarks/gpu_check.py` runs each in its own subprocess): LoRA SFT by
crosstune and by a transformers `Trainer` + PEFT, log-likelihood by crosstune's packed scorer and one request at a
time, batched generation and `generate` one prompt at a time."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path


LORA = dict(r=16, alpha=32, dropout=0.05,
            targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
WORDS = ("the model reads a long passage about rivers mountains cities and languages and then answers in the "
         "language it was asked in with care and detail so that every sentence carries meaning").split()


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# ---- stage 1: training, each side in a subprocess -----------------------------------------------------------
def train_ours(a, model: Path, rows: Path, work: Path) -> dict:
    from crosstune.train.config import TrainConfig
    from crosstune.train.loop import train

    out = work / "ours"
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig.model_validate({
        "data": str(rows), "output_dir": str(out), "model": {"name": str(model)},
        "lora": {"r": LORA["r"], "alpha": LORA["alpha"], "dropout": LORA["dropout"], "target_modules": LORA["targets"]},
        "tokenize": {"max_length": a.seq, "template": "chat"}, "batch": {"size": a.batch, "mode": "pad"},
        "optim": {"lr": 2e-4}, "precision": "bf16_autocast", "max_steps": a.steps, "seed": 42,
        "log": {"every": 1, "tensorboard": False}})
    train(cfg)
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines() if '"loss"' in x]
    timed = recs[a.warmup:]
    return {"tokens": sum(r["tokens"] for r in timed), "seconds": sum(r["seconds"] for r in timed),
            "losses": [r["loss"] for r in recs]}


def train_peer(a, model: Path, rows: Path, work: Path) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from crosstune.data.io import read_examples
    from crosstune.models.render import train_ids

    tok = AutoTokenizer.from_pretrained(model)
    data = []
    for ex in read_examples(rows):
        r = train_ids(ex, "chat", tok)
        data.append({"input_ids": r.ids[:a.seq], "labels": r.labels[:a.seq]})
    hf = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16, attn_implementation="sdpa")
    peft = get_peft_model(hf, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                         target_modules=LORA["targets"], task_type="CAUSAL_LM"))

    def collate(batch):
        n = max(len(b["input_ids"]) for b in batch)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        ids = torch.tensor([b["input_ids"] + [pad] * (n - len(b["input_ids"])) for b in batch])
        lab = torch.tensor([b["labels"] + [-100] * (n - len(b["labels"])) for b in batch])
        return {"input_ids": ids, "labels": lab, "attention_mask": (torch.arange(n) < torch.tensor(
            [len(b["input_ids"]) for b in batch]).unsqueeze(1)).long()}

    times: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            sync(a.device)
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            sync(a.device)
            times.append((time.perf_counter() - self.t, a.batch))

    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    args = TrainingArguments(output_dir=str(work / "peer"), per_device_train_batch_size=a.batch, max_steps=a.steps,
                             learning_rate=2e-4, lr_scheduler_type="cosine", weight_decay=0.01,
                             warmup_steps=math.ceil(0.03 * a.steps),  # crosstune's warmup_ratio 0.03
                             bf16=True, logging_steps=1, save_strategy="no", report_to=[], seed=42,
                             use_cpu=not a.device.startswith("cuda"), remove_unused_columns=False,
                             dataloader_num_workers=0, disable_tqdm=True)
    Trainer(model=peft, args=args, train_dataset=data, data_collator=collate, callbacks=[Clock(), Losses()]).train()
    timed = times[a.warmup:]
    assert all(len(d["input_ids"]) == a.seq for d in data), "every row is --seq tokens long (no padding)"
    return {"tokens": a.seq * sum(n for _, n in timed), "seconds": sum(s for s, _ in timed), "losses": losses}


# ---- stages 2 and 3: log-likelihood and generation ----------------------------------------------------------
def questions(n: int) -> list[tuple[str, list[str]]]:
    out = []
    for q in range(n):
        ctx = "Question: " + " ".join(WORDS[(q * 5 + k) % len(WORDS)] for k in range(40 + q % 30)) + "\nAnswer:"
        opts = [" " + " ".join(WORDS[(q + o * 11 + k) % len(WORDS)] for k in range(3 + (q + o) % 6))
                for o in range(4)]
        out.append((ctx, opts))
    return out


def loglik(a, model_dir: Path) -> dict:
    import torch

    from crosstune.models.backends.base import LoglikRequest
    from crosstune.models.backends.hf import HFBackend

    b = HFBackend(str(model_dir), dtype="bfloat16", batch_size=32, device=a.device)
    qs = questions(a.questions)
    reqs = [LoglikRequest(c, o) for c, opts in qs for o in opts]
    b.loglikelihood(reqs[:8])  # warm-up
    pairs = [b._encode_pair(r.context, r.continuation) for r in reqs]
    reset_peak(a.device)
    sync(a.device)
    t = time.perf_counter()
    ours = [r.logprob for r in b.loglikelihood(reqs)]
    sync(a.device)
    t_ours = time.perf_counter() - t
    mem = peak_gib(a.device)
    peer = []
    t = time.perf_counter()
    with torch.inference_mode():
        for ctx, cont in pairs:
            ids = torch.tensor([list(ctx) + cont], device=b.device)
            logp = torch.log_softmax(b.model(input_ids=ids).logits[0, len(ctx) - 1:-1].float(), -1)
            peer.append(float(logp.gather(-1, torch.tensor(cont, device=b.device).unsqueeze(-1)).sum()))
    sync(a.device)
    t_peer = time.perf_counter() - t
    pick = [max(range(4), key=lambda k, s=s: s[k]) for s in (ours[i:i + 4] for i in range(0, len(ours), 4))]
    pick_peer = [max(range(4), key=lambda k, s=s: s[k]) for s in (peer[i:i + 4] for i in range(0, len(peer), 4))]
    return {"questions": len(qs), "ours_q_per_s": round(len(qs) / t_ours, 2),
            "peer_q_per_s": round(len(qs) / t_peer, 2), "ratio": round(t_peer / t_ours, 2),
            "same_choice": f"{sum(x == y for x, y in zip(pick, pick_peer))}/{len(qs)}",
            "max_abs_logprob_diff": round(max(abs(x - y) for x, y in zip(ours, peer)), 4), "peak_gib": mem}


def generation(a, model_dir: Path) -> dict:
    import torch

    from crosstune.models.backends.base import GenerateRequest
    from crosstune.models.backends.hf_generate import HFGenerator
    from crosstune.models.device import pick_device
    from crosstune.models.loading import load_model, load_tokenizer

    tok = load_tokenizer(str(model_dir))
    model = load_model(str(model_dir), dtype="bfloat16").to(pick_device(a.device)).eval()
    gen = HFGenerator(model, tok, batch_size=16)
    prompts = [" ".join(WORDS[(p * 3 + k) % len(WORDS)] for k in range(8 + p % 24)) for p in range(a.prompts)]
    reqs = [GenerateRequest([{"role": "user", "content": p}], a.new_tokens) for p in prompts]
    gen.generate(reqs[:2])  # warm-up
    reset_peak(a.device)
    sync(a.device)
    t, before = time.perf_counter(), gen.tokens_generated
    ours = gen.generate(reqs)
    sync(a.device)
    t_ours, n_ours = time.perf_counter() - t, gen.tokens_generated - before
    mem = peak_gib(a.device)
    eos = set(gen.eos_ids.tolist())
    peer, n_peer = [], 0
    t = time.perf_counter()
    with torch.inference_mode():
        for r in reqs:
            ids = torch.tensor([gen.render(r.prompt)], device=model.device)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=a.new_tokens, pad_token_id=gen.pad_id, temperature=None, top_p=None,
                                 top_k=None)[0, ids.shape[1]:].tolist()
            out = out[:next((i for i, x in enumerate(out) if x in eos), len(out))]
            n_peer += len(out)
            peer.append(tok.decode(out, skip_special_tokens=True))
    sync(a.device)
    t_peer = time.perf_counter() - t
    return {"prompts": len(prompts), "batch_size": 16, "new_tokens": a.new_tokens,
            "ours_tok_s": round(n_ours / t_ours, 1), "peer_tok_s": round(n_peer / t_peer, 1),
            "ratio": round((n_ours / t_ours) / (n_peer / t_peer), 2),
            "same_outputs": f"{sum(x == y for x, y in zip(ours, peer))}/{len(prompts)}", "peak_gib": mem}



def stage_main(a) -> None:
    import torch

    work = Path(a.work)
    model = work / f"model-{a.shape}"
    rows = work / "rows.jsonl"
    reset_peak(a.device)
    if a.stage in ("train_ours", "train_peer"):
        r = (train_ours if a.stage == "train_ours" else train_peer)(a, model, rows, work)
        r["peak_gib"] = peak_gib(a.device)
    elif a.stage == "loglik":
        r = loglik(a, model)
    else:
        r = generation(a, model)
    r["torch"] = torch.__version__
    (work / f"{a.stage}.json").write_text(json.dumps(r))
