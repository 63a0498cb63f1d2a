"""Load a recipe's sources into one parallel corpus (ids shared across languages), with input hashes.

A source entry is `{language, path, format?, prefix?, id_field?, align_to?}`; `align_to: {path, prefix}` reads a
translation that lost rows and ids (e.g. the Vietnamese Alpaca) through the aligner, so its ids become the
reference's row indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

from crosstune.config import StrictModel
from crosstune.data.formats import detect_format
from crosstune.data.io import read_examples, read_rows
from crosstune.data.parallel import ParallelCorpus, example_fields, is_empty
from crosstune.data.schema import Example
from crosstune.hashing import file_sha256
from crosstune.languages import normalize
from crosstune.paths import Lookup

Format = Literal["auto", "alpaca", "sharegpt", "openai", "prompt_response", "crosstune"]


class AlignTo(StrictModel):
    path: str
    prefix: str = "en_"
    format: Format = "alpaca"


class SourceSpec(StrictModel):
    language: str
    path: str
    format: Format = "auto"
    prefix: str = ""
    id_field: str | None = None
    align_to: AlignTo | None = None


@dataclass
class Corpus:
    parallel: ParallelCorpus
    split_fields: dict[str, bool]  # True when instruction and input are separate fields (Alpaca format)
    inputs: list[dict] = field(default_factory=list)  # {"path", "sha256"} in config order
    _fields: dict[str, dict[str, tuple[str, str, str]]] = field(default_factory=dict, repr=False)

    @property
    def languages(self) -> list[str]:
        return self.parallel.languages

    def fields(self, lang: str, item_id: str) -> tuple[str, str, str]:
        """(instruction, input, output) of one item; non-Alpaca rows give the whole prompt as instruction."""
        return self.lookup(lang)(item_id)

    def lookup(self, lang: str) -> Callable[[str], tuple[str, str, str]]:
        """`fields` of one language as a plain callable (item id -> fields), for loops over many items: a dict's
        `__getitem__` while the texts are in memory, else the spilled store's read by offset (bounded cache)."""
        table = self._fields.get(lang)
        if table is None:
            store = self.parallel.stores[lang]
            if not store.in_memory:
                return partial(self.parallel.fields, lang)
            # one pass per language: recipes look items up hundreds of thousands of times
            table = self._fields[lang] = {i: store.get(k) for k, i in enumerate(self.parallel.items[lang])}
        return table.__getitem__


def _load_one(spec: SourceSpec, lang: str, path: Path, ref: Path | None) -> Iterable[Example]:
    if spec.align_to is None or ref is None:
        return read_examples(path, spec.format, language=lang, prefix=spec.prefix, id_field=spec.id_field)
    from crosstune.data.align import load_aligned

    fmt = "prompt_response" if spec.format == "auto" else spec.format
    return load_aligned(ref, path, target_language=lang, reference_format=spec.align_to.format,
                        reference_prefix=spec.align_to.prefix, target_format=fmt)


def source_paths(specs: list[SourceSpec]) -> list[tuple[str, str]]:
    """(field, raw path) of every file the sources name, in config order: `sources.N.path`, `...align_to.path`."""
    out = []
    for i, spec in enumerate(specs):
        out.append((f"sources.{i}.path", spec.path))
        if spec.align_to is not None:
            out.append((f"sources.{i}.align_to.path", spec.align_to.path))
    return out


def load_corpus(specs: list[SourceSpec], lookup: Lookup) -> Corpus:
    """Stream every source into one `ParallelCorpus` (rows are not kept, only their three text fields); relative
    paths resolve by `lookup` (crosstune.paths: the data root, the recipe's folder, the working directory)."""
    parallel = ParallelCorpus()
    split: dict[str, bool] = {}
    inputs = []
    digests: dict[Path, str] = {}  # one file often serves several languages (en_*/zh_* columns)

    def digest(p: Path) -> str:
        if p not in digests:
            digests[p] = file_sha256(p)
        return digests[p]

    for i, spec in enumerate(specs):
        lang = normalize(spec.language)
        path, ref = lookup(spec.path, f"sources.{i}.path"), None
        inputs.append({"path": spec.path, "sha256": digest(path)})
        if spec.align_to is not None:
            ref = lookup(spec.align_to.path, f"sources.{i}.align_to.path")
            inputs.append({"path": spec.align_to.path, "sha256": digest(ref), "role": f"align_to for {lang}"})
        for ex in _load_one(spec, lang, path, ref):
            parallel.add(lang, ex.id, example_fields(ex), is_empty(ex))
        # prompt_response sources fold the input into the prompt; Alpaca keeps them apart.
        split[lang] = split.get(lang, True) and _is_alpaca(spec, path)
    return Corpus(parallel.finish(), split, _dedup_inputs(inputs))


def _is_alpaca(spec: SourceSpec, path: Path) -> bool:
    if spec.align_to is not None or spec.format not in ("alpaca", "auto"):
        return False
    if spec.format == "alpaca":
        return True
    _, first = next(iter(read_rows(path)))
    return detect_format(first, spec.prefix) == "alpaca"


def _dedup_inputs(inputs: list[dict]) -> list[dict]:
    seen, out = set(), []
    for item in inputs:
        key = (item["path"], item.get("role"))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
