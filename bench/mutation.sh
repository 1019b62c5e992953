#!/usr/bin/env bash
# Mutation testing of the money and safety paths with mutmut (configured in pyproject.toml's
# [tool.mutmut]): which small changes to pricing, the budget, the response cache and its keys,
# retry, the batch queue and collect, the run directory's recovery and the judge's evidence and
# backfire handling would the tests miss? Not part of CI: about an hour on 2 cores.
#
#   bash bench/mutation.sh            # the areas below
#   bash bench/mutation.sh 'generator.pricing.*'   # any mutmut name globs
#   .venv/bin/mutmut results          # the survivors; `.venv/bin/mutmut show NAME` for a diff
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -c "import mutmut" 2>/dev/null || .venv/bin/pip install -q mutmut
if [ "$#" -eq 0 ]; then
  set -- \
    'generator.pricing.*' \
    'generator.calls.*' \
    'generator.retry.*' \
    'generator.batch_queue.xǁBatchQueueǁ*' 'generator.batch.xǁ_Sessionǁcollect_one*' \
    'generator.batch.xǁ_Sessionǁ_one*' 'generator.batch.xǁCollectSummaryǁ*' \
    'generator.rundir.xǁRunDirǁ_repair*' 'generator.rundir.xǁRunDirǁopen*' \
    'generator.gates.judge.x_evidence_in*' 'generator.gates.judge.x__normalise*' \
    'generator.gates.judge.x__backfire_failure*' 'generator.gates.judge.x_assess*' \
    'generator.gates.judge.x_fixable*' 'generator.gates.judge.xǁVerdictǁ*' \
    'generator.gates.judge.x_stricter*' 'generator.gates.judge.x_disagree*' \
    'generator.gates.judge.x_needs_second_look*'
fi
# The mutated copy must win over the editable install, in this process and in the `archetypes`
# subprocesses the CLI tests start; the folder must exist before Python starts, or its import
# finder is cached as missing.
rm -rf mutants && mkdir mutants
PYTHONPATH="$PWD/mutants" .venv/bin/mutmut run --max-children 2 "$@"
.venv/bin/mutmut results
