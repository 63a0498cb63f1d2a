"""Where data files are found: the data root (`--data-root`, else `$CROSSTUNE_DATA`) and path resolution.

Never the location of the source tree: an installed wheel and a checkout find data the same way. A relative path
in a config is looked up under the data root, then next to the config file that names it, then in the working
directory; an absolute path is used as is (`resolve`). Recipes, experiments and X-Instruction configs name files
relative to the working directory, then the config's folders (`find`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from crosstune.errors import CrosstuneError

ENV = "CROSSTUNE_DATA"


def data_root(explicit: str | Path | None = None) -> Path | None:
    """The data root: `explicit` (a `--data-root` option) if given, else `$CROSSTUNE_DATA`, else None."""
    raw = explicit if explicit not in (None, "") else os.environ.get(ENV) or None
    if raw is None:
        return None
    root = Path(raw).expanduser()
    if not root.is_dir():
        source = "--data-root" if explicit not in (None, "") else f"${ENV}"
        raise CrosstuneError(f"{source} {root}: no such folder")
    return root


def data_root_if_set(explicit: str | Path | None = None) -> Path | None:
    """`explicit` (must be a folder), else `$CROSSTUNE_DATA` when it is a folder, else None: for experiments, where
    a stale variable only matters to files that use `{data_root}` (and they say so)."""
    if explicit not in (None, ""):
        return data_root(explicit)
    try:
        return data_root()
    except CrosstuneError:
        return None


def resolve(raw: str | Path, *, root: str | Path | None = None, config: str | Path | None = None,
            what: str = "data file") -> Path:
    """An existing path for `raw`: absolute as is; relative under the data root, next to `config`, or in the
    working directory (first hit wins). The error lists every place looked at and how to set the data root."""
    p = Path(str(raw)).expanduser()
    if p.is_absolute():
        if p.exists():
            return p
        raise CrosstuneError(f"{what} {p}: no such file")
    base = data_root(root)
    candidates = [base / p] if base is not None else []
    if config is not None:
        candidates.append(Path(config).expanduser().resolve().parent / p)
    candidates.append(Path.cwd() / p)
    for cand in candidates:
        if cand.exists():
            return cand
    looked = ", ".join(str(c) for c in candidates)
    hint = "" if base is not None else f"; no data root is set (export {ENV}=DIR or pass --data-root DIR)"
    raise CrosstuneError(f"{what} {raw}: not found (looked in {looked}){hint}")


def find(raw: str | Path, base_dirs: Sequence[Path], what: str = "source") -> Path:
    """An existing path for `raw`: absolute as is; relative in the working directory, then in each of
    `base_dirs` (a config's folder and its parent: the repository root for shipped configs), first hit wins."""
    p = Path(str(raw)).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, *(Path(d) / p for d in base_dirs)]
    for cand in candidates:
        if cand.exists():
            return cand
    raise CrosstuneError(f"{what} {str(raw)!r}: no such file (tried {', '.join(str(c) for c in candidates)})")
