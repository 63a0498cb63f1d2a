"""Two ways to answer a multiple-choice item on any backend, each a (requests, score) pair:

- `GenerateScorer`: SeaEval's protocol. Greedy generation, then the TiGEr heuristic (or the CrossIn fork's)
  maps the text to a choice; its random fallback is seeded per item.
- `LoglikScorer`: lm-eval's protocol. The option with the highest summed log-probability after the prompt.
"""

from __future__ import annotations

from crosstune.eval.extract import EXTRACTORS, item_rng
from crosstune.eval.tasks import Item, TaskConfig
from crosstune.models.backends.base import GenerateRequest, LoglikRequest, LoglikResult


class GenerateScorer:
    mode = "generate"

    def __init__(self, cfg: TaskConfig, extractor: str = "seaeval", seed: int = 0, chat: bool = True,
                 max_new_tokens: int | None = None):
        if extractor not in EXTRACTORS:
            raise ValueError(f"extractor {extractor!r}: expected one of {list(EXTRACTORS)}")
        self.cfg, self.extractor, self.seed, self.chat = cfg, extractor, seed, chat
        self.max_new_tokens = max_new_tokens or cfg.generation.max_new_tokens

    def settings(self) -> dict:
        return {"extractor": self.extractor, "seed": self.seed, "chat_template": self.chat,
                "max_new_tokens": self.max_new_tokens, "stop": self.cfg.generation.stop}

    def requests(self, item: Item) -> list[GenerateRequest]:
        prompt = [{"role": "user", "content": item.prompt}] if self.chat else item.prompt
        return [GenerateRequest(prompt, self.max_new_tokens, tuple(self.cfg.generation.stop), 0.0, self.seed)]

    def score(self, item: Item, outputs: list[str]) -> dict:
        rng = item_rng(self.seed, self.cfg.name, item.id, item.language)
        choice, path = EXTRACTORS[self.extractor](list(item.choices), outputs[0], rng)
        return {"output": outputs[0], "prediction": choice, "pred_index": item.choices.index(choice),
                "extraction": path}


def loglik_target(cfg: TaskConfig, choice: str) -> str:
    target = {"choice": choice, "label": choice[0:3], "text": choice[4:]}[cfg.loglik.target]
    return cfg.loglik.delimiter + target


class LoglikScorer:
    mode = "loglik"

    def __init__(self, cfg: TaskConfig):
        self.cfg = cfg

    def settings(self) -> dict:
        return {"target": self.cfg.loglik.target, "delimiter": self.cfg.loglik.delimiter}

    def requests(self, item: Item) -> list[LoglikRequest]:
        return [LoglikRequest(item.prompt, loglik_target(self.cfg, c)) for c in item.choices]

    def score(self, item: Item, results: list[LoglikResult]) -> dict:
        scores = [r.logprob for r in results]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))  # first maximum, as numpy's argmax
        return {"logprobs": [round(s, 6) for s in scores], "prediction": item.choices[best], "pred_index": best,
                "extraction": "loglik"}
