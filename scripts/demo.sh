#!/usr/bin/env bash
# The README's first command: set up, validate the starter library, then generate, build and
# report a small corpus on the embedded SmolLM2 model (no key, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
archetypes=.venv/bin/archetypes
$archetypes validate archetypes/
# A 135M model on a CPU: one archetype, two documents, and the compact brief (the default for
# the local model), so the generation stays well under three minutes on two idle cores. It rarely
# writes 300 words, so the length check is measured but relaxed; and it is no judge, so the judge
# is off. Both are stated in the run's manifest and the dataset card.
$archetypes generate archetypes/patient-tutor.yaml --provider local -n "${DEMO_N:-2}" \
  --out outputs/demo --relax length --judge off --no-progress
$archetypes build outputs/demo
$archetypes report outputs/demo --no-embeddings
cat <<'DONE'

Done. What the demo wrote:
  documents       outputs/demo/records.jsonl   (rejected attempts and why: outputs/demo/rejects.jsonl)
  dataset + card  outputs/demo/dataset/        (parquet shards and README.md, the dataset card)
  report          outputs/demo/report/index.html

The embedded model proves the pipeline, not the prose, and nothing judged these documents.
Judge them with a real model (this reports its verdicts; add --apply to drop what it fails):
  export OPENAI_API_KEY=...
  .venv/bin/archetypes check outputs/demo --judge-provider openai --judge-model gpt-4.1-mini
DONE
