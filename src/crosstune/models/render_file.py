"""`crosstune models render`: conversations -> the token ids each purpose gets, one JSON line per conversation
(a debugging aid, as axolotl's `preprocess --debug`): `id`, `purpose`, `template`, `ids`, `text`, `bos_count`, plus
`labels` (train; -100 on tokens without loss) or `context_length` (score: `ids` are context + continuation, the
continuation being the last assistant message)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from crosstune.models.render import PURPOSES, render_ids, resolve_template
from crosstune.schema import Example


def render_rows(examples: Iterable[Example], tokenizer, template: str, purpose: str,
                loss_on: str = "response") -> Iterable[dict]:
    resolved = resolve_template(template, tokenizer)
    for ex in examples:
        fields = ex.meta.get("fields")
        messages = [{"role": m.role, "content": m.content} for m in ex.messages]
        if fields and sum(m["role"] == "user" for m in messages) == 1:
            next(m for m in messages if m["role"] == "user")["fields"] = fields
        r = render_ids(messages, purpose, resolved, tokenizer, loss_on)
        row = {"id": ex.id, "purpose": purpose, "template": resolved, "ids": r.ids, "text": r.text,
               "bos_count": r.bos_count}
        if r.labels is not None:
            row["labels"] = r.labels
        if r.context_length is not None:
            row["context_length"] = r.context_length
        yield row


def write_rendered(examples: Iterable[Example], tokenizer, template: str, purpose: str, out: str | Path,
                   loss_on: str = "response") -> int:
    """Write the rows to `out` (JSONL); returns how many."""
    if purpose not in PURPOSES:
        from crosstune.errors import CrosstuneError

        raise CrosstuneError(f"--purpose {purpose!r}: expected one of {', '.join(PURPOSES)}")
    rows = list(render_rows(examples, tokenizer, template, purpose, loss_on))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)
