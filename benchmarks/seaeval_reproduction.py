"""Score the 6 models' raw outputs in ../shared/data/seaeval_model_predictions and compare with SeaEval's own scores.

Prints a Markdown table: SeaEval's number, ours (seed 0), the mean and SD of ours over SeaEval's random fallback
(simulated), the number of random decisions, and z = (SeaEval - mean) / SD.

    python benchmarks/seaeval_reproduction.py [--extractor seaeval|crossin]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from crosstune.eval.predictions import fallback_expectation, score_predictions
from crosstune.eval.tasks import load_task

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "seaeval_model_predictions"
METRICS = (("overall_acc", "Acc"), ("consistency_score_3", "Con3"), ("AC3_3", "AC3_3"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--extractor", default="seaeval")
    ap.add_argument("--draws", type=int, default=2000)
    args = ap.parse_args()
    preds = Path(args.data) / "seaeval_v0.1_cross_predictions_p1.jsonl.gz"
    with gzip.open(Path(args.data) / "seaeval_v0.1_cross_scores.json.gz", "rt") as f:
        ref = json.load(f)
    print("| task | model / mode | random picks | metric | SeaEval | ours (seed 0) | diff | fallback mean ± SD | z |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for task in ("cross_mmlu", "cross_logiqa"):
        cfg = load_task(task)
        ours, _ = score_predictions(preds, cfg, args.extractor, n_boot=10)
        spread = fallback_expectation(preds, cfg, args.extractor, n_draws=args.draws)
        for key, s in ours.items():
            want, sp = ref[f"{task}|{key}|p1"], spread[key]
            for m, label in METRICS:
                sd = sp["sd"][m]
                z = (want[m] - sp["mean"][m]) / sd if sd > 1e-12 else 0.0
                worst = max(worst, abs(z))
                print(f"| {task} | {key.replace('|', ' / ')} | {sp['random_decisions']} | {label} | {want[m]:.4f} | {s[m]:.4f} | "
                      f"{s[m] - want[m]:+.4f} | {sp['mean'][m]:.4f} ± {sd:.4f} | {z:+.1f} |")
    print(f"\nlargest |z| = {worst:.1f}")


if __name__ == "__main__":
    main()
