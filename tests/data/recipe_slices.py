"""Corpora for recipe and build tests: a synthetic parallel Alpaca en/zh/vi built in the test (runs in any clone;
`tests/data/synthetic.py`), and a slice of the real shared data for the integration tests."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from crosstune.data.io import read_rows
from crosstune.data.recipes.sources import SourceSpec, load_corpus
from crosstune.paths import Lookup
from tests.conftest import shared_path
from tests.data.synthetic import LOST_VI, write_alpaca

N_ALPACA = 300  # synthetic items 0..299; the Vietnamese copy lacks LOST_VI (the aligner restores the ids)
N_VI = N_ALPACA - len(LOST_VI)
N_REAL, N_REAL_VI = 300, 290  # real Alpaca rows 0..299; the real vi copy's first 290 rows cover them


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def slices(tmp_path_factory) -> dict[str, Path]:
    return write_alpaca(tmp_path_factory.mktemp("synthetic"), N_ALPACA)


@pytest.fixture(scope="session")
def real_slices(tmp_path_factory) -> dict[str, Path]:
    alpaca = shared_path("alpaca_chinese_parallel", "alpaca_en_zh_52k_v3.jsonl.gz")
    vi = shared_path("alpaca_vietnamese_gpt4vn", "vi_alpaca_reduced.jsonl.gz")
    out = tmp_path_factory.mktemp("slices")
    return {
        "alpaca": _write(out / "alpaca_en_zh.jsonl", (r for _, r in itertools.islice(read_rows(alpaca), N_REAL))),
        "vi": _write(out / "vi.jsonl", (r for _, r in itertools.islice(read_rows(vi), N_REAL_VI))),
    }


def source_entries(slices: dict[str, Path], languages=("en", "zh", "vi")) -> list[dict]:
    entries = {
        "en": {"language": "en", "path": str(slices["alpaca"]), "format": "alpaca", "prefix": "en_"},
        "zh": {"language": "zh", "path": str(slices["alpaca"]), "format": "alpaca", "prefix": "zh_"},
        "vi": {"language": "vi", "path": str(slices["vi"]), "format": "prompt_response",
               "align_to": {"path": str(slices["alpaca"]), "prefix": "en_"}},
    }
    return [entries[lang] for lang in languages]


@pytest.fixture(scope="session")
def corpus(slices):
    return load_corpus([SourceSpec(**e) for e in source_entries(slices)], Lookup())


@pytest.fixture(scope="session")
def real_corpus(real_slices):
    return load_corpus([SourceSpec(**e) for e in source_entries(real_slices)], Lookup())
