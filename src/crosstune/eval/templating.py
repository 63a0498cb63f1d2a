"""Sandboxed Jinja for task configs: string templates (prompts, continuations) and expressions (choice lists,
answers, ids, filters) evaluated against one data row. Undefined names are errors that name the file, line and
field; a template can never reach Python internals (jinja2.sandbox), nor run without bound: ranges keep Jinja's
sandbox limit and a render may step through at most MAX_STEPS of them, every string or list a template makes (`*`,
`+`, `~`, `**`, `%`, str methods, filters with a size argument, the output) stays under MAX_CHARS, and deep
recursion is an error. Each limit is a clear `error:` naming the file and field, never a hang or a MemoryError."""

from __future__ import annotations

import contextvars
import math
import re
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range

from crosstune.errors import CrosstuneError
from crosstune.eval.options import LETTERS

MAX_CHARS = 1 << 20  # any string or list a template builds, and its output
MAX_STEPS = 1_000_000  # range items one render may step through (nested loops multiply)
MAX_ARG = 100_000  # an integer argument of a call or filter (a width, a count): Jinja's own MAX_RANGE
_WIDE = re.compile(r"\d{6,}")  # a width or precision of a million or more in a format string
_steps: contextvars.ContextVar[list[int]] = contextvars.ContextVar("steps")


def _size(x) -> int:
    return len(x) if isinstance(x, (str, list, tuple)) else 0


def _limit(n: int, what: str) -> None:
    if n > MAX_CHARS:
        raise SecurityError(f"{what} would make {n:,} characters or items (a template may make at most {MAX_CHARS:,})")


class _Steps:
    """A range whose items count against the render's step budget."""

    def __init__(self, rng: range):
        self.rng = rng

    def __len__(self) -> int:
        return len(self.rng)

    def __iter__(self):
        budget = _steps.get([MAX_STEPS])
        for x in self.rng:
            budget[0] -= 1
            if budget[0] < 0:
                raise SecurityError(f"the template's loops ran more than {MAX_STEPS:,} steps")
            yield x


def range_(*args: int) -> _Steps:
    return _Steps(safe_range(*args))  # safe_range: at most MAX_RANGE (100,000) items


range_.__name__ = "range"


def _concat(parts) -> str:
    text = "".join(str(p) for p in parts)
    _limit(len(text), "'~'")
    return text


class _Codegen(CodeGenerator):
    def visit_Concat(self, node, frame) -> None:  # `a ~ b` is not a binop in Jinja: route it through a bound
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Env(ImmutableSandboxedEnvironment):
    code_generator_class = _Codegen
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    bounded_concat = staticmethod(_concat)

    def call_binop(self, context, operator: str, left, right):
        if operator == "*" and isinstance(right, int) and _size(left) or isinstance(left, int) and _size(right):
            _limit(max(_size(left), _size(right)) * max(left if isinstance(left, int) else right, 0), "'*'")
        elif operator == "+":
            _limit(_size(left) + _size(right), "'+'")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > 64 * MAX_ARG:
                raise SecurityError(f"{left} ** {right} is too large a number")
        elif operator == "%" and isinstance(left, str) and _WIDE.search(left):
            raise SecurityError("a '%' format with a width or precision of a million or more")
        return super().call_binop(context, operator, left, right)

    def call(self, __context, __obj, *args, **kwargs):
        _check_args(args, kwargs, getattr(__obj, "__name__", "a call"))
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        text, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
        if isinstance(text, str) and name == "replace":
            _check_replace(text, *args[:2])
        if isinstance(text, str) and name in ("format", "format_map") and _WIDE.search(text):
            raise SecurityError("a format with a width or precision of a million or more")
        return super().call(__context, __obj, *args, **kwargs)


def _check_args(args, kwargs, name: str) -> None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_ARG:
            raise SecurityError(f"{name}() got {a}; arguments above {MAX_ARG:,} are refused in templates")


def _check_replace(text, old="", new="", *rest) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        _limit(len(text) + hits * (len(new) - len(old)), "replace")


def _bounded_filter(name: str, fn):
    k = 1 if hasattr(fn, "jinja_pass_arg") else 0  # Jinja passes its context or environment first

    def run(*args, **kwargs):
        value, rest = (args[k], args[k + 1:]) if len(args) > k else (None, ())
        _check_args(rest, kwargs, name)  # the value itself may be large; a width or count may not
        if name == "replace":
            _check_replace(str(value), *rest[:2])
        if name == "format" and isinstance(value, str) and _WIDE.search(value):
            raise SecurityError("a format with a width or precision of a million or more")
        return fn(*args, **kwargs)

    if k:
        run.jinja_pass_arg = fn.jinja_pass_arg  # type: ignore[attr-defined]
    return run


_ENV = _Env(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
_ENV.filters = {name: _bounded_filter(name, fn) for name, fn in _ENV.filters.items()}
_ENV.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs
_ENV.globals.update(letters=LETTERS, enumerate=enumerate, zip=zip, range=range_, len=len)
_LIMITS = (SecurityError, OverflowError, RecursionError, MemoryError)
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


def _limit_message(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "recursion too deep"
    if isinstance(e, MemoryError):
        return "out of memory"
    return str(e) or type(e).__name__


def render(source: str, ctx: dict, where: str, field: str) -> str:
    """Render a string template; `where` is the row's `file:line`."""
    token = _steps.set([MAX_STEPS])
    try:
        out, n = [], 0
        for piece in _template(source).generate(ctx):
            n += len(piece)
            _limit(n, "the output")
            out.append(piece)
        return "".join(out)
    except _LIMITS as e:
        raise CrosstuneError(f"{where} field '{field}': the template was stopped by the sandbox "
                             f"({_limit_message(e)})") from None
    except UndefinedError as e:
        raise CrosstuneError(f"{where} field '{field}': the template {_missing(e, ctx)}") from None
    except (TemplateError, TypeError, ValueError, KeyError, IndexError) as e:
        raise CrosstuneError(f"{where} field '{field}': the template failed on this row ({e})") from None
    finally:
        _steps.reset(token)


def evaluate(source: str, ctx: dict, where: str, field: str):
    """Evaluate an expression (`choices`, `[a, b, c]`, `answers | map(attribute='text') | list`) to a value."""
    token = _steps.set([MAX_STEPS])
    try:
        value = _expression(source)(**ctx)
        if isinstance(value, _Steps):
            value = list(value)
    except _LIMITS as e:
        raise CrosstuneError(f"{where} field '{field}': the expression was stopped by the sandbox "
                             f"({_limit_message(e)})") from None
    except UndefinedError as e:
        raise CrosstuneError(f"{where} field '{field}': the expression {_missing(e, ctx)}") from None
    except (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise CrosstuneError(f"{where} field '{field}': the expression failed on this row ({e})") from None
    finally:
        _steps.reset(token)
    if hasattr(value, "_undefined_name"):  # StrictUndefined survives attribute access on missing dict keys
        raise CrosstuneError(f"{where} field '{field}': the expression refers to a missing value "
                             f"{value._undefined_name!r} (row fields: {sorted(ctx.get('row', {}))})")
    return value


def is_name(source: str) -> bool:
    return bool(_NAME.match(source))
