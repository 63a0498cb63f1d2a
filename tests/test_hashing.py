"""`crosstune.hashing`: the one place for file and JSON digests gives exactly the digests each caller computed
before the merge (they key experiment stages, caches, resume checks and manifests, so they must not change)."""

from __future__ import annotations

import hashlib
import json

from crosstune.hashing import file_sha256, json_sha256

VALUE = {"b": [1, 2.5, None], "a": {"zh": "中文", "x": True}, "path": "ü"}


def test_file_sha256_is_the_bytes_digest(tmp_path):
    p = tmp_path / "f.bin"
    data = bytes(range(256)) * 9000  # several read chunks
    p.write_bytes(data)
    assert file_sha256(p) == file_sha256(p, chunk=7) == hashlib.sha256(data).hexdigest()


def test_json_sha256_keeps_each_callers_form():
    ascii_form = hashlib.sha256(json.dumps(VALUE, sort_keys=True).encode()).hexdigest()
    utf8_form = hashlib.sha256(json.dumps(VALUE, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert json_sha256(VALUE) == ascii_form  # config_hash, task identity, the align cache key
    assert json_sha256(VALUE, ascii=False) == utf8_form != ascii_form  # the resume check
    odd = {"p": __import__("pathlib").Path("/x")}
    assert json_sha256(odd, ascii=False, default=str) == hashlib.sha256(  # experiment stage keys
        json.dumps(odd, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def test_callers_use_it(tmp_path):
    from crosstune.config import config_hash
    from crosstune.experiments.plan import _hash
    from crosstune.models.fingerprint import file_digest
    from crosstune.train.config import OptimSection

    assert _hash(VALUE) == json_sha256(VALUE, ascii=False, default=str)
    cfg = OptimSection()
    assert config_hash(cfg) == hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()
                                              ).hexdigest()[:16]
    p = tmp_path / "w.safetensors"
    p.write_bytes(b"weights")
    assert file_digest(p) == hashlib.sha256(b"weights").hexdigest()
