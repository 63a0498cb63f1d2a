"""Instruction formats: detect a row's format and turn one raw row into an `Example` (Alpaca, ShareGPT, OpenAI
messages, prompt/response, crosstune rows), and an `Example` back into a row. Files are `crosstune.data.io`'s job.
"""

from __future__ import annotations

from typing import Any

from crosstune.errors import CrosstuneError
from crosstune.languages import normalize
from crosstune.schema import Example, Message, alpaca_user_text

FORMATS = ("auto", "alpaca", "sharegpt", "openai", "prompt_response", "crosstune")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "system": "system", "bot": "assistant"}


def nested_row(row: dict, prefix: str) -> dict | None:
    """`prefix` "pt." reads the object under key "pt" (the layout `crosstune data translate` writes:
    `{"id", "en": {...}, "pt": {...}}`), keeping the row's id; None when the row has no such language."""
    sub = row.get(prefix[:-1])
    if not isinstance(sub, dict):
        return None
    return {"id": row["id"], **sub} if "id" in row and "id" not in sub else sub


def detect_format(row: dict, prefix: str = "") -> str:
    if prefix.endswith("."):
        row, prefix = nested_row(row, prefix) or {}, ""
    keys = set(row)
    if "messages" in keys and "id" in keys and isinstance(row.get("meta", {}), dict) and "meta" in keys:
        return "crosstune"
    if "messages" in keys:
        return "openai"
    if "conversations" in keys:
        return "sharegpt"
    if f"{prefix}instruction" in keys and f"{prefix}output" in keys:
        return "alpaca"
    if f"{prefix}prompt" in keys and f"{prefix}response" in keys:
        return "prompt_response"
    raise CrosstuneError(f"cannot tell the row format from fields {sorted(keys)}; expected alpaca "
                         "(instruction/input/output), sharegpt (conversations), openai (messages) or prompt/response")


def _text(row: dict, key: str, loc: str, required: bool = True) -> str:
    if key not in row or row[key] is None:
        if required:
            raise CrosstuneError(f"{loc}: missing field '{key}'")
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise CrosstuneError(f"{loc} field '{key}': expected a string, got {json_kind(value)}")
    return value


def _messages_from_list(items: Any, loc: str, role_key: str, text_key: str, roles: dict | None) -> list[Message]:
    if not isinstance(items, list) or not items:
        raise CrosstuneError(f"{loc}: expected a non-empty list of messages, got {json_kind(items)}")
    out = []
    for j, m in enumerate(items):
        if not isinstance(m, dict) or role_key not in m or text_key not in m:
            raise CrosstuneError(f"{loc} message {j}: expected an object with '{role_key}' and '{text_key}'")
        raw_role = m[role_key]
        role = (roles.get(raw_role) if roles else raw_role) if isinstance(raw_role, str) else None
        if role not in ("system", "user", "assistant"):
            raise CrosstuneError(f"{loc} message {j} field '{role_key}': unknown role {raw_role!r}")
        text = m[text_key]
        if not isinstance(text, str):
            raise CrosstuneError(f"{loc} message {j} field '{text_key}': expected a string, got {json_kind(text)}")
        lang = m.get("language")
        if lang is not None and not isinstance(lang, str):
            raise CrosstuneError(f"{loc} message {j} field 'language': expected a language code, got {json_kind(lang)}")
        if lang:
            try:
                lang = normalize(lang)
            except CrosstuneError as e:
                raise CrosstuneError(f"{loc} message {j} field 'language': {e}") from None
        out.append(Message(role, text, lang or None))
    return out


def require_pair(ex: Example, loc: str) -> Example:
    """An instruction example needs a user turn and an assistant turn after it."""
    last = next((i for i in range(len(ex.messages) - 1, -1, -1) if ex.messages[i].role == "assistant"), -1)
    if last < 0 or not any(m.role == "user" for m in ex.messages[:last]):
        raise CrosstuneError(f"{loc}: expected a user message followed by an assistant message")
    return ex


def json_kind(value: Any) -> str:
    return {list: "a JSON array", dict: "an object", str: "a string", int: "a number", float: "a number",
            bool: "true/false", type(None): "null"}.get(type(value), type(value).__name__)


def row_to_example(row: dict, fmt: str, loc: str, *, index: int, language: str | None = None,
                   prefix: str = "", source: str | None = None, id_field: str | None = None) -> Example:
    """One raw row -> `Example`. `prefix` selects columns like `en_instruction` in parallel files."""
    meta: dict[str, Any] = {}
    if fmt == "crosstune":
        if "id" not in row:
            raise CrosstuneError(f"{loc}: missing field 'id'")
        msgs = _messages_from_list(row.get("messages"), loc, "role", "content", None)
        for m in msgs:
            m.language = m.language or language
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            raise CrosstuneError(f"{loc} field 'meta': expected an object, got {json_kind(meta)}")
        return Example(id=str(row["id"]), messages=msgs, source=row.get("source"), meta=dict(meta))
    if fmt == "alpaca":
        instr = _text(row, f"{prefix}instruction", loc)
        inp = _text(row, f"{prefix}input", loc, required=False)
        out = _text(row, f"{prefix}output", loc)
        meta["fields"] = {"instruction": instr, "input": inp}
        msgs = [Message("user", alpaca_user_text(instr, inp), language), Message("assistant", out, language)]
    elif fmt == "prompt_response":
        prompt = _text(row, f"{prefix}prompt", loc)
        msgs = [Message("user", prompt, language), Message("assistant", _text(row, f"{prefix}response", loc), language)]
        meta["fields"] = {"instruction": prompt, "input": ""}
    elif fmt == "sharegpt":
        msgs = _messages_from_list(row.get("conversations"), loc, "from", "value", SHAREGPT_ROLES)
    elif fmt == "openai":
        msgs = _messages_from_list(row.get("messages"), loc, "role", "content", None)
    else:
        raise CrosstuneError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if language:
        for m in msgs:
            m.language = m.language or language
    rid = row.get(id_field) if id_field else row.get("id")
    return Example(id=str(rid) if rid is not None else str(index), messages=msgs, source=source, meta=meta)


def example_to_row(ex: Example, fmt: str) -> dict:
    if fmt == "crosstune":
        return ex.to_dict()
    if fmt == "openai":
        return {"messages": [{"role": m.role, "content": m.content} for m in ex.messages]}
    if fmt == "sharegpt":
        back = {"user": "human", "assistant": "gpt", "system": "system"}
        return {"conversations": [{"from": back[m.role], "value": m.content} for m in ex.messages]}
    if fmt == "alpaca":
        fields = ex.meta.get("fields") or {"instruction": ex.instruction.content, "input": ""}
        return {"instruction": fields["instruction"], "input": fields["input"], "output": ex.response.content}
    raise CrosstuneError(f"cannot write format {fmt!r}; expected crosstune, openai, sharegpt or alpaca")
