"""Training state (optimizer, scheduler, RNG, crosstune's own) as JSON + safetensors: readable, and no pickle.

`save_tree(obj, stem)` writes `stem.json` (the structure: dicts, lists, tuples, numbers, strings, numpy arrays as
lists) and `stem.safetensors` (every torch tensor, by a path-like name); `load_tree(stem)` rebuilds the object.
Reading runs no code from the files, unlike `torch.load(weights_only=False)` on a pickle, so a crafted
checkpoint can at worst fail to load. Anything else (a custom object) is refused when saving.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from crosstune.errors import CrosstuneError


def _encode(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{path}.{k}") for k, v in obj.items()}
        return {"__items__": [[_encode(k, tensors, f"{path}.k{i}"), _encode(v, tensors, f"{path}.{i}")]
                              for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{path}: cannot store a {type(obj).__name__} in a checkpoint (JSON + safetensors only)")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return np.asarray(obj["__ndarray__"], dtype=np.dtype(obj["dtype"]))
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def save_tree(obj: Any, stem: Path) -> None:
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(obj, tensors, "t")
    save_file(tensors, str(stem) + ".safetensors")
    Path(str(stem) + ".json").write_text(json.dumps(tree, allow_nan=True), encoding="utf-8")


def load_tree(stem: Path) -> Any:
    js, st = Path(str(stem) + ".json"), Path(str(stem) + ".safetensors")
    if not js.is_file() or not st.is_file():
        raise CrosstuneError(f"{stem.parent}: no {js.name} / {st.name}; a checkpoint from an older crosstune "
                             f"(pickled state) is not loaded: train again without --resume")
    try:
        return _decode(json.loads(js.read_text(encoding="utf-8")), load_file(str(st)))
    except (ValueError, KeyError, TypeError) as e:
        raise CrosstuneError(f"{js}: not a readable crosstune checkpoint ({e})") from None
