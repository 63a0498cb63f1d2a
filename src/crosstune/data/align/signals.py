"""Per-row signals that survive machine translation, and the pair features built from them.

A translation changes the words but usually keeps: the length ratio, the numbers, the layout (newlines, list
markers, brackets, code symbols) and tokens copied through untranslated (names, code, URLs, technical terms).
Sets (numbers, copied tokens) are hashed into 128-bit signatures so a band of 51k x 1000 pairs compares with a
few numpy bit operations instead of Python set logic.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crosstune.data.schema import Example

NUMBER = re.compile(r"\d+")
LATIN_TOKEN = re.compile(r"(?<![^\W\d_])[A-Za-z][A-Za-z0-9_]{2,}(?![^\W\d_])")  # ASCII-only words, >= 3 chars
URL = re.compile(r"https?://\S+|www\.\S+")
# Layout and code symbols that a translator copies: counts compared on a log scale. Few, since each one is
# compared over the whole band; ':' and quotes are left out because translators change them.
LAYOUT_OUTPUT = "\n.,!?(=;{<#*-/%$_"
LAYOUT_PROMPT = "\n.,?(=/%_"
SIG_WORDS = 2  # 2 x 64 bits per set signature


@dataclass(frozen=True)
class RowSignals:
    """Column arrays, one entry per row; 2-D ones are (columns, rows) so each column is a contiguous slice."""

    log_len_prompt: np.ndarray  # log1p(chars)
    log_len_output: np.ndarray
    nums_prompt: np.ndarray  # (SIG_WORDS, n) uint64 hashed sets of digit runs
    nums_output: np.ndarray
    n_nums_prompt: np.ndarray  # distinct digit runs
    n_nums_output: np.ndarray
    tokens: np.ndarray  # (SIG_WORDS, n) copied Latin tokens + URLs, prompt and output together
    layout_prompt: np.ndarray  # (len(LAYOUT_PROMPT), n) log1p counts
    layout_output: np.ndarray

    def __len__(self) -> int:
        return len(self.log_len_prompt)


def _signature(items) -> list[int]:
    bits = 0
    for item in items:
        bits |= 1 << (zlib.crc32(item.encode("utf-8")) % (64 * SIG_WORDS))
    return [(bits >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for w in range(SIG_WORDS)]


def prompt_text(ex: Example) -> str:
    """Instruction and input joined by one space: Alpaca's blank line and a translation's ': ' both vanish."""
    fields = ex.meta.get("fields") or {}
    if fields.get("input", "").strip():
        return f"{fields['instruction']} {fields['input']}"
    return ex.instruction.content


def _numbers(text: str) -> set[str]:
    # Digit runs only: "1,000" (en) and "1.000" (vi) both give {"1", "000"}.
    return {m.lstrip("0") or "0" for m in NUMBER.findall(text)}


def _latin_tokens(text: str) -> set[str]:
    return {t.lower() for t in LATIN_TOKEN.findall(text)} | set(URL.findall(text))


def _char_counts(texts: list[str], chars: str) -> np.ndarray:
    """(len(chars), len(texts)) counts, vectorised over one concatenated code-point array."""
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    row = np.repeat(np.arange(len(texts), dtype=np.int32), [len(t) for t in texts])
    return np.stack([np.bincount(row[codes == ord(c)], minlength=len(texts)) for c in chars]) if texts else \
        np.zeros((len(chars), 0))


def token_sets(rows: Sequence[Example]) -> list[set[str]]:
    """Latin tokens and URLs of each row (prompt and output), computed once and shared by the steps below."""
    return [_latin_tokens(prompt_text(ex) + "\n" + ex.response.content) for ex in rows]


def copied_vocabulary(reference: Sequence[set[str]], target: Sequence[set[str]]) -> frozenset[str]:
    """Latin tokens that look copied through translation: present on both sides and not a target-language word.

    A token frequent in the target but rare in the reference (Vietnamese 'cho', 'con', 'khi' are pure ASCII) is a
    native word, not a copy, so it is left out.
    """
    def doc_freq(rows: Sequence[set[str]]) -> Counter:
        df: Counter = Counter()
        for tokens in rows:
            df.update(tokens)
        return df

    df_ref, df_tgt = doc_freq(reference), doc_freq(target)
    n_ref, n_tgt = max(len(reference), 1), max(len(target), 1)
    return frozenset(t for t, c in df_tgt.items()
                     if t in df_ref and c / n_tgt <= 3 * df_ref[t] / n_ref + 0.001)


def row_signals(rows: Sequence[Example], tokens: Sequence[set[str]], vocabulary: frozenset[str]) -> RowSignals:
    n = len(rows)
    cols = {k: [] for k in ("lp", "lo", "np", "no", "cp", "co", "tok")}
    prompts, outputs = [prompt_text(ex) for ex in rows], [ex.response.content for ex in rows]
    for prompt, output, row_tokens in zip(prompts, outputs, tokens):
        nums_p, nums_o = _numbers(prompt), _numbers(output)
        toks = {t for t in row_tokens if t in vocabulary or t.startswith(("http", "www"))}
        cols["lp"].append(len(prompt))
        cols["lo"].append(len(output))
        cols["np"].append(_signature(nums_p))
        cols["no"].append(_signature(nums_o))
        cols["cp"].append(len(nums_p))
        cols["co"].append(len(nums_o))
        cols["tok"].append(_signature(toks))

    def sig(key):
        return np.ascontiguousarray(np.array(cols[key], dtype=np.uint64).reshape(n, SIG_WORDS).T)

    def log_counts(key):
        return np.log1p(np.asarray(cols[key], dtype=np.float32))

    return RowSignals(
        log_len_prompt=log_counts("lp"), log_len_output=log_counts("lo"),
        nums_prompt=sig("np"), nums_output=sig("no"),
        n_nums_prompt=np.asarray(cols["cp"], np.float32), n_nums_output=np.asarray(cols["co"], np.float32),
        tokens=sig("tok"),
        layout_prompt=np.log1p(_char_counts(prompts, LAYOUT_PROMPT).astype(np.float32)),
        layout_output=np.log1p(_char_counts(outputs, LAYOUT_OUTPUT).astype(np.float32)))
