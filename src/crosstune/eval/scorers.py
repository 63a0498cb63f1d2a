"""How an item is answered on any backend, one (requests, score) pair per task kind and method:

- `LoglikScorer` (multiple choice): lm-eval's protocol. Summed option log-probability after the prompt; also
  lm-eval's acc_norm (divided by the option's length in characters). `loglik.select` picks the prediction.
- `GenerateScorer` (multiple choice): SeaEval's protocol. Greedy generation, then the TiGEr heuristic (or the CrossIn
  fork's) maps the text to an option; its random fallback is seeded per item.
- `AnswerScorer` (generation): greedy generation, then a number (MGSM) or a short span (EM / F1) is extracted.
- `ClozeScorer` (cloze): ranks the candidate set by log-likelihood; the full ranking is kept for RankC.
Every request is built by `crosstune.models.prompting.Prompter` with the run's template: token ids from the one
renderer for a local model (training's BOS rule and prompt), text or messages for a server.
Each scored row carries `key` (what cross-lingual agreement compares: the option index, or the number) and `correct`.
"""

from __future__ import annotations

from crosstune.errors import CrosstuneError
from crosstune.eval import answers
from crosstune.eval.extract import get_extractor, item_rng
from crosstune.eval.tasks import Item, TaskConfig, extraction
from crosstune.eval.options import labelled
from crosstune.models.backends.base import GenerateRequest, LoglikRequest, LoglikResult
from crosstune.models.prompting import Prompter


class _Base:
    mode = ""

    def __init__(self, cfg: TaskConfig, template: str):
        self.cfg, self.render = cfg, Prompter(template)

    def bind(self, backend) -> "_Base":
        self.render.bind(backend)
        return self

    def settings(self) -> dict:
        return {"template": self.render.resolved}

    def _user(self, item: Item) -> list[dict]:
        return self.render.user(item.prompt)

    def sent(self, request) -> str:
        """The text the model received (rendered with the run's template, special tokens included): a generation
        prompt, or a log-likelihood context (a whole-sentence cloze request: its filled sentence)."""
        prompt = getattr(request, "prompt", None)
        if prompt is None:
            whole = getattr(self, "rank_by", "").startswith("sentence_mean")
            prompt = (request.context + request.continuation) if whole else request.context
        if isinstance(prompt, tuple):
            return self.render.tok.decode(list(prompt))
        return prompt if isinstance(prompt, str) else str(prompt)


class GenerateScorer(_Base):
    mode = "generate"

    def __init__(self, cfg: TaskConfig, extractor: str | None = None, seed: int = 0, chat: bool = True,
                 max_new_tokens: int | None = None, template: str | None = None):
        super().__init__(cfg, template or ("auto" if chat else "raw"))
        extractor = extractor or (cfg.extract if cfg.extract not in (None, "number", "span") else "seaeval")
        self.align = get_extractor(extractor, "extractor")  # a built-in or a user's package.module:function
        self.extractor, self.seed = extractor, seed
        self.max_new_tokens = max_new_tokens or cfg.generation.max_new_tokens

    def settings(self) -> dict:
        return {"extractor": self.extractor, "seed": self.seed, "template": self.render.resolved,
                "max_new_tokens": self.max_new_tokens, "stop": self.cfg.generation.stop}

    def requests(self, item: Item) -> list[GenerateRequest]:
        return [GenerateRequest(self.render.generate(self._user(item)), self.max_new_tokens,
                                tuple(self.cfg.generation.stop), 0.0, self.seed)]

    def score(self, item: Item, outputs: list[str]) -> dict:
        rng = item_rng(self.seed, self.cfg.name, item.id, item.language)
        shown = labelled(item.choices)  # the extractor reads "(X) text" labels
        choice, path = self.align(shown, outputs[0], rng)
        idx = shown.index(choice)
        return {"output": outputs[0], "prediction": item.choices[idx], "pred_index": idx, "extraction": path,
                "key": idx, "correct": idx == item.answer_index}


def _argmax(scores: list[float]) -> int:
    return max(range(len(scores)), key=lambda i: (scores[i], -i))  # first maximum, as numpy's argmax


class LoglikScorer(_Base):
    mode = "loglik"

    def __init__(self, cfg: TaskConfig, template: str = "raw"):
        super().__init__(cfg, template)

    def settings(self) -> dict:
        return {"continuation": self.cfg.loglik.continuation, "delimiter": self.cfg.loglik.delimiter,
                "select": self.cfg.loglik.select, "template": self.render.resolved}

    def requests(self, item: Item) -> list[LoglikRequest]:
        return [LoglikRequest(*self.render.score(self._user(item), c)) for c in item.continuations]

    def score(self, item: Item, results: list[LoglikResult]) -> dict:
        scores = [r.logprob for r in results]
        cut = len(self.cfg.loglik.delimiter)  # lm-eval acc_norm: per character of the option, delimiter excluded
        norm = [s / max(len(c) - cut, 1) for s, c in zip(scores, item.continuations)]
        best, best_norm = _argmax(scores), _argmax(norm)
        pick = best if self.cfg.loglik.select == "sum" else best_norm
        return {"logprobs": [round(s, 6) for s in scores], "prediction": item.choices[pick], "pred_index": pick,
                "pred_index_sum": best, "pred_index_norm": best_norm, "extraction": "loglik", "key": pick,
                "correct": pick == item.answer_index, "correct_norm": best_norm == item.answer_index}


class AnswerScorer(_Base):
    """Generation tasks: a number or a short span, extracted from greedy output."""

    mode = "generate"

    def __init__(self, cfg: TaskConfig, template: str | None = None, max_new_tokens: int | None = None):
        super().__init__(cfg, template or cfg.template)
        self.kind = extraction(cfg)
        self.max_new_tokens = max_new_tokens or cfg.generation.max_new_tokens

    def settings(self) -> dict:
        return {"extract": self.kind, "template": self.render.resolved, "max_new_tokens": self.max_new_tokens,
                "stop": self.cfg.generation.stop}

    def requests(self, item: Item) -> list[GenerateRequest]:
        return [GenerateRequest(self.render.generate(self._user(item)), self.max_new_tokens,
                                tuple(self.cfg.generation.stop), 0.0, 0)]

    def score(self, item: Item, outputs: list[str]) -> dict:
        out = outputs[0]
        if self.kind == "number":
            pred, how = answers.extract_number(out)
            ok = any(answers.numbers_equal(pred, g) for g in item.answers)
            return {"output": out, "prediction": pred, "extraction": how, "key": pred if pred is not None else
                    f"none:{item.language}", "correct": ok, "pred_index": -1}
        pred, em, f1 = answers.span_scores(out, list(item.answers), item.language)
        # spans in different languages cannot be matched to each other: two languages agree when both are right
        return {"output": out, "prediction": pred, "extraction": "span", "exact_match": em, "f1": round(f1, 6),
                "key": "gold" if em else f"wrong:{item.language}", "correct": bool(em), "pred_index": -1}


class ClozeScorer(_Base):
    """Rank the candidates. `sentence_mean` (RankC, Qi et al.'s decoder-model rule) scores the whole filled raw
    sentence by its mean token log-probability, every token conditioned on the tokenizer's document start (its BOS,
    else lm-eval's prefix token: models/render.py `score_ids`); `sentence_mean_authors` is their main.py exactly:
    the tokenizer's own encoding with its first token as context. `sum`/`norm` score only the candidate and what
    follows, after the prompt rendered with the run's template."""

    mode = "cloze"
    EMPTY_CONTEXT = {"sentence_mean": "start", "sentence_mean_authors": "authors"}

    def __init__(self, cfg: TaskConfig, template: str | None = None):
        super().__init__(cfg, template or cfg.template)
        self.rank_by = cfg.cloze.rank_by

    def settings(self) -> dict:
        return {"rank_by": self.rank_by, "template": self.render.resolved}

    def bind(self, backend) -> "ClozeScorer":
        super().bind(backend)
        if self.rank_by in self.EMPTY_CONTEXT:
            if self.render.tok is None:
                raise CrosstuneError(f"cloze.rank_by {self.rank_by} counts tokens with the model's tokenizer; this "
                                     "backend has none (use rank_by: sum or norm)")
            if self.render.resolved != "raw":
                raise CrosstuneError(f"cloze.rank_by {self.rank_by} scores whole raw sentences; got template "
                                     f"{self.render.resolved!r} (use template raw, or rank_by: sum or norm)")
        return self

    def _sentence_requests(self, item: Item) -> list[LoglikRequest]:
        rule = self.EMPTY_CONTEXT[self.rank_by]
        return [LoglikRequest(*self.render.score(self.render.user(""), item.prompt + c + item.suffix, rule))
                for c in item.continuations]  # delimiter + candidate

    def requests(self, item: Item) -> list[LoglikRequest]:
        if self.rank_by in self.EMPTY_CONTEXT:
            return self._sentence_requests(item)
        return [LoglikRequest(*self.render.score(self._user(item), c + item.suffix)) for c in item.continuations]

    def score(self, item: Item, results: list[LoglikResult]) -> dict:
        raw = [r.logprob for r in results]
        if self.rank_by in self.EMPTY_CONTEXT:
            counts = [len(r.continuation) for r in self._sentence_requests(item)]  # the scored tokens
            scores = [s / max(n, 1) for s, n in zip(raw, counts)]
        elif self.rank_by == "norm":
            scores = [s / max(len(c + item.suffix), 1) for s, c in zip(raw, item.choices)]
        else:
            scores = raw
        ranking = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return {"scores": [round(s, 6) for s in scores], "ranking": ranking, "prediction": item.choices[ranking[0]],
                "pred_index": ranking[0], "extraction": self.rank_by, "key": ranking[0],
                "correct": ranking[0] == item.answer_index}


def build_scorer(cfg: TaskConfig, mode: str | None = None, *, template: str | None = None, extractor: str | None = None,
                 seed: int = 0, max_new_tokens: int | None = None):
    """The scorer a task's kind and method call for; `mode` overrides a multiple-choice task's method."""
    if cfg.kind == "generation":
        return AnswerScorer(cfg, template, max_new_tokens)
    if cfg.kind == "cloze":
        return ClozeScorer(cfg, template)
    if (mode or cfg.method) == "generate":
        task_template = cfg.template if "template" in cfg.model_fields_set else "auto"  # one the task names wins
        return GenerateScorer(cfg, extractor, seed, max_new_tokens=max_new_tokens, template=template or task_template)
    return LoglikScorer(cfg, template or cfg.template)
