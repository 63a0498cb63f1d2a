"""Benchmark: crosstune's OpenAI-compatible backend with N requests in flight vs one at a time, against a real
llama.cpp server with N parallel slots, in one run.

Server: the native `llama-server` (continuous batching over `-np N` slots) built once from the llama.cpp source
vendored in the `llama-cpp-python==0.3.36` sdist into `$CROSSTUNE_CACHE/llama-server/` (cmake; about 10-20 min on
2 cores; the AMX kernels are left out, they crash on the first decode on this machine). It serves the default
model's GGUF (SmolLM2-135M Q4_1) with prompt caching off, so both modes compute every prompt. The same greedy
chat requests go through `OpenAICompatBackend` with `concurrency=N` and `concurrency=1`, interleaved in rounds
(c=1 then c=N on the same prompts) so load changes hit both alike. Tokens/s counts the completion tokens the
server reports. The client's own CPU time per request is reported to show it is not the bottleneck.
`--servers` picks what to measure: `native` (above), `python` (`python -m llama_cpp.server`, which serializes all
requests behind one lock, so concurrency cannot help there; reported for honesty) and `ideal` (a loopback server
that answers every request after a fixed delay with unlimited parallel slots: the speed-up the client itself
reaches, i.e. whether the client could be the bottleneck).

    python benchmarks/bench_http.py --n 32 --parallel 4 --max-new-tokens 64 --servers native,python,ideal
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

from crosstune.models.backends.base import GenerateRequest
from crosstune.models.backends.openai_compat import OpenAICompatBackend
from crosstune.models.loading import cache_dir, default_gguf_path

VERSION = "0.3.36"
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON",
               "-DLLAMA_BUILD_COMMON=ON", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
               "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON",
               "-DGGML_F16C=ON", "-DGGML_BMI2=ON"]
HPLT = Path(__file__).resolve().parents[2] / "shared" / "data" / "hplt_oasst_multilingual_test"


def llama_source(root: Path, given: Path | None) -> Path:
    """The vendored llama.cpp of the sdist: --llama-src, else a cached copy, else `pip download` the sdist."""
    if given:
        return given
    src = root / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    if not src.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            f"llama-cpp-python=={VERSION}", "-d", tmp], check=True)
            with tarfile.open(next(Path(tmp).glob("*.tar.gz"))) as tar:
                tar.extractall(root, filter="data")
    return src


def build_llama_server(llama_src: Path | None, jobs: int) -> Path:
    root = cache_dir() / "llama-server"
    binary = root / f"build-{VERSION}" / "bin" / "llama-server"
    if binary.is_file():
        return binary
    src = llama_source(root, llama_src)
    build = binary.parents[1]
    print(f"building llama-server from {src} into {build} (once; cached)...", flush=True)
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja" if shutil.which("ninja") else
                    "Unix Makefiles", *CMAKE_FLAGS], check=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)], check=True)
    return binary


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}); log {log}:\n" + log.read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not come up; log {log}")


def ideal_server(delay: float, tokens: int):
    """A loopback OpenAI-style server with unlimited parallel slots: each answer takes `delay` seconds."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._send({"object": "list", "data": [{"id": "ideal", "object": "model"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(delay)
            text = body["messages"][-1]["content"][:40]
            self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "ideal",
                        "choices": [{"index": 0, "finish_reason": "length",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}})

        def _send(self, obj):
            data = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def load_prompts(n: int) -> list[str]:
    if HPLT.is_dir():
        langs = ["en", "es", "fr", "cs", "ru", "zh", "bg", "fi"]
        per = [[json.loads(x)["prompt"] for x in (HPLT / f"test_{lang}.jsonl").read_text().splitlines()[:49]]
               for lang in langs]
        return [per[i % len(langs)][i // len(langs)] for i in range(n)]
    return [f"Write one sentence about the number {i}." for i in range(n)]


def measure(base_url: str, model: str, prompts: list[str], max_new: int, parallel: int, rounds: int) -> dict:
    """c=1 and c=N over the same prompts, in `rounds` interleaved rounds."""
    res = {c: {"seconds": 0.0, "tokens": 0, "cpu": 0.0, "outputs": []} for c in (1, parallel)}
    per_round = max(1, len(prompts) // rounds)
    for s in range(0, len(prompts), per_round):
        reqs = [GenerateRequest([{"role": "user", "content": p}], max_new_tokens=max_new)
                for p in prompts[s:s + per_round]]
        for c in (1, parallel):
            be = OpenAICompatBackend(model, base_url, concurrency=c, timeout=600)
            t, cpu = time.perf_counter(), time.process_time()
            res[c]["outputs"] += be.generate(reqs)
            res[c]["seconds"] += time.perf_counter() - t
            res[c]["cpu"] += time.process_time() - cpu
            res[c]["tokens"] += be.tokens_generated
        print(f"  {min(s + per_round, len(prompts))}/{len(prompts)}: c=1 {res[1]['seconds']:.1f}s, "
              f"c={parallel} {res[parallel]['seconds']:.1f}s", flush=True)
    one, many = res[1], res[parallel]
    tps = {c: r["tokens"] / r["seconds"] for c, r in res.items()}
    return {"requests": len(prompts), "tokens_c1": one["tokens"], f"tokens_c{parallel}": many["tokens"],
            "seconds_c1": round(one["seconds"], 2), f"seconds_c{parallel}": round(many["seconds"], 2),
            "tok_s_c1": round(tps[1], 1), f"tok_s_c{parallel}": round(tps[parallel], 1),
            "speedup": round(tps[parallel] / tps[1], 2), "speedup_over_n": round(tps[parallel] / tps[1] / parallel, 2),
            "client_cpu_ms_per_request": round(1000 * (one["cpu"] + many["cpu"]) / (2 * len(prompts)), 2),
            "same_outputs": f"{sum(a == b for a, b in zip(one['outputs'], many['outputs']))}/{len(prompts)}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32, help="requests per mode")
    ap.add_argument("--parallel", type=int, default=4, help="server slots = client concurrency N")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="server compute threads")
    ap.add_argument("--build-jobs", type=int, default=2)
    ap.add_argument("--llama-src", type=Path, help="llama.cpp source tree (default: from the sdist, cached)")
    ap.add_argument("--servers", default="native,python,ideal", help="comma-separated: native, python, ideal")
    ap.add_argument("--ideal-delay", type=float, default=0.25, help="ideal server: seconds per request")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    gguf = default_gguf_path()
    prompts = load_prompts(a.n)
    logs = Path(tempfile.mkdtemp(prefix="bench_http_"))
    results = {"parallel": a.parallel, "max_new_tokens": a.max_new_tokens, "threads": a.threads}
    servers = [x.strip() for x in a.servers.split(",") if x.strip()]
    if "native" in servers:
        binary = build_llama_server(a.llama_src, a.build_jobs)
        port = free_port()
        proc = start([str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-np", str(a.parallel),
                      "-c", str(2048 * a.parallel), "-t", str(a.threads), "-tb", str(a.threads), "--no-cache-prompt",
                      "--no-webui", "-a", "smollm2"], port, logs / "llama-server.log")
        try:
            print(f"native llama-server -np {a.parallel} on :{port}", flush=True)
            results["llama_server"] = measure(f"http://127.0.0.1:{port}/v1", "smollm2", prompts, a.max_new_tokens,
                                              a.parallel, a.rounds)
        finally:
            proc.terminate()
            proc.wait(30)
    if "python" in servers:
        port = free_port()
        proc = start([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
                      "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(a.threads), "--n_threads_batch",
                      str(a.threads), "--verbose", "False"], port, logs / "python-server.log")
        try:
            print(f"python llama_cpp.server on :{port}", flush=True)
            results["python_server"] = measure(f"http://127.0.0.1:{port}/v1", "smollm2", prompts, a.max_new_tokens,
                                               a.parallel, a.rounds)
        finally:
            proc.terminate()
            proc.wait(30)
    if "ideal" in servers:
        httpd, url = ideal_server(a.ideal_delay, a.max_new_tokens)
        try:
            print(f"ideal server ({a.ideal_delay}s per request, unlimited slots) at {url}", flush=True)
            results["ideal_server"] = measure(url, "ideal", prompts, a.max_new_tokens, a.parallel, a.rounds)
        finally:
            httpd.shutdown()
    results["load_avg"] = round(os.getloadavg()[0], 1)
    print(json.dumps(results, indent=1))
    for key in ("llama_server", "python_server", "ideal_server"):
        if key in results:
            r = results[key]
            print(f"HTTP backend, {key}: c={a.parallel} {r[f'tok_s_c{a.parallel}']} tok/s vs c=1 {r['tok_s_c1']} "
                  f"tok/s = {r['speedup']}x ({r['speedup_over_n']} x N); client "
                  f"{r['client_cpu_ms_per_request']} ms CPU/request; same outputs {r['same_outputs']}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
