"""Block 5: cross-lingual SFT rows in the `crosstune data build` format: the user turn is the English instruction
plus " Answer in {Language}.", the assistant turn the passage in its own language (`make_row`, as every recipe)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from crosstune.data.blocks import Block, ExclusionSink, Row
from crosstune.data.recipes.common import make_row
from crosstune.data.xinstruct.config import WriteConfig, fill
from crosstune.languages import language_name

KEEP_META = ("doc_id", "passage", "source", "candidate", "grade", "grades", "cluster", "earlier_instructions",
             "original_response")


class ToSFT(Block):
    name = "write"

    def __init__(self, cfg: WriteConfig):
        super().__init__()
        self.cfg = cfg

    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        for k, row in enumerate(rows):
            self.n_in += 1
            ex = row.example
            lang = ex.response.language or ex.meta["language"]
            instruction = ex.instruction.content
            user = instruction + fill(self.cfg.directive, language=language_name(lang))
            out = make_row(f"xinstruct-{k}", recipe="xinstruct", mode="xinstruct", user=user,
                           response=ex.response.content, instruction_language="en", response_language=lang,
                           source_ids=[ex.id], checks=(("user", instruction, "en"), ("assistant",
                                                                                    ex.response.content, lang)))
            out.example.meta.update({key: ex.meta[key] for key in KEEP_META if key in ex.meta})
            self.stats[f"rows:{lang}"] += 1
            self.n_out += 1
            yield out
