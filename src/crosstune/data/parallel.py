"""A parallel corpus: the same items in several languages, keyed by id, validated precisely."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from crosstune.data.io import read_examples
from crosstune.data.schema import Example
from crosstune.errors import CrosstuneError
from crosstune.languages import normalize


@dataclass
class ValidationReport:
    languages: list[str]
    missing: dict[str, list[str]] = field(default_factory=dict)  # lang -> ids present elsewhere but not here
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # lang -> ids seen twice
    empty: dict[str, list[str]] = field(default_factory=dict)  # lang -> ids with an empty message

    @property
    def ok(self) -> bool:
        return not (any(self.missing.values()) or any(self.duplicates.values()) or any(self.empty.values()))

    def summary(self, limit: int = 5) -> str:
        lines = []
        for kind in ("missing", "duplicates", "empty"):
            for lang, ids in getattr(self, kind).items():
                if ids:
                    shown = ", ".join(ids[:limit]) + (" ..." if len(ids) > limit else "")
                    lines.append(f"{lang}: {len(ids)} {kind} id(s): {shown}")
        return "\n".join(lines) or "ok"


class ParallelCorpus:
    """`items[lang][id] -> Example`; ids are shared across languages."""

    def __init__(self, items: dict[str, dict[str, Example]], report: ValidationReport | None = None):
        self.items = items
        self.report = report or ValidationReport(sorted(items))

    @property
    def languages(self) -> list[str]:
        return list(self.items)

    def ids(self, langs: Iterable[str] | None = None) -> list[str]:
        """Ids present in every given language, in the first language's order."""
        langs = list(langs or self.languages)
        first, rest = self.items[langs[0]], [self.items[lang] for lang in langs[1:]]
        return [i for i in first if all(i in r for r in rest)]

    def get(self, lang: str, item_id: str) -> Example:
        return self.items[lang][item_id]

    def require(self, langs: Iterable[str]) -> None:
        missing = [lang for lang in langs if lang not in self.items]
        if missing:
            raise CrosstuneError(f"the corpus has no {', '.join(missing)}; it has {', '.join(self.languages)}")

    @classmethod
    def from_examples(cls, by_lang: dict[str, Iterable[Example]]) -> "ParallelCorpus":
        items: dict[str, dict[str, Example]] = {}
        report = ValidationReport(languages=list(by_lang))
        for lang, examples in by_lang.items():
            seen: dict[str, Example] = {}
            dups, empty = [], []
            for ex in examples:
                if ex.id in seen:
                    dups.append(ex.id)
                    continue
                if any(not m.content.strip() for m in ex.messages if m.role != "system"):
                    empty.append(ex.id)
                seen[ex.id] = ex
            items[lang] = seen
            report.duplicates[lang], report.empty[lang] = dups, empty
        all_ids = set().union(*(set(v) for v in items.values())) if items else set()
        for lang, seen in items.items():
            report.missing[lang] = sorted(all_ids - set(seen), key=_id_key)
        return cls(items, report)

    @classmethod
    def from_sources(cls, sources: list[dict]) -> "ParallelCorpus":
        """Build from config entries `{language, path, format?, prefix?, id_field?}`."""
        by_lang: dict[str, list[Example]] = {}
        for src in sources:
            lang = normalize(src["language"])
            rows = read_examples(Path(src["path"]), src.get("format", "auto"), language=lang,
                                 prefix=src.get("prefix", ""), id_field=src.get("id_field"))
            by_lang.setdefault(lang, []).extend(rows)
        return cls.from_examples(by_lang)


def _id_key(i: str):
    return (0, int(i), "") if i.isdigit() else (1, 0, i)
