"""Block 2: reverse instruction generation. For each passage the backward model writes `candidates` English
instructions (the paper's prompt, sampled with seeds seed..seed+N-1); each parsed candidate becomes a row
(user: instruction in English, assistant: the passage). Candidates that are empty, echo the passage, are not
English, or repeat another candidate are dropped with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import islice

from crosstune.data.blocks import Block, ExclusionSink, Row
from crosstune.data.langid import get_detector, same_base_language
from crosstune.data.schema import Example, Message
from crosstune.data.xinstruct.config import GenerateConfig, fill
from crosstune.data.xinstruct.model import ModelHandle

_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:improved\s+)?(?:english\s*)?(?:instruction|prompt|question)?\s*[:：]\s*",
                    re.IGNORECASE)  # "Instruction:", "### English Instruction:", "English:", ":"
_SPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")


def parse_instruction(raw: str) -> str:
    """The first paragraph of a model answer, without an echoed "Instruction:" label, quotes or extra spaces."""
    text = raw.strip()
    text = _LABEL.sub("", text, count=1).strip()
    text = text.split("\n\n", 1)[0].split("###", 1)[0]
    text = _SPACE.sub(" ", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”`":
        text = text[1:-1].strip()
    return text


def overlap(instruction: str, passage: str, n: int = 8) -> float:
    """Share of the instruction's character n-grams (lower case, no spaces or punctuation) found in the passage:
    1.0 when the model copied the passage instead of asking for it."""
    a, b = _NON_WORD.sub("", instruction.lower()), _NON_WORD.sub("", passage.lower())
    if len(a) < n:
        return 1.0 if a and a in b else 0.0
    grams = {a[i:i + n] for i in range(len(a) - n + 1)}
    return sum(g in b for g in grams) / len(grams)


def batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


class CandidateChecks:
    """Why a parsed instruction cannot be used (None: it can)."""

    def __init__(self, cfg: GenerateConfig):
        self.cfg = cfg
        self.detector = get_detector("pycld2") if cfg.english else None

    def __call__(self, text: str, passage: str, seen: set[str]) -> tuple[str, str] | None:
        cfg = self.cfg
        if not text:
            return "empty", "the model returned no instruction"
        if len(text) < cfg.min_chars:
            return "too_short", f"{len(text)} chars < {cfg.min_chars}: {text!r}"
        if len(text) > cfg.max_chars:
            return "too_long", f"{len(text)} chars > {cfg.max_chars}"
        share = overlap(text, passage)
        if share > cfg.max_overlap:
            return "repeats_passage", f"{share:.0%} of its 8-grams are in the passage: {text[:80]!r}"
        if self.detector is not None:
            tag, conf = self.detector.detect(text)
            if tag is not None and not same_base_language(tag, "en"):
                return "not_english", f"detected {tag} ({conf:.2f}): {text[:80]!r}"
        if text.lower() in seen:
            return "duplicate_candidate", text[:80]
        return None


class Generate(Block):
    name = "generate"

    def __init__(self, cfg: GenerateConfig, template: str, model: ModelHandle, batch_size: int,
                 checks: CandidateChecks | None = None, progress=None):
        super().__init__()
        self.cfg, self.template, self.model, self.batch_size = cfg, template, model, batch_size
        self.check = checks or CandidateChecks(cfg)
        self.progress = progress  # callable(n) advancing a progress bar, or None
        self.records: list[dict] = []  # every candidate: raw answer, parsed instruction, why it was dropped

    def requests(self, row: Row):
        prompt = fill(self.template, text=row.example.response.content)
        return [self.model.request(prompt, self.cfg.max_new_tokens, self.cfg.temperature, self.cfg.seed + j,
                                   self.cfg.stop) for j in range(self.cfg.candidates)]

    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        """One model call per `batch_size` passages (split over the processes of a launch: `ModelHandle`)."""
        n = self.cfg.candidates
        chunks = list(batches(rows, self.batch_size))
        groups = [[r for row in chunk for r in self.requests(row)] for chunk in chunks]
        advance = (lambda i: self.progress(len(chunks[i]))) if self.progress else None
        answers = self.model.generate_groups(groups, advance, self.name)
        for chunk, texts in zip(chunks, answers):
            for i, row in enumerate(chunk):
                self.n_in += 1
                yield from self._candidates(row, texts[i * n:(i + 1) * n], sink)

    def _candidates(self, row: Row, raws: list[str], sink: ExclusionSink) -> Iterator[Row]:
        passage = row.example.response
        seen: set[str] = set()
        kept = 0
        for j, raw in enumerate(raws):
            self.stats["candidates"] += 1
            text = parse_instruction(raw)
            cid = f"{row.example.id}/c{j}"
            verdict = self.check(text, passage.content, seen)
            self.records.append({"id": cid, "language": passage.language, "raw": raw, "instruction": text,
                                 "dropped": verdict[0] if verdict else None})
            if verdict is not None:
                reason, detail = verdict
                self.stats[f"dropped:{reason}"] += 1
                sink.add(cid, reason, self.name, detail)
                continue
            seen.add(text.lower())
            kept += 1
            self.n_out += 1
            meta = {**row.example.meta, "candidate": j, "raw_instruction": raw}
            ex = Example(id=cid, messages=[Message("user", text, "en"), Message("assistant", passage.content,
                                                                                  passage.language)], meta=meta)
            yield Row(ex, (("user", text, "en"), ("assistant", passage.content, passage.language or "")))
        if not kept:
            self.stats["passages_without_candidate"] += 1
