#!/usr/bin/env bash
# Run every benchmark once (about 50 minutes on 2 cores, plus a first compile of llama.cpp's
# server), then print the results as markdown.
# Each script saves bench/results/<name>.json; bench/report.py turns them into tables.
set -euo pipefail
cd "$(dirname "$0")/.."
# The bench extra compiles llama.cpp's server; tests and examples are not needed for it.
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
  LLAMA_CPP_BUILD_JOBS="$(nproc)" bash scripts/setup.sh dev,bench
PY=.venv/bin/python
$PY -m bench.overhead "$@"
$PY -m bench.ratelimits
$PY -m bench.local_engine --parallel 1
$PY -m bench.local_engine --parallel 4 --samples-per-request 4
$PY -m bench.shared_ideas
$PY -m bench.postprocess
$PY -m bench.dedup_agreement --n 100000
$PY -m bench.scale --n 100000 --paths inprocess datatrove   # --n 1000000: about 1.5 hours more
$PY -m bench.demo
$PY -m bench.embedded_models
$PY -m bench.report
