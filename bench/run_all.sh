#!/usr/bin/env bash
# Run every benchmark once (about 30-40 minutes on 2 cores), then print the results as markdown.
# Each script saves bench/results/<name>.json; bench/report.py turns them into tables.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY -m bench.overhead "$@"
$PY -m bench.ratelimits
$PY -m bench.local_engine
$PY -m bench.postprocess
$PY -m bench.report
