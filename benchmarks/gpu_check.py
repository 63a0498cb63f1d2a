"""GPU check: crosstune vs plain transformers on one accelerator, on a random-initialised model of a real shape.

    python benchmarks/gpu_check.py --tokenizer DIR --out gpu_check.json [--device cuda] [--shape llama-3.2-1b]
    python benchmarks/gpu_check.py --tokenizer DIR --out dry.json --device cpu --shape tiny   # the dry run

Run it through `benchmarks/gpu_check.sh`, which installs crosstune from the wheels carried beside it (no network).
No download: the model is Llama-3.2-1B's architecture written below (config only, random weights, seeded) with the
default model's tokenizer (SmolLM2's 49,152-token vocabulary instead of Llama-3's 128,256; said in the output).
Measured, each side in its own subprocess (separate peak memory, no shared accelerate state):

1. LoRA SFT in bf16 autocast: crosstune's trainer vs transformers' `Trainer` + PEFT, same rows (the same ids and
   labels from crosstune's renderer, all `--seq` tokens long, so no padding on either side), same batch, LoRA
   r16/alpha 32/dropout 0.05 on every linear layer, lr 2e-4, `--steps` steps; real tokens/s after `--warmup`
   steps, MFU = (4 x base parameters + 6 x LoRA parameters) FLOPs per token over the in-run measured bf16 matmul
   peak and over the card's nominal dense bf16 peak (attention score FLOPs left out: ~1% at 512 tokens), mean loss
   of each side (equal to 1% expected; the row order is each trainer's own seeded shuffle).
2. Log-likelihood: crosstune's HF backend (packed scorer) vs a loop that runs one (context, option) request at a
   time through the model: questions/s, and the option each picks (must agree).
3. Batched generation: crosstune's `HFGenerator` (batch 16) vs `model.generate` one prompt at a time, greedy:
   tokens/s and how many outputs are identical (bf16 batched kernels may break near-ties differently).
4. Peak GPU memory of each stage. One JSON file out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, run as a script or loaded from a file

from gpu_check_stages import LORA, WORDS, log, stage_main, sync  # noqa: E402

SHAPES = {  # Llama-3.2-1B's config.json (architecture only; vocab from the carried tokenizer)
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, max_position_embeddings=131072, rms_norm_eps=1e-5,
                         rope_theta=500000.0, tie_word_embeddings=True, hidden_act="silu",
                         rope_scaling={"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192, "rope_type": "llama3"}),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, max_position_embeddings=2048, rms_norm_eps=1e-5,
                 tie_word_embeddings=True),
}
NOMINAL_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "GH200": 989.0}

# ---- set-up: model folder and rows ---------------------------------------------------------------------------
def build_model(a, work: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = work / f"model-{a.shape}"
    if (folder / "config.json").is_file():
        return folder
    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    cfg = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                      **SHAPES[a.shape])
    torch.manual_seed(0)
    with torch.device(a.device):  # initialise on the accelerator: seconds instead of a minute on the host
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    log(f"model {a.shape}: {n / 1e6:.1f}M parameters, vocab {len(tok)}, saved bf16 to {folder}")
    return folder


def write_rows(a, work: Path) -> Path:
    """Chat rows whose rendered ids are all longer than --seq (truncated to exactly --seq: no padding anywhere)."""
    from crosstune.data.io import write_examples
    from crosstune.schema import Example, Message

    rows = []
    for i in range(a.steps * a.batch + 64):
        words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(a.seq + 32)]
        rows.append(Example(f"r{i}", [Message("user", f"Question {i}: " + " ".join(words[:24]), "en"),
                                      Message("assistant", " ".join(words[24:]), "en")]))
    path = work / "rows.jsonl"
    write_examples(path, rows)
    return path


def matmul_peak(device: str) -> float:
    """Matmul TFLOP/s measured here: bf16 8192^3 on a GPU; fp32 512^3 on a CPU (the dry run only proves the path)."""
    import torch

    gpu = device.startswith("cuda")
    n, dtype, reps = (8192, torch.bfloat16, 10) if gpu else (512, torch.float32, 5)
    x = torch.randn(n, n, device=device, dtype=dtype)
    y = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        x @ y
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        x @ y
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def lora_params(model_dir: Path) -> tuple[int, int]:
    """(base parameters in matmuls, LoRA parameters) for the MFU formula."""
    import json as _json

    c = _json.loads((model_dir / "config.json").read_text())
    h, i, L, v = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    kv = c["num_key_value_heads"] * c.get("head_dim", h // c["num_attention_heads"])
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i
    base = L * per_layer + v * h  # the head's matmul counts; embedding lookups do not
    r = LORA["r"]
    lora = L * r * ((h + h) * 2 + (h + kv) * 2 + (h + i) * 2 + (i + h))
    return base, lora


# ---- driver ---------------------------------------------------------------------------------------------------
def run_stage(a, stage: str, work: Path) -> dict:
    """One stage in a fresh interpreter (peak memory and accelerate's state per stage); its JSON back."""
    out = work / f"{stage}.json"
    cmd = [sys.executable, __file__, "--stage", stage, "--work", str(work), *a.passthrough]
    log(f"stage {stage} ...")
    t = time.perf_counter()
    proc = subprocess.run(cmd, text=True, capture_output=True)
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stdout + proc.stderr)[-3000:]
        return {"error": f"exit {proc.returncode}", "log_tail": tail}
    res = json.loads(out.read_text())
    res["stage_seconds"] = round(time.perf_counter() - t, 1)
    log(f"stage {stage}: {json.dumps(res)[:300]}")
    return res


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", help="folder with the default model's tokenizer files (carried)")
    ap.add_argument("--out", type=Path, help="the JSON file to write")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shape", default="llama-3.2-1b", choices=sorted(SHAPES))
    ap.add_argument("--work", default="/tmp/crosstune_gpu_check")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10, help="training steps left out of tokens/s (compile, caches)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.passthrough = [f"--device={a.device}", f"--shape={a.shape}", f"--steps={a.steps}", f"--warmup={a.warmup}",
                     f"--batch={a.batch}", f"--seq={a.seq}", f"--questions={a.questions}", f"--prompts={a.prompts}",
                     f"--new-tokens={a.new_tokens}"]
    return a


def main() -> None:
    a = parse()
    if a.stage:
        return stage_main(a)
    import torch

    from crosstune.models.device import pick_device

    if not a.tokenizer or not Path(a.tokenizer, "tokenizer.json").is_file() or a.out is None:
        sys.exit("error: gpu_check.py: --tokenizer DIR (with tokenizer.json) and --out FILE are required")
    dev = pick_device(a.device)
    a.device = str(dev)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    res = {"device": name, "torch": torch.__version__, "shape": a.shape,
           "vocab_note": "SmolLM2 tokenizer (49,152 tokens), not Llama-3's 128,256",
           "settings": {k: getattr(a, k) for k in ("steps", "warmup", "batch", "seq", "questions", "prompts",
                                                  "new_tokens")}}
    if dev.type == "cuda":
        res["cuda"] = torch.version.cuda
        res["bf16_supported"] = torch.cuda.is_bf16_supported()
    model = build_model(a, work)
    write_rows(a, work)
    res["matmul_peak_tflops"] = round(matmul_peak(a.device), 4)
    nominal = next((v for k, v in NOMINAL_BF16_TFLOPS.items() if k in name), None)
    base, lora = lora_params(model)
    flops_tok = 4 * base + 6 * lora
    train = {"ours": run_stage(a, "train_ours", work), "peer": run_stage(a, "train_peer", work),
             "flops_per_token": flops_tok, "base_params_in_matmuls": base, "lora_params": lora}
    for side in ("ours", "peer"):
        r = train[side]
        if "tokens" in r and r["seconds"] > 0:
            r["tok_s"] = round(r["tokens"] / r["seconds"], 1)
            r["mean_loss"] = round(sum(r["losses"]) / len(r["losses"]), 4)
            r["mfu_measured_peak"] = round(r["tok_s"] * flops_tok / (res["matmul_peak_tflops"] * 1e12), 4)
            if nominal:
                r["mfu_nominal_peak"] = round(r["tok_s"] * flops_tok / (nominal * 1e12), 4)
    if "tok_s" in train["ours"] and "tok_s" in train["peer"]:
        train["ratio"] = round(train["ours"]["tok_s"] / train["peer"]["tok_s"], 2)
        lo, lp = train["ours"]["mean_loss"], train["peer"]["mean_loss"]
        train["loss_rel_diff"] = round(abs(lo - lp) / lp, 4)
    res["train_lora_bf16"] = train
    res["loglik"] = run_stage(a, "loglik", work)
    res["generation"] = run_stage(a, "generate", work)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    failed = [k for k in ("loglik", "generation") if "error" in res[k]] + [
        f"train_{s}" for s in ("ours", "peer") if "error" in train[s]]
    res["failed_stages"] = failed
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    log(f"wrote {a.out} in {res['seconds']} s; failed stages: {failed or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
