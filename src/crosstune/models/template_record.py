"""The trained template travels with the model: recorded in its folder, read back by `auto`, and written into the
saved tokenizer as an equivalent Jinja `chat_template` (so transformers, vLLM and llama.cpp users send the same prompt).

`crosstune train` writes `crosstune_template.json` (`{"template": ..., "system": ...}`) into the adapter folder and
the merged folder. `recorded_template(tokenizer)` reads it from the folder the tokenizer was loaded from.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from crosstune.errors import CrosstuneError

TEMPLATE_FILE = "crosstune_template.json"


def _folder(tokenizer_or_path) -> Path | None:
    if isinstance(tokenizer_or_path, (str, Path)):
        return Path(tokenizer_or_path)
    name = getattr(tokenizer_or_path, "name_or_path", None)
    return Path(name) if name else None


def recorded_template(tokenizer_or_path) -> dict | None:
    """`{"template", "system", "file"}` recorded with the model the tokenizer came from, or None."""
    folder = _folder(tokenizer_or_path)
    if folder is None:
        return None
    path = folder / TEMPLATE_FILE
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return _read(str(path), stamp)


@lru_cache(maxsize=64)
def _read(path: str, _stamp: int) -> dict:
    from crosstune.models.render import NAMED

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CrosstuneError(f"{path}: not a readable JSON object ({e})") from None
    allowed = ("chat",) + NAMED
    if not isinstance(data, dict) or data.get("template") not in allowed:
        got = data.get("template") if isinstance(data, dict) else data
        raise CrosstuneError(f"{path} field 'template': {got!r}; expected one of {', '.join(allowed)}")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise CrosstuneError(f"{path} field 'system': expected a string or null, got {type(system).__name__}")
    return {"template": data["template"], "system": system, "file": path}


def record_template(folder: str | Path, template: str, tokenizer, system: str | None = None) -> None:
    """Write the record into a saved model folder; for a named template also rewrite the saved tokenizer's
    `chat_template` to the equivalent Jinja (the BOS the tokenizer adds to plain text written first)."""
    from crosstune.models.render import NAMED, adds_bos

    folder = Path(folder)
    record = {"template": template, "system": system}
    (folder / TEMPLATE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if template in NAMED:
        from transformers import AutoTokenizer

        saved = AutoTokenizer.from_pretrained(str(folder))
        saved.chat_template = named_chat_template(template, bos=adds_bos(tokenizer))
        saved.save_pretrained(str(folder))


def template_source(tokenizer) -> str:
    """Where a tokenizer's chat template lives, for error messages: file and field."""
    folder = _folder(tokenizer)
    if folder is not None and (folder / "chat_template.jinja").is_file():
        return f"{folder / 'chat_template.jinja'}"
    if folder is not None:
        return f"{folder / 'tokenizer_config.json'} field 'chat_template'"
    return "the tokenizer's field 'chat_template'"


def _lit(text: str) -> str:
    """A Jinja string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def named_chat_template(name: str, bos: bool) -> str:
    """A Jinja chat template that renders exactly what `render.py`'s named template renders for messages without
    structured fields (the user text is the instruction): system text first, turns joined by a blank line,
    `output + eos` after each answer, and the answer's opening on `add_generation_prompt`."""
    from crosstune.models.render import ALPACA_HEADER, LLAMA_SYSTEM

    if name == "llama":
        body = (f"'[INST] <<SYS>>\\n' + (system if (first and system) else {_lit(LLAMA_SYSTEM)}) + "
                "'\\n<</SYS>>\\n\\n' + instr + '[/INST]'")
    elif name == "gemma":
        body = "(system + '\\n\\n' if (first and system) else '') + instr + '\\n'"
    elif name == "alpaca":
        body = (f"(system + '\\n\\n' if (first and system) else '') + {_lit(ALPACA_HEADER[False])} + "
                "'### Instruction:\\n' + instr + '\\n\\n### Response:\\n '")
    else:
        raise CrosstuneError(f"template {name!r}: no Jinja equivalent (expected alpaca, gemma or llama)")
    return (
        "{%- macro turn(instr, first, system) -%}{{- ('' if first else '\\n\\n') + " + body + " -}}{%- endmacro -%}"
        + ("{{- bos_token -}}" if bos else "")
        + "{%- set ns = namespace(system='', user='', first=true) -%}"
        "{%- for m in messages -%}{%- if m['role'] == 'system' and not ns.system -%}"
        "{%- set ns.system = m['content'] -%}{%- endif -%}{%- endfor -%}"
        "{%- for m in messages -%}"
        "{%- if m['role'] == 'user' -%}{%- set ns.user = m['content'] -%}"
        "{%- elif m['role'] == 'assistant' -%}"
        "{{- turn(ns.user, ns.first, ns.system) + m['content'] + eos_token -}}"
        "{%- set ns.first = false -%}{%- set ns.user = '' -%}"
        "{%- endif -%}{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- turn(ns.user, ns.first, ns.system) -}}{%- endif -%}"
    )
