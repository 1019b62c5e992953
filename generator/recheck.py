"""`archetypes check DIR`: run the gates again over an existing run, e.g. with a stronger judge,
without regenerating anything.

The verdicts go to DIR/checks/<judge-model>.jsonl (one line per record). With `apply`, records
that now fail move from records.jsonl to rejects.jsonl and the kept ones carry the new verdict;
a later `generate` with the same options then tops the run back up to N.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.backends.base import BackendConfig, create_backend
from generator.backends.local import DEFAULT_MODEL_NAME
from generator.calls import Budget, CallStats, ModelCaller, ResponseCache
from generator.errors import UserError
from generator.gates import TINY_MODEL_NOTE, GateFailure, Gatekeeper, GatePolicy, JudgeMode
from generator.gates.dedup import DedupIndex
from generator.pricing import load_prices
from generator.records import Record, make_reject
from generator.rundir import RECORDS, REJECTS, RunDir
from generator.spec import Archetype, load_specs


@dataclass
class CheckSummary:
    checked: int
    passed: int
    failed: Counter[str]
    report: Path
    applied: bool
    judge_model: str


def _archetypes(rundir: RunDir, specs: Sequence[Path]) -> dict[str, Archetype]:
    if specs:
        return {a.id: a for a in load_specs(specs)}
    manifest = rundir.read_manifest()
    if manifest is None:
        raise UserError(
            f"{rundir.path}: no manifest.json; is this a run directory from `archetypes generate`?"
        )
    sources = [Path(a["source"]) for a in manifest.get("archetypes", [])]
    missing = [str(p) for p in sources if not p.exists()]
    if missing:
        raise UserError(
            f"spec file(s) recorded in the manifest are gone ({', '.join(missing)}); pass them with --specs"
        )
    return {a.id: a for a in load_specs(sources)}


async def recheck(
    run_dir: Path,
    judge_config: BackendConfig,
    judge_mode: JudgeMode | None,
    relax: frozenset[str],
    specs: Sequence[Path] = (),
    apply: bool = False,
    prices_file: Path | None = None,
) -> CheckSummary:
    if not (run_dir / RECORDS).exists():
        raise UserError(f"{run_dir}: no records.jsonl to check")
    backend = create_backend(judge_config)
    resolve = getattr(backend, "resolve_model", None)
    if resolve is not None:
        await resolve()
    try:
        with RunDir(run_dir) as rundir:
            archetypes = _archetypes(rundir, specs)
            tiny = backend.provider == "local" and backend.model == DEFAULT_MODEL_NAME
            policy = GatePolicy(
                relax=relax,
                judge=judge_mode or ("advisory" if tiny else "enforce"),
                judge_model=backend.model,
                judge_note=TINY_MODEL_NOTE if tiny else "",
            )
            cache = ResponseCache(rundir)
            price = load_prices(prices_file).lookup(
                backend.model, backend.provider, judge_config.self_hosted
            )
            caller = ModelCaller(
                backend, cache, price, Budget(cap=None, spent=cache.cost), CallStats()
            )
            gatekeeper = Gatekeeper(
                policy, DedupIndex(), caller.call if policy.judge != "off" else None
            )
            return await _check_all(rundir, archetypes, gatekeeper, apply, backend.model)
    finally:
        await backend.aclose()


async def _check_all(
    rundir: RunDir,
    archetypes: dict[str, Archetype],
    gatekeeper: Gatekeeper,
    apply: bool,
    judge_model: str,
) -> CheckSummary:
    records = [Record.model_validate(line) for line in rundir.read_jsonl(RECORDS)]
    unknown = sorted({r.archetype_id for r in records} - set(archetypes))
    if unknown:
        raise UserError(f"no spec for archetype(s) {', '.join(unknown)}; pass them with --specs")
    kept: list[Record] = []
    dropped: list[tuple[Record, GateFailure]] = []
    report_lines = []
    # Checked in order, one at a time, so near-duplicates keep the earlier document.
    for record in records:
        review = await gatekeeper.review(record, archetypes[record.archetype_id], record.names)
        judgement = review.record.judge
        report_lines.append(
            {
                "id": record.id,
                "passed": review.passed,
                "failures": [
                    {"gate": f.gate, "reason": f.reason, "detail": f.detail}
                    for f in review.failures
                ],
                "judge": judgement.model_dump(mode="json") if judgement else None,
            }
        )
        if review.passed:
            kept.append(review.record)
            gatekeeper.keep(review.record)
        else:
            dropped.append((record, review.failures[0]))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", judge_model).strip("-") or "judge"
    report = rundir.write_jsonl(f"checks/{slug}.jsonl", report_lines)
    if apply:
        for record, failure in dropped:
            reject = make_reject(record, "check", failure.reason, failure.detail, record.text)
            rundir.append(REJECTS, reject.model_dump(mode="json"))
        rundir.write_jsonl(RECORDS, [r.model_dump(mode="json") for r in kept])
    failed = Counter(failure.reason for _, failure in dropped)
    return CheckSummary(len(records), len(kept), failed, report, apply, judge_model)


def run_check(
    run_dir: Path,
    judge_config: BackendConfig,
    judge_mode: JudgeMode | None,
    relax: frozenset[str],
    specs: Sequence[Path] = (),
    apply: bool = False,
    prices_file: Path | None = None,
) -> CheckSummary:
    """Synchronous entry point for the CLI."""
    return asyncio.run(recheck(run_dir, judge_config, judge_mode, relax, specs, apply, prices_file))
