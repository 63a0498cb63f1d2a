"""Report data from an experiment folder: arms, per-language numbers with intervals, paired significance against
the baseline, and the Markdown tables (the HTML page renders the same rows). Every interval of a rate or of a paired
difference is computed here from the saved outcomes (predictions.jsonl, fidelity items.jsonl) by the one rule of
`crosstune.eval.intervals`, so an older run's report agrees with a new one."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from crosstune.eval.intervals import fmt_ci, fmt_p, proportion_ci


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@dataclass
class Report:
    out_dir: Path
    meta: dict
    arms: list[dict]  # results.jsonl records
    baseline: str
    tasks: list[tuple[str, str]] = field(default_factory=list)  # (suite, task)
    generations: list[tuple[str, str]] = field(default_factory=list)  # (suite, condition label)
    judges: list[tuple[str, str]] = field(default_factory=list)  # (judge suite, condition label)
    rows_read: dict = field(default_factory=dict)  # per-item files, read once

    def rows(self, rel: str | Path) -> list[dict]:
        if str(rel) not in self.rows_read:
            self.rows_read[str(rel)] = read_jsonl(self.out_dir / rel)
        return self.rows_read[str(rel)]

    def stage(self, arm: dict, name: str) -> dict:
        return arm["stages"].get(name, {})

    def eval_result(self, arm: dict, suite: str) -> dict:
        name = arm["eval_stages"].get(suite)
        return (self.stage(arm, name).get("result") or {}) if name else {}

    def task(self, arm: dict, suite: str, task: str) -> dict | None:
        return self.eval_result(arm, suite).get("tasks", {}).get(task)

    def generation(self, arm: dict, suite: str, label: str) -> dict | None:
        return self.eval_result(arm, suite).get("runs", {}).get(label)

    def judge(self, arm: dict, suite: str, label: str) -> dict | None:
        return self.eval_result(arm, suite).get("conditions", {}).get(label)

    def train(self, arm: dict) -> dict | None:
        return self.stage(arm, arm["model_stage"]).get("result") if arm.get("model_stage") else None

    def predictions(self, arm: dict, suite: str, task: str) -> dict[tuple[str, str], bool]:
        t = self.task(arm, suite, task)
        if not t or not t.get("per_item"):
            return {}
        return {(r["id"], r["language"]): bool(r["correct"]) for r in self.rows(t["per_item"])}

    def fidelity_items(self, arm: dict, suite: str, label: str) -> list[dict]:
        g = self.generation(arm, suite, label)
        return self.rows(Path(g["fidelity_dir"]) / "items.jsonl") if g and g.get("fidelity_dir") else []

    def accuracy_ci(self, arm: dict, suite: str, task: str, lang: str | None = None) -> list[float] | None:
        """The rule's interval of a task's accuracy (one language, or all pooled and clustered by item)."""
        pred = [(k[0], v) for k, v in self.predictions(arm, suite, task).items() if lang in (None, k[1])]
        return proportion_ci([v for _, v in pred], [i for i, _ in pred]) if pred else None

    def fidelity_ci(self, arm: dict, suite: str, label: str, lang: str | None = None) -> list[float] | None:
        """The rule's interval of a condition's share of responses in the expected language (one expected language,
        or all pooled and clustered by prompt id)."""
        items = [r for r in self.fidelity_items(arm, suite, label) if lang in (None, r.get("expected"))]
        return proportion_ci([bool(r["match"]) for r in items], [str(r["id"]) for r in items]) if items else None

    def heldout_before(self) -> dict | None:
        """The untuned model's held-out loss (overall and per language), which every trained arm measured before its
        first step on the same rows; None when the arms disagree (different base models) or none measured it."""
        seen = []
        for arm in self.arms:
            tr = self.train(arm) or {}
            if tr.get("initial_eval_loss") is not None:
                seen.append({"all": tr["initial_eval_loss"], **(tr.get("initial_eval_loss_by_language") or {})})
        if not seen or any(abs(s["all"] - seen[0]["all"]) > 1e-3 for s in seen):
            return None
        return seen[0]


def load_report(out_dir: Path) -> Report:
    meta = json.loads((out_dir / "results_meta.json").read_text(encoding="utf-8"))
    arms = read_jsonl(out_dir / "results.jsonl")
    rep = Report(out_dir, meta, arms, meta.get("baseline", ""))
    for arm in arms:
        for suite in arm["eval_stages"]:
            res = rep.eval_result(arm, suite)
            rep.tasks += [(suite, t) for t in res.get("tasks", {}) if (suite, t) not in rep.tasks]
            rep.generations += [(suite, g) for g in res.get("runs", {}) if (suite, g) not in rep.generations]
            rep.judges += [(suite, g) for g in res.get("conditions", {}) if (suite, g) not in rep.judges]
    return rep


def significance(rep: Report) -> list[dict]:
    """Each arm vs the baseline on each task (`crosstune.eval.compare`, as `crosstune eval compare`) and on each
    generation condition's fidelity: the difference with Newcombe's paired interval and McNemar's test, per language
    (exact) and overall (the languages of an item pooled: effective n and McNemar clustered by item)."""
    from crosstune.eval.compare import compare_outcomes, compare_task

    base = next((a for a in rep.arms if a["arm"] == rep.baseline), None)
    out = []
    if base is None:
        return out
    for suite, task in rep.tasks:
        b = rep.task(base, suite, task)
        if not b or not b.get("per_item"):
            continue
        for arm in rep.arms:
            t = rep.task(arm, suite, task)
            if arm["arm"] == rep.baseline or not t or not t.get("per_item"):
                continue
            res = compare_task(rep.out_dir / Path(b["per_item"]).parent, rep.out_dir / Path(t["per_item"]).parent)
            out.append({"suite": suite, "task": task, "arm": arm["arm"], "baseline": rep.baseline,
                        **_short(res["overall"]), "per_language": {k: _short(v) for k, v in res["per_language"].items()}})
    for suite, label in rep.generations:  # response-language fidelity: in the expected language or not, paired
        b = _fidelity_outcomes(rep, base, suite, label)
        for arm in rep.arms:
            a = _fidelity_outcomes(rep, arm, suite, label)
            if arm["arm"] == rep.baseline or not a or not b:
                continue
            res = compare_outcomes(b, a)
            out.append({"suite": suite, "task": f"fidelity {condition_name(label)}", "arm": arm["arm"],
                        "baseline": rep.baseline, **_short(res["overall"]),
                        "per_language": {k: _short(v) for k, v in res["per_language"].items()}})
    return out


def _short(r: dict) -> dict:
    return {"delta": r["diff_b_minus_a"], "ci95": r["ci95"], "p": r["mcnemar_p"], "n": r["n"], "n_items": r["n_items"],
            "right_only_arm": r["right_only_b"], "right_only_baseline": r["right_only_a"],
            "no_pair_differs": r["no_pair_differs"], "test": r["test"], "interval": r["interval"]}


def _fidelity_outcomes(rep: Report, arm: dict, suite: str, label: str) -> dict:
    return {(str(r["id"]), r.get("expected") or r["language"], r.get("sample", 0), r["language"]): bool(r["match"])
            for r in rep.fidelity_items(arm, suite, label)}


def _f(x, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _ci(ci) -> str:
    return fmt_ci(ci, 2)


def model_label(spec) -> str:
    """The model's name for people: `default` -> `SmolLM2-135M-Instruct (default)`, a folder or file -> its name."""
    from crosstune.models.loading import DEFAULT_GGUF, DEFAULT_MODEL

    if spec in (None, "", DEFAULT_MODEL):
        return f"{DEFAULT_GGUF.split('.')[0]} ({DEFAULT_MODEL})"
    name = Path(str(spec)).name
    return name if name == str(spec) else f"{name} ({spec})"


def condition_name(label: str) -> str:
    """`en:answer_in:zh` -> `en→zh`; `zh+es+vi:none` -> `zh/es/vi (native)`; `all:none` -> `native`."""
    prompts, directive, *target = label.split(":")
    if directive == "none":
        return "native" if prompts == "all" else f"{prompts.replace('+', '/')} (native)"
    return f"{prompts.replace('+', '/')}→{target[0] if target else '?'}"


def main_rows(rep: Report) -> tuple[list[str], list[list[str]]]:
    """One row per arm: status, training, held-out loss, per task Acc/Con3/AC3 (95% CI), fidelity per condition."""
    head = ["arm", *rep.meta.get("sweep", {}).keys(), "status", "rows", "steps", "train loss", "held-out loss"]
    head += [f"{t} {m}" for _, t in rep.tasks for m in ("Acc", "Con3", "AC3")]
    head += [f"fidelity {condition_name(g)}" for _, g in rep.generations]
    head += [f"{s} {condition_name(g)} (judge, %)" for s, g in rep.judges]
    rows = []
    before = rep.heldout_before()
    for arm in rep.arms:
        tr = rep.train(arm) or {}
        r = [arm["arm"] + (" (baseline)" if arm["arm"] == rep.baseline else "")]
        r += [str(arm["params"].get(k, "")) for k in rep.meta.get("sweep", {})]
        untrained = not arm.get("model_stage") and arm["status"] == "ok"
        heldout = _f(tr.get("eval_loss")) if tr else _f(before["all"]) if before and untrained else _f(None)
        r += [arm["status"], str(arm.get("train_rows", "") or ""), str(tr.get("steps", "") or ""),
              _f(tr.get("final_loss")), heldout]
        for suite, task in rep.tasks:
            t = rep.task(arm, suite, task) or {}
            ci = t.get("ci95", {})
            r += [_f(t.get("acc")) + _ci(rep.accuracy_ci(arm, suite, task)),
                  _f(t.get("con3")) + _ci(ci.get("consistency_3")), _f(t.get("ac3")) + _ci(ci.get("AC3_3"))]
        for suite, g in rep.generations:
            gen = rep.generation(arm, suite, g) or {}
            r.append(_f(gen.get("overall")) + _ci(rep.fidelity_ci(arm, suite, g)))
        for suite, g in rep.judges:
            j = rep.judge(arm, suite, g) or {}
            r.append(_f(j.get("score"), 1) + _ci100(j.get("ci95")) if j else "–")
        rows.append(r)
    return head, rows


def language_rows(rep: Report, suite: str, task: str) -> tuple[list[str], list[list[str]]]:
    langs: list[str] = []
    for arm in rep.arms:
        langs += [x for x in (rep.task(arm, suite, task) or {}).get("languages", []) if x not in langs]
    rows = []
    for arm in rep.arms:
        t = rep.task(arm, suite, task)
        if t:
            rows.append([arm["arm"], *[_f(t["language_acc"].get(x)) + _ci(rep.accuracy_ci(arm, suite, task, x))
                                       for x in langs]])
    return ["arm", *langs], rows


def category(label: str, lang: str) -> str:
    """A column/bar name for one expected language of one generation condition: `en→zh`, or `zh` (native)."""
    prompts, directive = label.split(":")[:2]
    return lang if directive == "none" else f"{prompts.replace('+', '/')}→{lang}"


def fidelity_rows(rep: Report, suite: str) -> tuple[list[str], list[list[str]]]:
    """One row per arm, one column per (condition, expected language) of a generation suite."""
    labels = [g for s, g in rep.generations if s == suite]
    cols: list[tuple[str, str]] = []
    for arm in rep.arms:
        for label in labels:
            per = (rep.generation(arm, suite, label) or {}).get("per_language") or {}
            cols += [(label, x) for x in per if (label, x) not in cols]
    rows = []
    for arm in rep.arms:
        cells = []
        for label, x in cols:
            g = rep.generation(arm, suite, label)
            rate = ((g or {}).get("per_language", {}).get(x) or {}).get("rate")
            cells.append(_f(rate, 2) + (_ci(rep.fidelity_ci(arm, suite, label, x)) if rate is not None else ""))
        if any(c != "–" for c in cells):
            rows.append([arm["arm"], *cells])
    return ["arm", *[category(label, x) for label, x in cols]], rows


def heldout_rows(rep: Report) -> tuple[list[str], list[list[str]]]:
    langs: list[str] = []
    for arm in rep.arms:
        tr = rep.train(arm) or {}
        langs += [x for x in tr.get("eval_loss_by_language", {}) if x not in langs]
    rows = []
    untuned = rep.heldout_before()
    for arm in rep.arms:
        tr = rep.train(arm)
        if tr and tr.get("eval_loss_by_language"):
            before, after = tr.get("initial_eval_loss_by_language", {}), tr["eval_loss_by_language"]
            rows.append([arm["arm"], *[f"{_f(before.get(x))} → {_f(after.get(x))}" for x in langs]])
        elif untuned and not arm.get("model_stage") and arm["status"] == "ok":
            rows.append([arm["arm"], *[_f(untuned.get(x)) for x in langs]])
    return ["arm", *langs], rows


def _p(p: float) -> str:
    return fmt_p(p) + (" *" if p < 0.05 else "")


def significance_rows(sig: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per (task, arm): the overall difference, its interval and test, then each language's difference
    (McNemar p; * below 0.05). A difference of runs that agree on every pair says so."""
    langs: list[str] = []
    for s in sig:
        langs += [x for x in s.get("per_language", {}) if x not in langs]
    head = ["task", "arm", "Δ vs baseline", "95% CI", "McNemar p", "pairs (items)", *[f"Δ {x} (p)" for x in langs]]
    rows = []
    for s in sig:
        per = s.get("per_language", {})
        same = " (no pair differs)" if s.get("no_pair_differs") else ""
        rows.append([s["task"], s["arm"], f"{s['delta']:+.3f}{same}", fmt_ci(s["ci95"], 2, signed=True).strip(),
                     _p(s["p"]) + (" (clustered)" if "clustered" in s.get("test", "") else ""),
                     f"{s['n']} ({s.get('n_items', s['n'])})",
                     *[f"{per[x]['delta']:+.3f} ({_p(per[x]['p'])})" if x in per else "–" for x in langs]])
    return head, rows


def judge_rows(rep: Report, suite: str, label: str) -> tuple[list[str], list[list[str]]]:
    """One row per judged arm: score vs the reference per language and overall (95% CI), flip rate, failures."""
    langs: list[str] = []
    for arm in rep.arms:
        langs += [x for x in ((rep.judge(arm, suite, label) or {}).get("per_language") or {}) if x not in langs]
    head = ["arm", *langs, "all", "pairs", "order flips", "parse failures"]
    rows = []
    for arm in rep.arms:
        j = rep.judge(arm, suite, label)
        if not j:
            continue
        per = j.get("per_language") or {}
        rows.append([arm["arm"], *[_f(per[x]["score"], 1) + _ci100(per[x].get("ci95")) if x in per else "–"
                                   for x in langs],
                     _f(j["score"], 1) + _ci100(j.get("ci95")), str(j["pairs"]), _f(j.get("flip_rate"), 2),
                     str(j["parse_failures"])])
    return head, rows


def _ci100(ci) -> str:
    return f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else ""


def failure_rows(rep: Report) -> tuple[list[str], list[list[str]]]:
    rows = []
    seen = set()
    for arm in rep.arms:
        for name, st in arm["stages"].items():
            if st["status"] != "ok" and name not in seen:
                seen.add(name)
                rows.append([name, st["status"], st.get("error", ""), st.get("dir", "")])
    return ["stage", "status", "error", "folder"], rows


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |"
                                                                               for r in esc)]) + "\n"
