"""The Language Confusion Benchmark as an experiment suite (`kind: lcb`): crosstune.eval.lcb's tasks per arm, with
each task's table (crosstune.report.fidelity), LPR/WPR of both protocols as results columns."""

from __future__ import annotations

from pathlib import Path

from crosstune.errors import CrosstuneError
from crosstune.eval import lcb_reference
from crosstune.eval.lcb import decoding_for, is_lcb_task, load_prompts, run_lcb_tasks
from crosstune.eval.tasks import load_task
from crosstune.report.fidelity import write_lcb_reports


class LcbSuite:
    """LCB in a `crosstune run` experiment, next to its other suites (the suite kind `lcb`):

    ```yaml
    eval:
      lcb: {kind: lcb, settings: {tasks: [lcb_crosslingual], languages: [zh, es], limit: 20}}
    ```

    Settings as `eval run`'s options (`decoding: lcb|greedy`, `data_root`, default $CROSSTUNE_DATA). Prompts, word
    list and extra are checked when the experiment is planned. Metrics (results.csv columns `<suite>.<name>`): per
    task, LCB's `(all, all)` LPR/WPR by the reference protocol (`<task>.lpr`, `<task>.wpr`) and by crosstune's
    (`<task>.crosstune_lpr`, `<task>.crosstune_wpr`). Under a multi-process launch every process generates its
    share (`data_parallel`; crosstune.eval.lcb) and process 0 scores."""

    data_parallel = True  # crosstune.experiments.runner runs it on every process of a launch

    def __init__(self, tasks: list[str] | tuple[str, ...] = ("lcb_monolingual", "lcb_crosslingual"),
                 languages: list[str] | None = None, limit: int | None = None, decoding: str = "lcb",
                 max_new_tokens: int | None = None, batch_size: int = 16, lid: str = "fasttext",
                 words: str | None = None, data_root: str | None = None):
        not_lcb = [t for t in tasks if not is_lcb_task(t)]
        if not tasks or not_lcb:
            raise CrosstuneError(f"tasks {not_lcb or list(tasks)}: expected LCB tasks (lcb_monolingual, "
                                 "lcb_crosslingual or a task YAML of kind language_confusion)")
        self.tasks, self.languages, self.limit = list(tasks), languages, limit
        self.options = {"decoding": decoding, "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                        "lid": lid, "words": words, "data_root": data_root}
        self.prompts = {}
        for name in self.tasks:
            cfg = load_task(name)
            decoding_for(cfg, decoding)
            langs = [x for x in languages if x in cfg.languages] if languages else None
            self.prompts[cfg.name] = load_prompts(cfg, langs, limit, data_root)
        self.words = lcb_reference.resolve_words(words, data_root)
        lcb_reference.check_extra({p["language"] for ps in self.prompts.values() for p in ps})

    def inputs(self) -> dict:
        """Every prompt (and the word list's digest): an edited test set re-runs the suite."""
        from crosstune.hashing import file_sha256

        return {"prompts": {t: [[p["source"], p["language"], p["id"], p["prompt"]] for p in ps]
                            for t, ps in self.prompts.items()},
                "words": file_sha256(self.words)}

    def run(self, model: str, out_dir: Path, seed: int) -> dict:
        results = run_lcb_tasks(model, self.tasks, out_dir, languages=self.languages, limit=self.limit, seed=seed,
                                **{**self.options, "words": self.words})
        from crosstune.distributed import state

        if state().is_main:
            write_lcb_reports(out_dir)
        metrics = {}
        for name, s in results.items():
            for protocol, prefix in (("lcb_reference", ""), ("lcb_crosstune", "crosstune_")):
                row = next(r for r in s[protocol] if r["source"] == "all" and r["language"] == "all")
                metrics.update({f"{name}.{prefix}{k}": row[k] for k in ("lpr", "wpr") if row[k] is not None})
        return {"metrics": metrics, "tables": {name: f"{name}/table.md" for name in results}}
