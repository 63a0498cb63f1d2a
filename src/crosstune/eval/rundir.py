"""Run folders of every eval command (run, consistency, generate, fidelity, judge): the `run.json` identity check,
resuming from rows already written, atomic rewrites, and the one-writer folder lock.

A run folder holds `run.json` (the settings that make two runs the same run); a rerun into the folder with any of
them changed is refused, naming each changed field, so results of different settings never mix. Row files are
appended to as a run goes; a killed write leaves a torn last line, which resuming drops (and cuts from the file),
while damage anywhere else is an error naming the file and line. Finished files are written whole and renamed into
place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from crosstune.errors import CrosstuneError
from crosstune.jsonl import read_rows, write_rows, write_text  # noqa: F401 (rundir.read_rows etc. for callers)

RUN_JSON = "run.json"


def as_json(obj):
    """`obj` as it reads back from a JSON file (tuples become lists), so a fresh identity compares equal to a stored
    one."""
    return json.loads(json.dumps(obj, ensure_ascii=False))


def changes(old, new, prefix: str = "") -> list[str]:
    """`field: old -> new` for every leaf that differs between two identities (nested dicts by dotted path)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += changes(a, b, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def check_run(run_dir: str | Path, meta: dict, *, write: bool = True, ignore: tuple[str, ...] = ()) -> None:
    """Refuse a folder whose `run.json` records other settings than `meta` (fields in `ignore` may differ);
    write `run.json` when there is none and `write` is set (one writer: the primary process)."""
    path = Path(run_dir) / RUN_JSON
    meta = as_json(meta)
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise CrosstuneError(f"{path}: not valid JSON; delete the folder to start this run over") from None
        changed = changes({k: v for k, v in old.items() if k not in ignore},
                          {k: v for k, v in meta.items() if k not in ignore})
        if changed:
            raise CrosstuneError(f"{path}: this folder holds a run with other settings (changed: "
                                 f"{', '.join(changed)}); use another --out, or delete the folder (cached model calls "
                                 "are reused either way)")
    elif write:
        write_json(path, meta)


def write_json(path: str | Path, obj) -> None:
    """Write a JSON file whole (indented, UTF-8) and rename it into place."""
    write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


@contextmanager
def run_lock(run_dir: str | Path, command: str, primary: bool = True) -> Iterator[Path]:
    """One writer per run folder: a second crosstune process on the same folder gets one `error:` line
    (`crosstune.locks.folder_lock`). The secondary processes of one `accelerate launch` cooperate with the primary
    and take no lock."""
    if not primary:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        yield Path(run_dir)
        return
    from crosstune.locks import folder_lock

    with folder_lock(run_dir, command) as folder:
        yield folder


def locked(command: str, folder_arg: str = "out_dir"):
    """Decorate a command's function so that it holds `run_lock` on its `folder_arg` folder while it runs."""
    import functools
    import inspect

    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args, **kwargs):
            folder = sig.bind(*args, **kwargs).arguments[folder_arg]
            with run_lock(folder, command):
                return fn(*args, **kwargs)

        return run

    return wrap
