"""Block 3: refinement. A judge grades each (instruction, passage) pair good / acceptable / bad; the configured
action per grade keeps, rewrites or drops it; rewritten pairs are graded again in the next round. Grader answers
that cannot be parsed are counted per reason (empty, no grade word, several grades) and follow `off_format`;
`mode: loglik` instead scores each grade word as the answer's continuation and takes the most likely (never
off-format; the three log-probabilities go to `grades.jsonl`). Finally at most `per_passage` candidates of each passage survive, best grade first."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from crosstune.data.blocks import Block, ExclusionSink, Row
from crosstune.data.langid import get_detector, same_base_language
from crosstune.data.schema import Message
from crosstune.data.xinstruct.config import RefineConfig, fill
from crosstune.data.xinstruct.generate import CandidateChecks, batches, parse_instruction
from crosstune.data.xinstruct.model import ModelHandle
from crosstune.languages import language_name

GRADES = ("good", "acceptable", "bad")
RANK = {g: i for i, g in enumerate(GRADES)}
_GRADE_WORD = re.compile(r"\b(good|acceptable|bad)\b")
_LEAD = re.compile(r"^[\s#*\"'`:\-]*(?:grade\s*[:：]?\s*)?[\s*\"'`]*")


def parse_grade(raw: str) -> tuple[str | None, str | None]:
    """(grade, None) or (None, off-format reason). The first word decides when it is a grade; otherwise the
    answer must name exactly one grade."""
    text = raw.strip().lower()
    if not text:
        return None, "empty"
    lead = _LEAD.sub("", text, count=1)
    first = _GRADE_WORD.match(lead)
    if first:
        return first.group(1), None
    found = set(_GRADE_WORD.findall(text))
    if len(found) == 1:
        return found.pop(), None
    return None, ("ambiguous" if found else "no_grade")


def _pair(row: Row) -> tuple[str, str, str]:
    ex = row.example
    return ex.instruction.content, ex.response.content, ex.response.language or ex.meta.get("language", "")


def passage_id(row: Row) -> str:
    return row.example.id.rsplit("/c", 1)[0]


class Refine(Block):
    name = "refine"

    def __init__(self, cfg: RefineConfig, prompts: dict[str, str], model: ModelHandle, checks: CandidateChecks,
                 batch_size: int, progress=None):
        super().__init__()
        self.cfg, self.prompts, self.model, self.checks = cfg, prompts, model, checks
        self.batch_size, self.progress = batch_size, progress
        self.grades_per_round: list[dict[str, int]] = []
        self.records: list[dict] = []  # every grader answer: row, round, raw text, parsed grade or off-format reason

    # ---- model calls ---------------------------------------------------------------------------------------
    def _grade_prompt(self, row: Row) -> str:
        instr, resp, lang = _pair(row)
        return fill(self.prompts["grade"], instruction=instr, response=resp, language=language_name(lang))

    def _judge(self, rows: list[Row], rnd: int) -> list[dict]:
        """Per row: {raw, grade, off_format} (+ `logprobs` per grade word in loglik mode); one model call per
        `batch_size` rows (split over the processes of a launch: `ModelHandle`)."""
        chunks = list(batches(rows, self.batch_size))
        advance = (lambda i: self.progress(len(chunks[i]))) if self.progress else None
        what = f"{self.name} round {rnd}"
        if self.cfg.mode == "loglik":
            groups = [[r for row in chunk for r in self.model.loglik_requests(self._grade_prompt(row), GRADES)]
                      for chunk in chunks]
            return [a for res in self.model.loglikelihood_groups(groups, advance, what) for a in _best(res)]
        groups = [[self.model.request(self._grade_prompt(row), self.cfg.max_new_tokens) for row in chunk]
                  for chunk in chunks]
        out: list[dict] = []
        for raw in (raw for raws in self.model.generate_groups(groups, advance, what) for raw in raws):
            grade, problem = parse_grade(raw)
            out.append({"raw": raw, "grade": grade, "off_format": problem})
        return out

    def _rewrite(self, rows: list[Row], key: str, max_new: int) -> list[str]:
        groups = []
        for chunk in batches(rows, self.batch_size):
            reqs = []
            for row in chunk:
                instr, resp, lang = _pair(row)
                prompt = fill(self.prompts[key], instruction=instr, response=resp, language=language_name(lang))
                reqs.append(self.model.request(prompt, max_new))
            groups.append(reqs)
        return [t for texts in self.model.generate_groups(groups, what=f"{self.name} {key}") for t in texts]

    # ---- the block -----------------------------------------------------------------------------------------
    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        pending = list(rows)
        self.n_in = len(pending)
        if not self.cfg.enabled:
            self.n_out = len(pending)
            yield from pending
            return
        kept: list[Row] = []
        for rnd in range(1, self.cfg.rounds + 1):
            if not pending:
                break
            to_rewrite = []
            counts = {g: 0 for g in GRADES}
            for row, answer in zip(pending, self._judge(pending, rnd)):
                raw, grade, problem = answer["raw"], answer["grade"], answer["off_format"]
                self.records.append({"id": row.example.id, "round": rnd, **answer})
                row.example.meta.setdefault("grades", []).append(grade or f"off_format:{problem}")
                if grade:
                    counts[grade] += 1
                    action = self.cfg.actions[grade]
                else:
                    self.stats[f"off_format:{problem}"] += 1
                    action = self.cfg.off_format
                if action == "keep":
                    row.example.meta["grade"] = grade or "unparsed"
                    kept.append(row)
                elif action == "drop":
                    reason = f"graded_{grade}" if grade else f"grader_off_format_{problem}"
                    self._drop(sink, row, reason, f"round {rnd}: grader said {raw.strip()[:60]!r}")
                elif rnd < self.cfg.rounds:
                    to_rewrite.append(row)
                elif self.cfg.after_last_round == "keep":
                    row.example.meta["grade"] = grade or "unparsed"
                    kept.append(row)
                else:
                    self._drop(sink, row, "not_good_after_rounds", f"still {grade or problem} after {rnd} rounds")
            self.grades_per_round.append(counts)
            pending = self._rewritten(to_rewrite, rnd, sink)
        yield from self._select(kept, sink)

    def _rewritten(self, rows: list[Row], rnd: int, sink: ExclusionSink) -> list[Row]:
        if not rows:
            return []
        out = []
        new_texts = self._rewrite(rows, "rewrite", self.cfg.rewrite_max_new_tokens)
        for row, raw in zip(rows, new_texts):
            old, resp, _ = _pair(row)
            text = parse_instruction(raw)
            verdict = self.checks(text, resp, set())
            if verdict is not None:
                self._drop(sink, row, f"rewrite_{verdict[0]}", f"round {rnd}: {verdict[1]}")
                continue
            self.stats["rewritten"] += 1
            row.example.messages[0] = Message("user", text, "en")
            row.example.meta.setdefault("earlier_instructions", []).append(old)
            out.append(row)
        if self.cfg.rewrite_response and out:
            self._restyle(out)
        return out

    def _restyle(self, rows: list[Row]) -> None:
        """Rewrite the passage into assistant style; a rewrite that is empty or in another language is not used
        (the original passage stays, counted)."""
        detector = get_detector("pycld2")
        for row, raw in zip(rows, self._rewrite(rows, "response", self.cfg.response_max_new_tokens)):
            resp = row.example.response
            text = raw.strip()
            tag, _ = detector.detect(text) if text else (None, 0.0)
            if not text or (tag is not None and not same_base_language(tag, resp.language or "")):
                self.stats["response_rewrite_rejected"] += 1
                continue
            self.stats["response_rewritten"] += 1
            row.example.meta["original_response"] = resp.content
            row.example.messages[-1] = Message("assistant", text, resp.language)

    def _select(self, kept: list[Row], sink: ExclusionSink) -> Iterator[Row]:
        """At most `per_passage` rows per passage: best grade, then candidate order; passage order is kept."""
        groups: dict[str, list[Row]] = {}
        for row in kept:
            groups.setdefault(passage_id(row), []).append(row)
        for pid, group in groups.items():
            group.sort(key=lambda r: (RANK.get(r.example.meta.get("grade"), len(GRADES)),
                                      r.example.meta.get("candidate", 0)))
            limit = self.cfg.per_passage or len(group)
            for row in group[:limit]:
                self.n_out += 1
                yield row
            for row in group[limit:]:
                self._drop(sink, row, "other_candidate_kept", f"passage {pid} keeps {limit}")

    def _drop(self, sink: ExclusionSink, row: Row, reason: str, detail: str) -> None:
        self.stats[f"dropped:{reason}"] += 1
        sink.add(row.example.id, reason, self.name, detail)

    def report(self) -> dict:
        out = super().report()
        out["grades_per_round"] = self.grades_per_round
        return out


def _best(results: list) -> list[dict]:
    """A group's grades in loglik mode: each grade word scored as the continuation of the judge's context (three
    results per row); the most likely one (ties: the better grade) is the grade."""
    out = []
    for i in range(0, len(results), len(GRADES)):
        lps = {g: round(results[i + j].logprob, 4) for j, g in enumerate(GRADES)}
        best = max(GRADES, key=lambda g: (lps[g], -RANK[g]))
        out.append({"raw": best, "grade": best, "off_format": None, "logprobs": lps})
    return out
