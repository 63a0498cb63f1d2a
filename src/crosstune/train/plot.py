"""Loss curves from `output_dir/log.jsonl`: overall and per response language (train, and eval when logged).

    python -m crosstune.train.plot runs/lora_smollm2_cpu [out.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read_log(out_dir: str | Path) -> list[dict]:
    path = Path(out_dir) / "log.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_losses(out_dir: str | Path, png: str | Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_log(out_dir)
    png = Path(png or Path(out_dir) / "loss.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in log]
    axes[0].plot(steps, [r["loss"] for r in log], color="black", lw=2, label="all")
    for lang in sorted({k for r in log for k in r["loss_by_language"]}):
        pts = [(r["step"], r["loss_by_language"][lang]) for r in log if lang in r["loss_by_language"]]
        axes[0].plot(*zip(*pts), lw=1, label=lang)
    axes[0].set_title("train loss (response tokens), by response language")
    losses = sorted(v for r in log for v in [r["loss"], *r["loss_by_language"].values()])
    axes[0].set_ylim(0, 1.2 * losses[int(0.97 * (len(losses) - 1))])  # a 1-example window can spike; keep the scale
    ev = [{"step": 0, "eval_loss": r["initial_eval"]["loss"],
           "eval_loss_by_language": r["initial_eval"]["loss_by_language"]} for r in log[:1] if "initial_eval" in r]
    ev += [r for r in log if "eval_loss" in r]
    if ev:
        axes[1].plot([r["step"] for r in ev], [r["eval_loss"] for r in ev], "o-", color="black", lw=2, label="all")
        for lang in sorted({k for r in ev for k in r["eval_loss_by_language"]}):
            pts = [(r["step"], r["eval_loss_by_language"][lang]) for r in ev if lang in r["eval_loss_by_language"]]
            axes[1].plot(*zip(*pts), "o-", lw=1, label=lang)
    axes[1].set_title("held-out loss, by response language")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean token cross-entropy")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


if __name__ == "__main__":
    print(plot_losses(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
