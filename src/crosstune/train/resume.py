"""What a checkpoint must match to be resumed: the resolved config and the bytes of the data files.

`run.json` in every checkpoint holds the resolved config, its hash, the data files' SHA-256 and the number of
processes. `--resume` compares them with the current run before anything slow happens and refuses a changed
trajectory (seed, data, batch, schedule, model, ...) with an error naming the changed keys;
`--allow-changed KEY,...` accepts the listed ones. Keys that do not change what is trained are free to change.
"""

from __future__ import annotations

import json
from pathlib import Path

from crosstune import hashing
from crosstune.errors import CrosstuneError

# Keys that change where or how often things are written, not what is trained.
FREE = ("output_dir", "save_steps", "save_total_limit", "threads", "merge", "log.eval_every", "log.tensorboard",
        "log.wandb")
DATA_KEYS = ("data", "eval_data")


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def file_sha256(path: str | None) -> str | None:
    return hashing.file_sha256(path) if path and Path(path).is_file() else None


def fingerprint(cfg, world: int) -> dict:
    """The resolved config, its hash, the data files' content hashes and the number of processes."""
    config = cfg.model_dump(mode="json")
    tracked = {k: v for k, v in flatten(config).items() if k not in FREE}
    return {"config": config, "config_hash": hashing.json_sha256(tracked, ascii=False),
            "data_sha256": {k: file_sha256(config.get(k)) for k in DATA_KEYS}, "processes": world}


def changes(saved: dict, now: dict) -> dict[str, tuple]:
    """Changed keys -> (saved, now); data files whose bytes changed appear as `data (contents)`."""
    a, b = flatten(saved["config"]), flatten(now["config"])
    out = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if k not in FREE and a.get(k) != b.get(k)}
    for k in DATA_KEYS:
        old, new = saved["data_sha256"].get(k), now["data_sha256"].get(k)
        if k not in out and old != new:
            out[f"{k} (contents)"] = (old[:12] if old else None, new[:12] if new else None)
    if saved["processes"] != now["processes"]:
        out["processes"] = (saved["processes"], now["processes"])
    return out


def check(ckpt: Path, now: dict, allow: list[str]) -> None:
    saved = json.loads((ckpt / "run.json").read_text())
    changed = changes(saved, now)
    allowed = set(allow)
    unknown = sorted(allowed - set(flatten(now["config"])) - {"processes"} - {f"{k} (contents)" for k in DATA_KEYS}
                     - set(DATA_KEYS))
    if unknown:
        raise CrosstuneError(f"--allow-changed {','.join(unknown)}: not a config key (e.g. seed, batch.size, data)")
    refused = {k: v for k, v in changed.items() if k not in allowed and k.split(" ")[0] not in allowed}
    if not refused:
        return
    listed = ", ".join(f"{k} ({_short(a)} -> {_short(b)})" for k, (a, b) in refused.items())
    keys = ",".join(k.split(" ")[0] for k in refused)
    raise CrosstuneError(f"{ckpt}: cannot resume, changed since this checkpoint: {listed}; "
                         f"resume with the same settings, or pass --allow-changed {keys} to accept the change")


def _short(v) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 40 else s[:37] + "..."
