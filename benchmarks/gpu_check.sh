#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_check.py) for a machine with no network.
#
#   bash benchmarks/gpu_check.sh prepare            # here (GPU_CHECK_PYVER=3.12: the GPU image's Python), with PyPI: wheels + tokenizer into .gpu_check/ (< 60 MiB)
#   bash benchmarks/gpu_check.sh run [ARGS...]      # there: install the carried wheels, run, write the JSON
#   bash benchmarks/gpu_check.sh run --device cpu --shape tiny --steps 3 --warmup 1 --questions 8 --prompts 4 \
#        --new-tokens 8 --out /tmp/gpu_check_dry.json   # the dry run on a CPU
#
# `run` expects the GPU machine's own torch, transformers, peft, accelerate (never installs them) and installs
# crosstune and what that machine lacks (pydantic and its parts, langcodes, ...) from .gpu_check/wheels with
# --no-index --no-deps into a private folder. Default output: $OUT/gpu_check.json if $OUT is set, else
# gpu_check.json. Exit 2 with one error line when the carried files are missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
carry="${GPU_CHECK_DIR:-$here/.gpu_check}"
py="${PYTHON:-python3}"
cmd="${1:-}"; shift || true

# packages crosstune imports on the paths the check runs that the GPU image does not have (issue 21's list:
# it has torch, transformers, peft, accelerate, pandas, scipy, sacrebleu, pyyaml, typer, httpx, jinja2, rich)
NEEDS=(pydantic pydantic-core annotated-types typing-inspection langcodes language-data marisa-trie)

case "$cmd" in
  prepare)
    rm -rf "$carry/wheels" "$carry/tokenizer"; mkdir -p "$carry/wheels" "$carry/tokenizer"
    "$py" -m pip wheel -q --no-deps --no-build-isolation "$here" -w "$carry/wheels"
    for pkg in "${NEEDS[@]}"; do
      ver="$("$py" -m pip show "$pkg" 2>/dev/null | awk '/^Version:/{print $2}')"
      spec="$pkg${ver:+==$ver}"
      "$py" -m pip download -q 2> >(grep -v "^WARNING: Location" >&2) --no-deps --only-binary=:all: --python-version "${GPU_CHECK_PYVER:-3.12}" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$carry/wheels" "$spec"
    done
    tok="$("$py" -c 'from crosstune.models.loading import prepare_default; print(prepare_default())')"
    cp "$tok"/tokenizer.json "$tok"/tokenizer_config.json "$carry/tokenizer/"
    [ -f "$tok/chat_template.jinja" ] && cp "$tok/chat_template.jinja" "$carry/tokenizer/"
    [ -f "$tok/special_tokens_map.json" ] && cp "$tok/special_tokens_map.json" "$carry/tokenizer/"
    du -sh "$carry"; ls "$carry/wheels"
    size=$(du -sm "$carry" | cut -f1)
    if [ "$size" -ge 60 ]; then echo "error: $carry is ${size} MiB; the check must carry under 60 MiB" >&2; exit 2; fi
    ;;
  run)
    if ! ls "$carry"/wheels/crosstune-*.whl >/dev/null 2>&1 || [ ! -f "$carry/tokenizer/tokenizer.json" ]; then
      echo "error: $carry: no carried wheels or tokenizer (expected wheels/crosstune-*.whl and tokenizer/tokenizer.json);" \
           "run 'bash benchmarks/gpu_check.sh prepare' on a machine with PyPI and carry .gpu_check" >&2
      exit 2
    fi
    site="${GPU_CHECK_SITE:-/tmp/crosstune_gpu_check_site}"
    rm -rf "$site"
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$carry"/wheels/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    out="${OUT:+$OUT/gpu_check.json}"; out="${out:-gpu_check.json}"
    has_out=0; for x in "$@"; do case "$x" in --out|--out=*) has_out=1;; esac; done
    extra=(); [ "$has_out" = 1 ] || extra=(--out "$out")
    exec "$py" "$here/benchmarks/gpu_check.py" --tokenizer "$carry/tokenizer" "${extra[@]}" "$@"
    ;;
  *)
    echo "error: benchmarks/gpu_check.sh: expected 'prepare' or 'run' (got '${cmd}')" >&2; exit 2;;
esac
