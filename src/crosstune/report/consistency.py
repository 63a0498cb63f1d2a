"""Markdown tables and figures for cross-lingual consistency results (one summary dict per task and mode)."""

from __future__ import annotations

from pathlib import Path

from crosstune.eval.intervals import fmt_ci


def _ci(summary: dict, key: str) -> str:
    """The summary's 95% interval of `key` (`ci95`: Wilson for accuracy, bootstrap for Con3/AC3)."""
    return fmt_ci((summary.get("ci95") or {}).get(key), 3)


def task_table(summary: dict, title: str = "") -> str:
    """One task: headline Acc / Con3 / AC3 with 95% intervals, per-language scores, position bias, RankC."""
    langs = summary["languages"]
    lines = [f"### {title or summary.get('task', '')} ({summary.get('mode', '')}, {summary['n_items']} items "
             f"x {len(langs)} languages)", ""]
    lines += ["| metric | value | 95% CI |", "|---|---|---|"]
    lines.append(f"| Accuracy | {summary['overall_acc']:.3f} |{_ci(summary, 'accuracy')} |")
    for key, name in (("acc_norm", "Accuracy (length-normalised)"), ("exact_match", "Exact match"), ("f1", "F1"),
                      ("rankc", "RankC")):
        if key in summary:
            lines.append(f"| {name} | {summary[key]:.3f} | |")
    if "consistency_score_3" in summary:
        lines.append(f"| Consistency_3 | {summary['consistency_score_3']:.3f} |{_ci(summary, 'consistency_3')} |")
        lines.append(f"| AC3_3 | {summary['AC3_3']:.3f} |{_ci(summary, 'AC3_3')} |")
        lines.append(f"| consistent and correct (s=3) | {summary['consistent_correct_3']:.3f} | |")
    s_max = len(langs)
    if s_max >= 2:
        lines.append(f"| Consistency_2 / _{s_max} | {summary['consistency_score_2']:.3f} / "
                     f"{summary[f'consistency_score_{s_max}']:.3f} | |")
    rules = (summary.get("ci95") or {}).get("rules")
    if rules:
        lines += ["", "95% CI: " + "; ".join(f"{k}: {v}" for k, v in rules.items()) + "."]
    per = summary.get("per_language", {})
    extra = [k for k in ("acc_norm", "exact_match", "f1") if all(k in per.get(lang, {}) for lang in langs)]
    lines += ["", "| | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    per_ci = (summary.get("ci95") or {}).get("per_language") or {}
    lines.append("| accuracy | " + " | ".join(f"{summary['language_acc'][lang]:.3f}{fmt_ci(per_ci.get(lang))}"
                                             for lang in langs) + " |")
    for k in extra:
        lines.append(f"| {k} | " + " | ".join(f"{per[lang][k]:.3f}" for lang in langs) + " |")
    agree = summary.get("agreement")
    if agree and len(langs) >= 2:
        lines += ["", "Answer agreement (share of items with the same answer in both languages):", "",
                  "| | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
        lines += [f"| {a} | " + " | ".join(f"{agree[a][b]:.2f}" for b in langs) + " |" for a in langs]
    bias = summary.get("position_bias")
    if bias:
        labels = sorted(set(bias["gold"]) | set(bias["predicted"]))
        lines += ["", "| label | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        lines.append("| predicted | " + " | ".join(str(bias["predicted"].get(x, 0)) for x in labels) + " |")
        lines.append("| gold | " + " | ".join(str(bias["gold"].get(x, 0)) for x in labels) + " |")
        lines.append("| AC3_3 of always-this-label | " + " | ".join(
            f"{bias['always_label_ac3'].get(x, 0):.3f}" for x in labels) + " |")
    if summary.get("extraction_paths"):
        lines += ["", "Extraction paths: " + ", ".join(f"{k} {v}" for k, v in summary["extraction_paths"].items())]
    return "\n".join(lines) + "\n"


def plot_position_bias(summary: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bias = summary["position_bias"]
    labels = sorted(set(bias["gold"]) | set(bias["predicted"]))
    x = range(len(labels))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar([i - 0.2 for i in x], [bias["predicted"].get(lab, 0) for lab in labels], 0.4, label="predicted")
    ax.bar([i + 0.2 for i in x], [bias["gold"].get(lab, 0) for lab in labels], 0.4, label="gold")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("answers (all languages)")
    ax.set_title(title or f"{summary.get('task', '')} {summary.get('mode', '')}: chosen labels", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})  # no version stamp: same input, same bytes
    plt.close(fig)


def plot_language_accuracy(summary: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = summary["languages"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(langs, [summary["language_acc"][lang] for lang in langs], color="tab:green")
    if summary.get("position_bias"):
        n_choices = len(summary["position_bias"]["gold"]) or 4
        ax.axhline(1 / n_choices, color="grey", ls="--", lw=1, label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"{summary.get('task', '')} {summary.get('mode', '')}: accuracy per language", fontsize=9)
    if summary.get("position_bias"):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_task_report(run_dir: Path, summary: dict) -> None:
    (run_dir / "table.md").write_text(task_table(summary), encoding="utf-8")
    if summary.get("position_bias"):
        plot_position_bias(summary, run_dir / "position_bias.png")
    plot_language_accuracy(summary, run_dir / "language_acc.png")
