"""Nasty input files through the real CLI: `crosstune data inspect` and `crosstune data build` exit 0 or 2 with one
`error:` line naming file, line and field, never a traceback; plus a seeded byte-mutation fuzz of valid files."""

from __future__ import annotations

import gzip
import io
import json
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crosstune.data.inspect import profile
from crosstune.data.io import read_examples
from crosstune.errors import CrosstuneError

ROWS = [{"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, move, sleep."},
        {"instruction": "给出保持健康的三个建议。", "input": "", "output": "均衡饮食，多运动，睡好觉。"},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}]
LINES = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS)


def _parquet(rows) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)


def _corrupt_gz() -> bytes:
    data = bytearray(_gz(LINES * 200))
    data[len(data) // 2: len(data) // 2 + 8] = b"\xff" * 8
    return bytes(data)


# name -> (file bytes, the exact error line after "error: <path>", or None when the file is accepted)
CASES: dict[str, tuple[bytes, str | None]] = {
    "nested.jsonl": (('{"instruction": ' + "[" * 50_000 + "]" * 50_000 + ', "output": "x"}\n').encode(),
                     ":1 field 'instruction': JSON nested more than 200 levels deep (column 216); expected a row "
                     "of strings and small objects"),
    "nested.json": (("[" * 50_000 + "]" * 50_000).encode(),
                    ":1 (row 1): JSON nested more than 200 levels deep (column 201); expected a row of strings and "
                    "small objects"),
    "bigint.jsonl": (('{"instruction": "a", "output": "b", "n": ' + "9" * 5000 + "}\n").encode(),
                     ":1 field 'n': an integer with 5,000 digits (column 42); numbers past 4300 digits are not "
                     "supported, store it as a string"),
    "bigint.json": (('[{"instruction": "a", "output": "b", "n": ' + "9" * 5000 + "}]").encode(),
                    ":1 (row 1) field 'n': an integer with 5,000 digits (column 42); numbers past 4300 digits are "
                    "not supported, store it as a string"),
    "bom.jsonl": (b"\xef\xbb\xbf" + LINES.encode(), None),
    "bom.json": (b"\xef\xbb\xbf" + json.dumps(ROWS, ensure_ascii=False).encode(), None),
    "dupkey.jsonl": ((LINES + '{"instruction": "a", "output": "b", "output": "c"}\n').encode(),
                     ":4 field 'output': the key appears twice in one object; expected each key once"),
    "dupkey.json": (b'[{"instruction": "a", "output": "b"},\n {"instruction": "a", "instruction": "b", "output": "c"}]',
                    ":2 (row 2) field 'instruction': the key appears twice in one object; expected each key once"),
    "nul.jsonl": (LINES.encode() + b'{"instruction": "a\x00", "output": "b"}\n',
                  ":4: a NUL byte at column 19; expected UTF-8 JSON text (is the file UTF-16 or binary?)"),
    "utf16.jsonl": (LINES.encode("utf-16-le"), ":1: a NUL byte at column 2; expected UTF-8 JSON text (is the file "
                                               "UTF-16 or binary?)"),
    "truncated.jsonl.gz": (_gz(LINES * 500)[:300],
                           ": cannot read (Compressed file ended before the end-of-stream marker was reached); is "
                           "the file truncated or corrupt?"),
    "corrupt.jsonl.gz": (_corrupt_gz(), None),  # any one error line
    "not_gzip.jsonl.gz": (LINES.encode(), None),
    "truncated.parquet": (_parquet(ROWS)[:200], None),
    "garbage.parquet": (b"PAR1" + bytes(range(256)) * 4, None),
    "array_of_arrays.json": (b"[[1, 2], [3]]", ":1 (row 1): expected a JSON object (one row), got a JSON array"),
    "array_line.jsonl": ((json.dumps(ROWS) + "\n").encode(), ":1: expected a JSON object (one row), got a JSON array"),
    "object.json": (b'{"a": 1, "b": "x"}', ": expected a JSON array of rows (or an object holding one array), got "
                                           "an object with 0 arrays"),
    "scalar.json": (b"3", ": expected a JSON array of rows, got a number"),
    "string_line.jsonl": (b'"just a string"\n', ":1: expected a JSON object (one row), got a string"),
    "empty.jsonl": (b"", ": empty file, expected at least one row"),
    "blank.jsonl": (b"\n\n  \n", ": empty file, expected at least one row"),
    "empty_array.json": (b"[]", ": an empty JSON array, expected rows"),
    "unclosed.json": (json.dumps(ROWS).encode()[:-1], None),
    "surrogate.jsonl": (b'{"instruction": "a\\ud800", "output": "b"}\n',
                        ":1 field 'instruction': a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair) is "
                        "not text; expected valid Unicode"),
    "latin1.jsonl": (b'{"instruction": "caf\xe9", "output": "b"}\n', None),
    "binary.jsonl": (bytes(random.Random(0).randrange(256) for _ in range(3000)), None),
    "output_number.jsonl": (b'{"instruction": "a", "output": 3}\n', ":1 field 'output': expected a string, got a number"),
    "language_list.jsonl": (b'{"messages": [{"role": "user", "content": "hi", "language": ["en"]}, '
                            b'{"role": "assistant", "content": "yo"}]}\n',
                            ":1 message 0 field 'language': expected a language code, got a JSON array"),
    "role_object.jsonl": (b'{"conversations": [{"from": {"x": 1}, "value": "hi"}]}\n', None),
    "content_null.jsonl": (b'{"messages": [{"role": "user", "content": null}]}\n', None),
    "no_assistant.jsonl": (b'{"messages": [{"role": "user", "content": "hi"}]}\n', None),
    "meta_list.jsonl": (b'{"id": 1, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
                        b'"content": "a"}], "meta": [1]}\n', None),
    "messages_object.jsonl": (b'{"messages": {"role": "user"}}\n', None),
    "parquet_bytes.parquet": (_parquet([{"instruction": b"\xff\xfe", "output": "x"}]), None),
    "ok.parquet": (_parquet(ROWS), None),
}
# accepted by `data inspect` (a profile of any rows) but not by `data build` (instruction pairs only)
INSPECT_ONLY_OK = {"no_assistant.jsonl", "object.json"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crosstune", *args], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def _recipe(tmp: Path, source: Path) -> Path:
    path = tmp / f"recipe_{source.name}.yaml"
    path.write_text(json.dumps({"name": "monolingual", "sources": [{"language": "en", "path": str(source)}],
                                "recipe": {"language": "en"}}))
    return path


def _check(r: subprocess.CompletedProcess, what: str) -> list[str]:
    problems = []
    if r.returncode not in (0, 2):
        problems.append(f"{what}: exit {r.returncode}")
    if "Traceback" in r.stderr:
        problems.append(f"{what}: traceback\n{r.stderr[-2000:]}")
    if r.returncode == 2:
        errors = [x for x in r.stderr.splitlines() if x.startswith("error: ")]
        if len(errors) != 1:
            problems.append(f"{what}: expected one error line, got {r.stderr[-1000:]}")
    return problems


@pytest.fixture(scope="module")
def nasty(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("nasty")
    for name, (data, _) in CASES.items():
        (d / name).write_bytes(data)
    return d


def _runs(nasty: Path, names: list[str]) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    jobs = {}
    for name in names:
        jobs[name, "inspect"] = ("data", "inspect", str(nasty / name), "--sample", "5")
        jobs[name, "build"] = ("data", "build", str(_recipe(nasty, nasty / name)), "--out", str(nasty / f"out_{name}"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(jobs, pool.map(lambda a: run(*a), jobs.values())))
    return results


def test_every_nasty_file_exits_0_or_2_without_traceback(nasty):
    results = _runs(nasty, list(CASES))
    problems = []
    for (name, cmd), r in results.items():
        problems += _check(r, f"{cmd} {name}")
        expected = CASES[name][1]
        if expected is not None:
            want = f"error: {nasty / name}{expected}"
            if want not in r.stderr.splitlines():
                problems.append(f"{cmd} {name}: expected {want!r}, got {r.stderr.strip()[-500:]!r}")
        elif name in ("bom.jsonl", "bom.json", "ok.parquet") and r.returncode != 0:
            problems.append(f"{cmd} {name}: should be accepted, got {r.stderr.strip()[-500:]!r}")
        elif name in INSPECT_ONLY_OK and cmd == "inspect" and r.returncode != 0:
            problems.append(f"inspect {name}: should be accepted, got {r.stderr.strip()[-500:]!r}")
    assert not problems, "\n".join(problems)


def _mutants(seed: int, n: int) -> list[tuple[str, bytes]]:
    """Random byte flips, insertions, deletions and truncations of valid JSONL, JSON, gzip and Parquet files."""
    rng = random.Random(seed)
    bases = {".jsonl": LINES.encode(), ".json": json.dumps(ROWS, ensure_ascii=False, indent=1).encode(),
             ".jsonl.gz": _gz(LINES * 3), ".parquet": _parquet(ROWS)}
    specials = [b"\x00", b"\xff", b"{", b"[", b"]", b'"', b"\\", b"\\u", b"\n", b",", b"9" * 5000, b"\xef\xbb\xbf"]
    out = []
    for i in range(n):
        suffix = rng.choice(list(bases))
        data = bytearray(bases[suffix])
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data) + 1)
            op = rng.random()
            if op < 0.3 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            elif op < 0.6:
                data[pos:pos] = rng.choice(specials)
            elif op < 0.85:
                del data[pos:pos + rng.randint(1, 20)]
            else:
                del data[pos:]
        out.append((f"mutant_{i}{suffix}", bytes(data)))
    return out


def test_mutated_files_are_read_or_refused_cleanly(tmp_path):
    """In-process fuzz over the readers and the profiler: only `CrosstuneError`, never another exception."""
    for name, data in _mutants(seed=1, n=300):
        path = tmp_path / name
        path.write_bytes(data)
        for reader in (lambda p: list(read_examples(p)), lambda p: profile(p, sample=3)):
            try:
                reader(path)
            except CrosstuneError:
                pass


def test_mutated_files_through_the_cli(tmp_path):
    names = []
    for name, data in _mutants(seed=2, n=8):
        (tmp_path / name).write_bytes(data)
        names.append(name)
    problems = []
    for (name, cmd), r in _runs(tmp_path, names).items():
        problems += _check(r, f"{cmd} {name}")
    assert not problems, "\n".join(problems)
