"""The results table across arms: one row per arm (model), flat columns in DIR/results.csv, full records in
DIR/results.jsonl (with every stage's status, folder and error), both rewritten after each run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from crosstune.experiments.plan import Plan


def _arm_row(plan: Plan, arm, status: dict[str, dict]) -> dict:
    row: dict = {"arm": arm.name, "data": arm.data or "", "train": arm.train or "",
                 **{k: arm.params.get(k, "") for k in plan.sweep_params}}
    names = ([*plan.stages[arm.model_stage].deps, arm.model_stage] if arm.model_stage else []) + \
        list(arm.eval_stages.values())
    stages = {n: status[n] for n in names}
    bad = [n for n, s in stages.items() if s["status"] != "ok"]
    row["status"] = "ok" if not bad else ("failed" if any(stages[n]["status"] == "failed" for n in bad) else "skipped")
    row["error"] = "; ".join(f"{n}: {stages[n].get('error', '')}" for n in bad if stages[n]["status"] == "failed")
    for n in (arm.model_stage and plan.stages[arm.model_stage].deps[:1]) or []:
        res = status[n].get("result") or {}
        row["train_rows"] = res.get("rows", "")
    if arm.model_stage and status[arm.model_stage].get("result"):
        res = status[arm.model_stage]["result"]
        row.update(steps=res["steps"], final_loss=res["final_loss"], eval_loss=res.get("eval_loss"))
        for lang, v in sorted(res.get("eval_loss_by_language", {}).items()):
            row[f"eval_loss.{lang}"] = v
    for suite, n in arm.eval_stages.items():
        res = status[n].get("result") or {}
        for task, t in res.get("tasks", {}).items():
            p = f"{suite}.{task}"
            row.update({f"{p}.acc": t["acc"], f"{p}.con3": t.get("con3"), f"{p}.ac3": t.get("ac3")})
            for lang, v in t["language_acc"].items():
                row[f"{p}.acc.{lang}"] = v
        for label, g in res.get("runs", {}).items():
            row[f"{suite}.{label}.fidelity"] = g["overall"]
            for lang, v in sorted(g["per_language"].items()):
                row[f"{suite}.{label}.fidelity.{lang}"] = v["rate"]
        for metric, v in res.get("metrics", {}).items():  # a user's suite kind
            row[f"{suite}.{metric}"] = v
        for label, j in res.get("conditions", {}).items():  # judge suites: score vs the reference arm, in %
            row[f"{suite}.{label}.judge"] = j["score"]
            for lang, v in sorted(j["per_language"].items()):
                row[f"{suite}.{label}.judge.{lang}"] = v["score"]
    return row, stages


def write_results(plan: Plan, status: dict[str, dict], out_dir: Path) -> list[dict]:
    rows, records = [], []
    for arm in plan.arms:
        row, stages = _arm_row(plan, arm, status)
        rows.append(row)
        records.append({**row, "params": arm.params, "baseline": arm.name == plan.baseline,
                        "eval_stages": arm.eval_stages, "model_stage": arm.model_stage, "stages": stages})
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with open(out_dir / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else round(r[k], 6) if isinstance(r.get(k), float) else r[k])
                        for k in cols})
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
    meta = {"experiment": plan.experiment.name, "description": plan.experiment.description,
            "baseline": plan.baseline, "sweep": {k: list(v) for k, v in plan.experiment.sweep.items()},
            "model": plan.experiment.model}
    (out_dir / "results_meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False, default=str) + "\n",
                                               encoding="utf-8")
    return rows
