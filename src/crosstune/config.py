"""YAML configs validated with pydantic, with dotted overrides from the command line (`train.lr=1e-4`).

Each command has its own small pydantic model (composed, not one giant class); unknown keys are errors.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from crosstune.errors import CrosstuneError

T = TypeVar("T", bound=BaseModel)

MAX_CONFIG_BYTES = 4 << 20  # a config names data files; it does not hold them
MAX_NODES = 1_000_000  # values after alias expansion (`*a` counts as a copy of what `&a` holds)
MAX_SCALAR_CHARS = 1 << 20  # one value (a path, a template, a prompt)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: the same YAML, ~10x faster


# Numbers with their real ranges, checked when a config is read (every numeric config field has one)
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # what numpy and torch accept
Threads = Annotated[int, Field(ge=0, le=4096)]  # 0: the library's default
Workers = Annotated[int, Field(ge=1, le=4096)]  # threads, processes or requests in flight
Tokens = Annotated[int, Field(ge=1, le=1 << 20)]  # a generation or sequence length
Batch = Annotated[int, Field(ge=1, le=1 << 16)]
Count = Annotated[int, Field(ge=0, le=10**9)]  # rows, items, steps (0 where it means "off" or "all")
Chars = Annotated[int, Field(ge=0, le=10**8)]
Fraction = Annotated[float, Field(ge=0, le=1)]
UNHASHED = {"hashed": False}  # Field(json_schema_extra=UNHASHED): where results are kept, not what they are


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)
    _source: str = PrivateAttr("config")  # the file it was read from (set by `validate`), for later errors


class LinedDict(dict):
    """A YAML mapping that remembers the line of each key (`.lines`), so validation errors can name it; a key
    set by a `key=value` override maps to that override's text instead."""

    lines: dict[Any, int]

    def __init__(self, *args: Any, lines: dict[Any, int] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lines = dict(lines or {})


class _LinedLoader(_Loader):  # type: ignore[misc, valid-type]
    def _map(self, node: yaml.MappingNode):
        data = LinedDict()
        yield data
        data.update(self.construct_mapping(node))  # merges `<<` keys first
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                data.lines.setdefault(self.construct_object(key_node), key_node.start_mark.line + 1)


_LinedLoader.add_constructor("tag:yaml.org,2002:map", _LinedLoader._map)


def _expanded_size(root: yaml.Node, where: str) -> None:
    """Count nodes as a consumer of the loaded value sees them (every alias a full copy) without building it;
    refuse a recursive alias and anything over MAX_NODES (the "billion laughs" file: 9 aliases of 9 aliases...)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        kids = ([n for kv in node.value for n in kv] if isinstance(node, yaml.MappingNode)
                else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if not children_done:
            if key in active:
                raise CrosstuneError(f"{where}:{node.start_mark.line + 1}: an alias refers to a value that contains "
                                     f"it (a recursive structure); configs must be finite trees")
            active.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
            continue
        active.discard(key)
        if isinstance(node, yaml.ScalarNode) and len(node.value) > MAX_SCALAR_CHARS:
            raise CrosstuneError(f"{where}:{node.start_mark.line + 1}: a value of {len(node.value)} characters "
                                 f"(at most {MAX_SCALAR_CHARS}); put long text in a file and name the file")
        sizes[key] = 1 + sum(sizes[id(k)] for k in kids)
        if sizes[key] > MAX_NODES:
            raise CrosstuneError(f"{where}:{node.start_mark.line + 1}: this value expands to more than {MAX_NODES} "
                                 f"values through YAML aliases (*name); write the config without nested aliases")


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML text (safe tags only) with aliases bounded; `where` names it in errors."""
    try:
        loader = _LinedLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expanded_size(node, where)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CrosstuneError(f"{where}{line}: malformed YAML ({getattr(e, 'problem', e)})") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The one YAML reader for every config: size-bounded, aliases bounded, mappings remember their lines."""
    p = Path(path)
    try:
        if not p.is_file():
            raise CrosstuneError(f"{p}: no such config file")
        size = p.stat().st_size
    except OSError as e:  # e.g. a name too long for the file system
        raise CrosstuneError(f"{p}: cannot read ({e.strerror})") from None
    if size > MAX_CONFIG_BYTES:
        raise CrosstuneError(f"{p}: {size} bytes; a config file holds at most {MAX_CONFIG_BYTES} (data belongs "
                             f"in data files that the config names)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CrosstuneError(f"{p}: not UTF-8 text") from None
    data = load_yaml_text(text, str(p))
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
        value = load_yaml_text(raw, f"override {item!r}") if raw != "" else ""
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
        if isinstance(node, LinedDict) and (last or not isinstance(node.get(part), (dict, list))):
            node.lines[part] = item  # the value comes from the override now: errors about it name the override
        if last:
            node[part] = value
        elif not isinstance(node.get(part), (dict, list)):
            node[part] = LinedDict()
        node = node[part] if not last else node


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def validate(model: type[T], data: dict[str, Any], source: str = "config") -> T:
    try:
        obj = model.model_validate(data)
        obj._source = source
        return obj
    except ValidationError as e:
        errors = e.errors()  # a misspelt key also makes its right spelling "missing": name the misspelling first
        err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
        field = ".".join(str(x) for x in _field_path(data, err["loc"])) or "(top level)"
        head, sep, rest = source.partition(": ")  # "file: recipe" -> "file:LINE: recipe"
        line = _line_of(data, err["loc"])
        where = (f"override {line!r} (applied to {source})" if isinstance(line, str)
                 else f"{head}:{line}{sep}{rest}" if line else source)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, err["loc"][:-1])
            raise CrosstuneError(f"{where}: unknown key '{field}'; expected one of: {allowed}"
                                 f"{_did_you_mean(field, allowed)}") from None
        msg = err["msg"].removeprefix("Value error, ")  # our validators' messages read better without it
        raise CrosstuneError(f"{where}: field '{field}': {msg}") from None


def _did_you_mean(field: str, allowed: str) -> str:
    """`; did you mean 'optim.lr'?` for `optim.lrr`, when an allowed key is close (difflib)."""
    import difflib

    parent, _, key = field.rpartition(".")
    close = difflib.get_close_matches(key, allowed.split(", "), n=1, cutoff=0.6)
    return f"; did you mean '{parent + '.' if parent else ''}{close[0]}'?" if close else ""


def _field_path(data: Any, loc: tuple) -> list:
    """`loc` as the user wrote it: pydantic's union-member steps (`consistency`, `constrained-int`) left out."""
    out, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) \
                and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and i + 1 < len(loc) and loc[i + 1] in node:
            continue  # a tag pydantic adds between a key and the key it holds
        elif isinstance(node, (dict, list)):
            out.extend(loc[i:])  # a missing key and below
            break
        else:
            break  # below a value: the type a union tried
    return out


def _line_of(data: Any, loc: tuple) -> int | str | None:
    """The line of the deepest key on `loc`, or the text of the override that set it; steps that name no key,
    such as a union's tag, are passed over."""
    line, node = None, data
    for part in loc:
        if isinstance(node, dict) and part in node:
            line = getattr(node, "lines", {}).get(part, line if isinstance(line, str) else None)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
    return line


def _members(ann: Any) -> list[Any]:
    """Annotated[X, ...] -> X; Optional/Union -> each member."""
    if get_origin(ann) is Annotated:
        return _members(get_args(ann)[0])
    if get_origin(ann) in (Union, types.UnionType):
        return [m for a in get_args(ann) for m in _members(a)]
    return [ann]


def _step(ann: Any, part: Any) -> Any:
    """The annotation one step down `loc`: a model's field, a dict's value, a list's item, or the union member
    whose Literal tag is `part`."""
    members = _members(ann)
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    for m in models:
        if part in m.model_fields:
            return m.model_fields[part].annotation
    for m in models:
        if any(get_origin(f.annotation) is Literal and part in get_args(f.annotation) for f in m.model_fields.values()):
            return m
    for m in members:
        if get_origin(m) is dict:
            return get_args(m)[1]
        if get_origin(m) is list and isinstance(part, int):
            return get_args(m)[0]
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple) -> str:
    ann: Any = model
    for part in loc:
        ann = _step(ann, part)
    models = [m for m in _members(ann) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) != 1:
        return "(see the docs)"
    return ", ".join(models[0].model_fields)


def load_config(model: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    data = apply_overrides(read_yaml(path), overrides or [])
    return validate(model, data, str(path))


def _unhashed(cfg: BaseModel) -> dict:
    """model_dump's `exclude` for the fields marked UNHASHED, at any depth."""
    out: dict = {}
    for name, field in type(cfg).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        value = getattr(cfg, name)
        if extra.get("hashed") is False:
            out[name] = True
        elif isinstance(value, BaseModel) and (sub := _unhashed(value)):
            out[name] = sub
    return out


def config_hash(cfg: BaseModel) -> str:
    """What identifies a config's results: every field but those marked UNHASHED (e.g. the call cache's path)."""
    from crosstune.hashing import json_sha256

    return json_sha256(cfg.model_dump(mode="json", exclude=_unhashed(cfg)))[:16]
