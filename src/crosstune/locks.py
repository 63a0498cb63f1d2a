"""One run folder, one writer: an advisory fcntl lock that a second crosstune process on the same folder meets.

```python
from crosstune.locks import folder_lock

with folder_lock(out_dir, "eval generate"):          # a second process refuses: one clear `error:` line
    ...
with folder_lock(out_dir, "run", wait=600):          # or waits up to 600 s for the first to finish
    ...
```

The lock is `DIR/.crosstune.lock` (created with the folder): `flock` on it, released by the kernel when the
holder exits or is killed, so a stale file never blocks anyone; the file holds the holder's pid, command and start
time for the message. Nested use in one process (a runner that calls a command on the same folder) is allowed.
Where `fcntl` is missing (Windows) the lock does nothing.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from crosstune.errors import CrosstuneError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".crosstune.lock"
_held: dict[str, int] = {}  # resolved folder -> nesting depth in this process


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another crosstune process"
    return (f"another crosstune process (pid {info.get('pid', '?')}, `crosstune {info.get('command', '?')}`, "
            f"since {info.get('since', '?')})")


@contextmanager
def folder_lock(folder: str | Path, command: str, wait: float = 0) -> Iterator[Path]:
    """Hold `folder`'s lock for the block (creating the folder). Another process holding it: raise a
    CrosstuneError at once (`wait=0`) or after waiting up to `wait` seconds for it to finish."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if fcntl is None or key in _held:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield folder
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait:g} s" if wait else ""
                    raise CrosstuneError(f"{folder}: {_holder(path)} is writing to this folder{waited}; wait for "
                                         f"it to finish or use another --out") from None
                time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command,
                                  "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
        _held[key] = 1
        try:
            yield folder
        finally:
            del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
