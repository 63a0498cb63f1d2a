#!/usr/bin/env python3
"""Fail on any import cycle between crosstune's top-level parts (subpackages like `eval`, `report`, and top-level
modules like `config`): prints each cycle with one import line per edge, then the count; exit 1 when any.

Every import counts, at module level or inside a function (a lazy import is still a dependency: it only hides
the cycle from the interpreter until run time). `if TYPE_CHECKING:` imports are left out (they never run).

    python scripts/check_imports.py [SRC_DIR]      # default: src/crosstune next to this script
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = "crosstune"


def _part(module: str) -> str | None:
    """`crosstune.eval.runner` -> `eval`; `crosstune.config` -> `config`; other packages -> None."""
    bits = module.split(".")
    return bits[1] if bits[0] == PACKAGE and len(bits) > 1 else None


def _module_name(path: Path, src: Path) -> str:
    rel = path.relative_to(src.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def imports(src: Path) -> dict[tuple[str, str], list[str]]:
    """(from part, to part) -> ["file:line import ..."] for every import that crosses parts."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        here = _part(module)
        if here is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _type_checking_lines(tree)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = module.split(".")
                    base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] if _part(mod) else []
                if mod == PACKAGE:  # `from crosstune import eval` (a submodule; not `__version__`)
                    targets = [f"{PACKAGE}.{a.name}" for a in node.names
                               if (src / a.name).is_dir() or (src / f"{a.name}.py").is_file()]
            for t in targets:
                there = _part(t)
                if there is not None and there != here:
                    rel = path.relative_to(src.parent)
                    edges[here, there].append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    return edges


def cycles(nodes: set[str], edges) -> list[list[str]]:
    """Elementary cycles of the part graph (Johnson-style enumeration; the graph has a dozen nodes)."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    order = sorted(nodes)
    found: list[list[str]] = []
    for i, start in enumerate(order):
        allowed = set(order[i:])
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(succ[node]):
                if nxt == start:
                    found.append(path + [start])
                elif nxt in allowed and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    return found


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "src" / PACKAGE
    edges = imports(src)
    nodes = {n for e in edges for n in e}
    found = cycles(nodes, edges)
    for cyc in found:
        print(" -> ".join(cyc))
        for a, b in zip(cyc, cyc[1:]):
            lines = edges[a, b]
            print(f"    {a} -> {b}: {lines[0]}" + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""))
    print(f"import cycles between crosstune's parts: {len(found)} ({len(nodes)} parts, {len(edges)} edges)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
