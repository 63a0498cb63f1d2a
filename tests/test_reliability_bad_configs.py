"""The bad-config corpus (tests/bad_configs/<kind>/*.yaml, each naming its expected error on its first line, plus a
few generated huge files) through the real CLI, one process per case, for all six config kinds: every case is one
`error:` line with exit status 2, no traceback, no hang (60 s per case), bounded memory (the peak RSS of the CLI process, measured by a small launcher: a process forked from pytest
would report pytest's own resident size, which Linux keeps in ru_maxrss across exec)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CORPUS = Path(__file__).parent / "bad_configs"
SRC = Path(__file__).resolve().parents[1] / "src"
TIMEOUT_S = 60
MAX_RSS_MB = 1500  # a bad config is refused long before anything big is built (torch's import is ~300 MB)
# Runs the CLI as its own child and writes that child's peak RSS (KiB) to argv[1]; exits with the child's status.
LAUNCHER = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, st, ru = os.wait4(p.pid, 0); "
            "open(sys.argv[1], 'w').write(str(ru.ru_maxrss)); sys.exit(os.waitstatus_to_exitcode(st))")


def command(kind: str, path: Path, out: Path) -> list[str]:
    return {"recipe": ["data", "build", str(path), "--out", str(out)],
            "train": ["train", str(path)],
            "task": ["eval", "run", "--model", "/nonexistent-model", "--tasks", str(path), "--out", str(out)],
            "experiment": ["run", str(path), "--out", str(out)],
            "translate": ["data", "translate", str(path), "--out", str(out)],
            "xinstruct": ["data", "xinstruct", str(path), "--out", str(out)]}[kind]


def generated(tmp: Path) -> list[tuple[str, Path, str]]:
    """Cases too big to keep in the repository: 50 MB files (the probe's), 2 MB values, a 200 kB value echoed."""
    cases = []
    for kind, head in (("train", "output_dir: out\n"), ("recipe", "name: crossin\n"),
                       ("experiment", "name: x\n"), ("translate", "languages: [pt]\n")):
        big = tmp / f"{kind}_50mb.yaml"
        big.write_text(head + "data: " + "x" * (50 << 20) + "\n")
        cases.append((kind, big, "bytes; a config file holds at most 4194304"))
    value = tmp / "task_2mb.yaml"
    value.write_text("name: t\ndefault_prompt: " + "x" * (2 << 20) + "\n")
    cases.append(("task", value, ":2: a value of 2097152 characters (at most 1048576)"))
    value = tmp / "translate_long_language.yaml"  # echoed in the message: cut in the middle
    value.write_text("source: {path: x.jsonl}\nlanguages: [" + "q" * 200_000 + "]\n")
    cases.append(("translate", value, "...[199743 characters cut]..."))
    value = tmp / "xinstruct_2mb_path.yaml"
    value.write_text("sources:\n  - {language: zh, path: " + "p" * (2 << 20) + "}\n")
    cases.append(("xinstruct", value, ":2: a value of 2097152 characters"))
    return cases


def run_case(kind: str, path: Path, tmp: Path) -> dict:
    out = tmp / "out" / f"{kind}-{path.stem}"
    err_file = tmp / f"{kind}-{path.stem}.err"
    rss_file = tmp / f"{kind}-{path.stem}.rss"
    env = {**os.environ, "PYTHONPATH": str(SRC), "CROSSTUNE_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "CROSSTUNE_SHARED": str(tmp / "no-shared"), "COLUMNS": "200"}
    env.pop("CROSSTUNE_DATA", None)
    t0 = time.monotonic()
    with open(err_file, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(rss_file), sys.executable, "-m", "crosstune",
                                 *command(kind, path, out)], cwd=tmp, env=env,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        hung = False
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > TIMEOUT_S:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, _ = os.wait4(proc.pid, 0)
                hung = True
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {"kind": kind, "case": path.stem, "rc": proc.returncode, "hung": hung, "seconds": time.monotonic() - t0,
            "rss_mb": int(rss_file.read_text()) / 1024 if rss_file.exists() else 0.0, "stderr": err_file.read_text(errors="replace")}


def test_every_bad_config_is_one_clean_error_line(tmp_path):
    cases = [(d.name, p, p.read_text(encoding="utf-8", errors="replace").splitlines()[0].removeprefix("# expect: "))
             for d in sorted(CORPUS.iterdir()) if d.is_dir() for p in sorted(d.glob("*.yaml"))]
    cases += generated(tmp_path)
    assert {k for k, _, _ in cases} == {"recipe", "train", "task", "experiment", "translate", "xinstruct"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: (run_case(c[0], c[1], tmp_path), c[2]), cases))
    problems = []
    for r, expect in results:
        lines = [x for x in r["stderr"].splitlines() if x.strip()]
        errors = [x for x in lines if x.startswith("error: ")]
        ok = (r["rc"] == 2 and not r["hung"] and "Traceback" not in r["stderr"] and len(errors) == 1
              and lines[-1] == errors[0] and expect in errors[0] and len(errors[0]) < 2500
              and r["rss_mb"] < MAX_RSS_MB)
        if not ok:
            problems.append(f"{r['kind']}/{r['case']}: rc={r['rc']} hung={r['hung']} rss={r['rss_mb']:.0f} MB "
                            f"expected {expect!r}; stderr tail: {r['stderr'][-600:]!r}")
    worst = max((r for r, _ in results), key=lambda r: r["rss_mb"])
    print(f"\nbad-config corpus: {len(results)} cases over {len({r['kind'] for r, _ in results})} kinds; "
          f"exit 2 with one error line: {sum(r['rc'] == 2 for r, _ in results)}; "
          f"tracebacks: {sum('Traceback' in r['stderr'] for r, _ in results)}; "
          f"hangs over {TIMEOUT_S} s: {sum(r['hung'] for r, _ in results)}; slowest "
          f"{max(r['seconds'] for r, _ in results):.1f} s; peak RSS worst {worst['rss_mb']:.0f} MB "
          f"({worst['kind']}/{worst['case']})")
    for r, _ in results:
        print(f"  {r['kind']}/{r['case']}: {r['stderr'].strip().splitlines()[-1][:160] if r['stderr'].strip() else ''}")
    assert not problems, "\n".join(problems)
