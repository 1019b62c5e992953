#!/usr/bin/env bash
# The README's second command: set up with the dev extras, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,report
# The report test renders the page in a real headless browser (Debian's chromium).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check generator tests bench
.venv/bin/ruff format --check generator tests bench
.venv/bin/mypy
# Two workers, a test file each at a time (module fixtures such as the llama.cpp server stay in
# one worker): 8.2 minutes for the suite in a fresh clone against 12.6 on one worker.
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
