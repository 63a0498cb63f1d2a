"""Components by name: a built-in short name, or `package.module:Object` for a user's own (one small registry).

Recipes, filters, backends, translation engines, answer extractors, judge protocols, experiment suite kinds and
the optimizer are looked up here (torchtune's `_component_` idea). Each kind is a `Registry`: its built-ins by
short name, and a check that an imported object is the right kind of thing, so a wrong path fails before any
work with one line naming the config file and field.

`package.module:Object` imports `package.module` as Python's `import` does (from `sys.path`: the working
directory when run as `python -m`, `PYTHONPATH`, installed packages) and runs its code: name only modules you
trust, as you would with `import`. `Object` may be dotted (`module:Class.factory`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crosstune.errors import CrosstuneError

_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class ComponentError(CrosstuneError, ValueError):
    """A bad component name. A `ValueError` too, so a pydantic validator that looks one up reports it against
    the config field (`file: field 'x': ...`)."""


def is_component_path(name: Any) -> bool:
    """`package.module:Object` (identifiers separated by dots, one colon)."""
    return isinstance(name, str) and _PATH.match(name) is not None


def _at(where: str | None, msg: str) -> str:
    return f"{where}: {msg}" if where else msg


def import_object(path: str, where: str | None = None) -> Any:
    """The object `package.module:Object` names; a `ComponentError` naming `where` when it cannot be had."""
    if not is_component_path(path):
        raise ComponentError(_at(where, f"{path!r} is not a component path; expected package.module:Object"))
    module_name, _, attr = path.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ComponentError(_at(where, f"{path!r}: cannot import module {module_name!r} ({e}); is its folder on "
                                        "PYTHONPATH or the package installed?")) from None
    except Exception as e:  # the user's module failed while importing: say how, without a traceback
        raise ComponentError(_at(where, f"{path!r}: importing {module_name!r} failed: "
                                        f"{type(e).__name__}: {e}")) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ComponentError(_at(where, f"{path!r}: {getattr(obj, '__name__', module_name)!r} has no "
                                            f"attribute {part!r}"))
        obj = getattr(obj, part)
    return obj


def describe(obj: Any) -> str:
    """A short phrase for what an object is, for wrong-kind errors."""
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    if callable(obj):
        return f"the function {getattr(obj, '__qualname__', obj)!r}"
    name = type(obj).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name} object"


@dataclass(frozen=True)
class Registry:
    """One kind of component: built-ins by short name, and what a user's object must be."""

    kind: str  # "filter", "recipe", ...: how errors name it
    builtins: Mapping[str, Any]
    accepts: Callable[[Any], bool]  # True when an imported object is of this kind
    expected: str  # what `accepts` wants, in words, for the error

    def names(self) -> list[str]:
        return list(self.builtins)

    def get(self, name: str, where: str | None = None) -> Any:
        """The built-in called `name`, or the object a `package.module:Object` path imports (checked)."""
        if isinstance(name, str) and name in self.builtins:
            return self.builtins[name]
        if not is_component_path(name):
            known = f"one of {', '.join(self.builtins)}, or " if self.builtins else ""
            raise ComponentError(_at(where, f"unknown {self.kind} {name!r}; expected {known}package.module:Object"))
        obj = import_object(name, where)
        if not self.accepts(obj):
            raise ComponentError(_at(where, f"{name!r} is {describe(obj)}, not a {self.kind}: expected "
                                            f"{self.expected}"))
        return obj

    def check(self, name: str) -> str:
        """`name` when it is a built-in or imports as this kind; raises `ComponentError` (a ValueError) else.
        For pydantic field validators."""
        self.get(name)
        return name


def is_subclass(obj: Any, base: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, base)


def is_function(obj: Any) -> bool:
    """A callable that is not a class (a function, a bound method, a `functools.partial`)."""
    return callable(obj) and not isinstance(obj, type)
