#!/usr/bin/env bash
# The README's second command: set up with the dev extras, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check generator tests bench
.venv/bin/ruff format --check generator tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
