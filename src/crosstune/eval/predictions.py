"""Score raw model outputs given in SeaEval's log row format, one summary per (model, eval mode).

Rows: `{"task", "model", "eval_mode", "prompt_index", "id", "model_prediction": {"English": str, ...}}`, joined on
`id` with the task's data for choices and gold answers. As SeaEval does, five-shot outputs keep their first line.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

from crosstune.data.io import read_rows
from crosstune.errors import CrosstuneError, where
from crosstune.eval.extract import get_extractor, item_rng
from crosstune.eval.metrics import EPS, summarize
from crosstune.eval.tasks import TaskConfig, load_items


def _group_rows(path: Path, task: str) -> dict[tuple[str, str], dict[str, tuple[str, dict]]]:
    groups: dict[tuple[str, str], dict[str, tuple[str, dict]]] = defaultdict(dict)
    for line, row in read_rows(path):
        if row.get("task", task) != task:
            continue
        for key in ("id", "model_prediction"):
            if key not in row:
                raise CrosstuneError(f"{where(path, line, key)}: missing; expected SeaEval prediction rows")
        if not isinstance(row["model_prediction"], dict):
            raise CrosstuneError(f"{where(path, line, 'model_prediction')}: expected an object {{language: text}}")
        group = (str(row.get("model", "model")), str(row.get("eval_mode", "zero_shot")))
        if str(row["id"]) in groups[group]:
            raise CrosstuneError(f"{where(path, line, 'id')}: duplicate id {row['id']!r} for {'|'.join(group)}")
        groups[group][str(row["id"])] = (where(path, line), row)
    if not groups:
        raise CrosstuneError(f"{path}: no prediction rows for task {task!r}")
    return groups


def score_predictions(path: str | Path, cfg: TaskConfig, extractor: str = "seaeval", seed: int = 0,
                      n_boot: int = 1000, eps: float = EPS, data_root=None) -> tuple[dict, list[dict]]:
    """Return ({"MODEL|EVAL_MODE": summary}, per-item extraction records)."""
    path = Path(path)
    align = get_extractor(extractor, "extractor")
    name_to_tag = {name: tag for tag, name in cfg.languages.items()}
    items = {group[next(iter(group))].id: group for group in load_items(cfg, data_root=data_root)}
    summaries, records = {}, []
    for (model, mode), rows in _group_rows(path, cfg.name).items():
        names = list(next(iter(rows.values()))[1]["model_prediction"])  # SeaEval's language order
        preds, golds, paths = [], [], defaultdict(int)
        for item_id, (loc, row) in rows.items():
            if item_id not in items:
                raise CrosstuneError(f"{loc}: id {item_id!r} is not an item of task {cfg.name}")
            if list(row["model_prediction"]) != names and set(row["model_prediction"]) != set(names):
                raise CrosstuneError(f"{loc}: languages {sorted(row['model_prediction'])} differ from {sorted(names)}")
            pred, gold = {}, {}
            for name in names:
                if name not in name_to_tag:
                    raise CrosstuneError(f"{loc}: language {name!r} is not in task {cfg.name} ({list(name_to_tag)})")
                item = items[item_id][name_to_tag[name]]
                text = row["model_prediction"][name]
                if not isinstance(text, str):
                    raise CrosstuneError(f"{loc} field 'model_prediction.{name}': expected a string")
                if mode == "five_shot":
                    text = text.split("\n")[0]
                rng = item_rng(seed, model, mode, cfg.name, item_id, name)
                pred[name], how = align(list(item.choices), text, rng)
                gold[name] = item.answer
                paths[how] += 1
                records.append({"model": model, "eval_mode": mode, "id": item_id, "language": name,
                                "prediction": pred[name], "gold": gold[name], "extraction": how})
            preds.append(pred)
            golds.append(gold)
        summary = summarize(preds, golds, names, n_boot=n_boot, seed=seed, eps=eps)
        summary["extraction_paths"] = dict(sorted(paths.items()))
        summary["n_items_in_task"] = len(items)
        summaries[f"{model}|{mode}"] = summary
    return summaries, records


class _RecordingRng:
    """Stands in for `random`: remembers the candidates of the one random pick an extraction may make."""

    def __init__(self):
        self.candidates: list[str] | None = None

    def choice(self, seq):
        self.candidates = list(seq)
        return seq[0]


def fallback_expectation(path: str | Path, cfg: TaskConfig, extractor: str = "seaeval", s: int = 3,
                         n_draws: int = 2000, seed: int = 0) -> dict:
    """For each "MODEL|EVAL_MODE": the mean and SD of Accuracy, Consistency_s and AC3_s over the extractor's random
    fallback (empty output, tie, no match), by simulation. An unseeded score (SeaEval's) is one draw of this."""
    import numpy as np

    align = get_extractor(extractor, "extractor")
    name_to_tag = {name: tag for tag, name in cfg.languages.items()}
    items = {group[next(iter(group))].id: group for group in load_items(cfg)}
    rng = np.random.default_rng(seed)
    out = {}
    for (model, mode), rows in _group_rows(Path(path), cfg.name).items():
        names = list(next(iter(rows.values()))[1]["model_prediction"])
        acc = np.zeros((n_draws, len(rows), len(names)), dtype=bool)
        labels = np.zeros((n_draws, len(rows), len(names)), dtype=np.int64)
        codes: dict[str, int] = {}
        n_random = 0
        for i, (item_id, (_, row)) in enumerate(rows.items()):
            for j, name in enumerate(names):
                item = items[item_id][name_to_tag[name]]
                text = row["model_prediction"][name]
                text = text.split("\n")[0] if mode == "five_shot" else text
                rec = _RecordingRng()
                choice, _ = align(list(item.choices), text, rec)
                cands = rec.candidates or [choice]
                n_random += rec.candidates is not None
                pick = rng.integers(0, len(cands), n_draws)
                acc[:, i, j] = np.array([c == item.answer for c in cands])[pick]
                labels[:, i, j] = np.array([codes.setdefault(c[0:3], len(codes)) for c in cands])[pick]
        a = acc.mean(axis=(1, 2))
        con = np.zeros(n_draws)
        combos = list(itertools.combinations(range(len(names)), s))
        for combo in combos:
            same = np.ones((n_draws, len(rows)), dtype=bool)
            for j in combo[1:]:
                same &= labels[:, :, j] == labels[:, :, combo[0]]
            con += same.mean(axis=1)
        con /= len(combos)
        f = 2 * a * con / (a + con + EPS)
        out[f"{model}|{mode}"] = {"random_decisions": int(n_random), "n_draws": n_draws,
                                  "mean": {"overall_acc": float(a.mean()), f"consistency_score_{s}": float(con.mean()),
                                           f"AC3_{s}": float(f.mean())},
                                  "sd": {"overall_acc": float(a.std()), f"consistency_score_{s}": float(con.std()),
                                         f"AC3_{s}": float(f.std())}}
    return out
