"""Sandboxed Jinja for task configs: string templates (prompts, continuations) and expressions (choice lists,
answers, ids, filters) evaluated against one data row. Undefined names are errors that name the file, line and
field; a template can never reach Python internals (jinja2.sandbox)."""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crosstune.errors import CrosstuneError

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
_ENV.globals.update(letters=LETTERS, enumerate=enumerate, zip=zip, range=range, len=len)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@lru_cache(maxsize=512)
def _template(source: str):
    return _ENV.from_string(source)


@lru_cache(maxsize=512)
def _expression(source: str):
    return _ENV.compile_expression(source, undefined_to_none=False)


def check(source: str, field: str, config: str, expression: bool = False) -> None:
    """Fail at load time on a syntax error, naming the config file and field."""
    try:
        _expression(source) if expression else _template(source)
    except TemplateError as e:
        kind = "expression" if expression else "template"
        raise CrosstuneError(f"{config} field '{field}': bad Jinja {kind} ({e})") from None


def _missing(e: Exception, ctx: dict) -> str:
    msg = str(e)
    m = re.search(r"'([^']+)' is undefined", msg)
    if m:
        return f"refers to '{m.group(1)}', which this row does not have (row fields: {sorted(ctx.get('row', {}))})"
    return msg


def render(source: str, ctx: dict, where: str, field: str) -> str:
    """Render a string template; `where` is the row's `file:line`."""
    try:
        return _template(source).render(ctx)
    except UndefinedError as e:
        raise CrosstuneError(f"{where} field '{field}': the template {_missing(e, ctx)}") from None
    except (TemplateError, TypeError, ValueError, KeyError, IndexError) as e:
        raise CrosstuneError(f"{where} field '{field}': the template failed on this row ({e})") from None


def evaluate(source: str, ctx: dict, where: str, field: str):
    """Evaluate an expression (`choices`, `[a, b, c]`, `answers | map(attribute='text') | list`) to a value."""
    try:
        value = _expression(source)(**ctx)
    except UndefinedError as e:
        raise CrosstuneError(f"{where} field '{field}': the expression {_missing(e, ctx)}") from None
    except (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise CrosstuneError(f"{where} field '{field}': the expression failed on this row ({e})") from None
    if hasattr(value, "_undefined_name"):  # StrictUndefined survives attribute access on missing dict keys
        raise CrosstuneError(f"{where} field '{field}': the expression refers to a missing value "
                             f"{value._undefined_name!r} (row fields: {sorted(ctx.get('row', {}))})")
    return value


def is_name(source: str) -> bool:
    return bool(_NAME.match(source))
