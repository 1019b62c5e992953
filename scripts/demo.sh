#!/usr/bin/env bash
# The README's first command: set up, validate the starter library, plan, and generate a small
# corpus on the embedded SmolLM2 model (no key, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/archetypes validate archetypes/
# The embedded 135M model rarely writes 300 words, so the length check is measured but relaxed;
# and it is no judge, so the judge is off here (both are stated in the manifest and the card).
# Judge the demo later with a real model: archetypes check outputs/demo --judge-provider ...
.venv/bin/archetypes generate archetypes/ --provider local -n "${DEMO_N:-6}" --out outputs/demo \
  --relax length --judge off
.venv/bin/archetypes build outputs/demo
echo
echo "Done. Read the documents in outputs/demo/records.jsonl (rejected attempts with reasons in"
echo "outputs/demo/rejects.jsonl); the dataset and its card are in outputs/demo/dataset/."
