"""What makes two evaluation runs the same run: model weights (or adapter) fingerprint, dtype, the prompt
template, the task config's hash and the hashes of the data files it read."""

from __future__ import annotations

from pathlib import Path

from crosstune.eval.sources import language_files
from crosstune.models.fingerprint import file_digest, model_fingerprint


def backend_fingerprint(backend) -> str:
    fp = getattr(backend, "fingerprint", None)
    if isinstance(fp, str) and fp:
        return fp
    model = getattr(backend, "model", None)
    path = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", None)
    if path:
        return model_fingerprint(path)
    return f"{getattr(backend, 'name', 'backend')}:{model if isinstance(model, str) else type(backend).__name__}"


def backend_dtype(backend) -> str | None:
    model = getattr(backend, "model", None)
    dtype = getattr(model, "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else None


def data_hashes(cfg, languages: list[str], data_root=None) -> dict[str, str]:
    """{file name: sha256 prefix} of every file the task reads for these languages (few-shot file too)."""
    files = language_files(cfg, languages, data_root)
    paths = sorted(set(files.values())) if isinstance(files, dict) else [files]
    if cfg.fewshot is not None:
        from crosstune import paths as data_paths

        paths.append(data_paths.resolve(cfg.fewshot.file, root=data_root,
                                        config=None if cfg.shipped else cfg.source, what="few-shot file"))
    return {Path(p).name: "sha256:" + file_digest(p)[:16] for p in paths}


def run_identity(backend, cfg, languages: list[str], data_root=None, template: str | None = None) -> dict:
    return {"model_fingerprint": backend_fingerprint(backend), "dtype": backend_dtype(backend),
            "template": template, "task_config": cfg.identity(), "data_files": data_hashes(cfg, languages, data_root)}
