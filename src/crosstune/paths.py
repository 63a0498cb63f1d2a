"""Where data files are found: the data root (`--data-root`, else `$CROSSTUNE_DATA`) and the one resolution rule.

The rule, for every file a config or command names (recipe sources, task data, translate and X-Instruction
sources and prompts, the recipes, training configs and prompt sets of an experiment, a training config's data):

1. an absolute path is used as it is;
2. a relative path is looked up under the data root (`--data-root DIR`, else `$CROSSTUNE_DATA`),
3. then next to the config file that names it,
4. then in the working directory; the first that exists wins;
5. a path that starts with `./` or `../` names a place beside the config (or the working directory), never a
   data set: the data root is skipped for it.

Never the location of the source tree: an installed wheel and a checkout find data the same way. Shipped files
name third-party data relative to the data root (`alpaca_chinese_parallel/alpaca_en_zh_52k_v3.jsonl.gz`) and
shipped files relative to themselves (`../recipes/pinch_p1.yaml`, `./instructions.jsonl`). The error when nothing is found names the
config file and field, every place looked, and how to set the data root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    """`explicit` (must be a folder), else `$CROSSTUNE_DATA` when it is a folder, else None: a stale variable
    only matters to the paths that are not found elsewhere (and their error says so)."""
    if explicit not in (None, ""):
        return data_root(explicit)
    try:
        return data_root()
    except CrosstuneError:
        return None


def _root_hint(base: Path | None) -> str:
    if base is not None:
        return f"; the data root is {base}"
    env = os.environ.get(ENV)
    why = f"${ENV}={env} is not a folder" if env else "no data root is set"
    return f"; {why} (export {ENV}=DIR or pass --data-root DIR)"


def resolve(raw: str | Path, *, root: str | Path | None = None, config: str | Path | None = None,
            what: str = "data file") -> Path:
    """An existing path for `raw` by the rule above (`root`: a `--data-root` value, None for `$CROSSTUNE_DATA`;
    `config`: the file that names `raw`). The error lists every place looked and how to set the data root."""
    p = Path(str(raw)).expanduser()
    if p.is_absolute():
        if p.exists():
            return p
        raise CrosstuneError(f"{what} {str(raw)!r}: no such file")
    base = data_root_if_set(root)
    beside = str(raw).replace("\\", "/").startswith(("./", "../"))  # rule 5: not under the data root
    candidates = [base / p] if base is not None and not beside else []
    if config is not None:
        candidates.append(Path(config).expanduser().resolve().parent / p)
    candidates.append(Path.cwd() / p)
    for cand in dict.fromkeys(candidates):
        if cand.exists():
            return cand
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise CrosstuneError(f"{what} {str(raw)!r}: not found (looked in {looked}){_root_hint(base)}")


@dataclass(frozen=True)
class Lookup:
    """Where one config's relative paths resolve: the data root (`root`: `--data-root`, None for
    `$CROSSTUNE_DATA`) and the config file itself. `lookup(raw, "sources.0.path")` -> an existing path, else one
    error naming the config, the field, every place looked and how to set the data root."""

    config: str | Path | None = None
    root: str | Path | None = None

    def __call__(self, raw: str | Path, field: str = "", what: str = "") -> Path:
        label = " ".join(x for x in (f"{self.config}:" if self.config else "",
                                     f"field '{field}':" if field else "", what) if x) or "data file"
        return resolve(raw, root=self.root, config=self.config, what=label)

    def spelled(self, raw: str | Path, field: str = "", what: str = "") -> str:
        """`raw` as it was written when it names the file found (absolute, or in the working directory), else
        the path found: what a command records keeps its old spelling (hashes, resumes) wherever it can."""
        found = self(raw, field, what)
        return str(raw) if Path(str(raw)).expanduser().is_absolute() or found == Path.cwd() / raw else str(found)


OPTION_HELP = (f"Folder relative data paths are looked up in first (default ${ENV}); then next to the config, then "
               "in the working directory.")
