"""YAML configs validated with pydantic, with dotted overrides from the command line (`train.lr=1e-4`).

Each command has its own small pydantic model (composed, not one giant class); unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from crosstune.errors import CrosstuneError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise CrosstuneError(f"{p}: no such config file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CrosstuneError(f"{p}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CrosstuneError(f"{p}{line}: malformed YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        raise CrosstuneError(f"{p}: empty config")
    if not isinstance(data, dict):
        raise CrosstuneError(f"{p}: expected a mapping of keys at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (`1e-4`, `true`, `[en, zh]`)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CrosstuneError(f"override {item!r}: expected key=value, e.g. train.lr=1e-4")
        value = yaml.safe_load(raw) if raw != "" else ""
        if isinstance(value, str) and _looks_numeric(value):
            value = float(value)  # YAML 1.1 reads "1e-4" as a string
        _set_path(data, key.split("."), value, item)
    return data


def _set_path(node: Any, parts: list[str], value: Any, item: str) -> None:
    """Walk dicts by key and lists by index (`sources.0.path=...`), creating dicts where keys are missing."""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise CrosstuneError(f"override {item!r}: '{part}' is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if last:
            node[part] = value
        elif not isinstance(node.get(part), (dict, list)):
            node[part] = {}
        node = node[part] if not last else node


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def validate(model: type[T], data: dict[str, Any], source: str = "config") -> T:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors()  # a misspelt key also makes its right spelling "missing": name the misspelling first
        err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, err["loc"][:-1])
            raise CrosstuneError(f"{source}: unknown key '{field}'; expected one of: {allowed}") from None
        msg = err["msg"].removeprefix("Value error, ")  # our validators' messages read better without it
        raise CrosstuneError(f"{source}: field '{field}': {msg}") from None


def _allowed_keys(model: type[BaseModel], loc: tuple) -> str:
    cls: Any = model
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        ann = getattr(field, "annotation", None)
        models = [a for a in (ann, *get_args(ann)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:  # Optional[Model] and Model | None unwrap to the model; anything else has no key list
            return "(see the docs)"
        cls = models[0]
    return ", ".join(getattr(cls, "model_fields", {}))


def load_config(model: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    data = apply_overrides(read_yaml(path), overrides or [])
    return validate(model, data, str(path))


def config_hash(cfg: BaseModel) -> str:
    import hashlib
    import json

    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
