#!/usr/bin/env bash
# Creates .venv and installs archetype-corpus with everything it needs, offline-capable after the
# first install. llama-cpp-python has no wheel on PyPI: pip compiles it (about 4 minutes on two
# cores the first time; pip's cache makes later installs fast). The portable CPU flags below avoid
# a segmentation fault that the default native build showed when loading a model.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF}"
extras="${1:-}"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
