"""`archetypes check DIR`: run the gates again over an existing run, e.g. with a stronger judge,
without regenerating anything.

The verdicts go to DIR/checks/<judge-model>.jsonl (one line per record). With `apply`, records
that now fail move from records.jsonl to rejects.jsonl and the kept ones carry the new verdict;
a later `generate` with the same options then tops the run back up to N.

`check_on_executor` is the same check with the judge off, at corpus scale: the gates that judge
a document on its own (tropes, truncation, heuristics, screen) as a datatrove pipeline on an
executor (generator/scale/steps.py), streaming, to the same verdicts file in the same shape.
Near-duplicates are left to `archetypes dedup`, and kept records stay as they were, byte for
byte (in process they are written again with the measurements of this check).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.archetype import Archetype
from generator.backends.base import BackendConfig
from generator.errors import UserError
from generator.gates import GateFailure, Gatekeeper, GatePolicy, JudgeMode
from generator.records import Record, make_reject
from generator.rundir import RECORDS, RunDir
from generator.session import judging
from generator.spec import load_specs

if TYPE_CHECKING:
    from generator.scale.executors import ExecutorOptions

OFFLINE = "offline"  # the verdicts file's name when the judge is off
CHECK_STEP = "check"  # the step of the rejects `--apply` writes
WORK = "check"  # the executor pass's scratch folder, RUN/work/check


@dataclass
class CheckSummary:
    checked: int
    passed: int
    failed: Counter[str]
    report: Path
    applied: bool
    judge_model: str | None  # None: the judge was off
    # How many documents the order control and the stronger judge looked at, and the cost.
    judge_passes: dict[str, Any] = field(default_factory=dict)


def _archetypes(rundir: RunDir, specs: Sequence[Path]) -> dict[str, Archetype]:
    if specs:
        return {a.id: a for a in load_specs(specs)}
    manifest = rundir.read_manifest()
    if manifest is None:
        raise UserError(
            f"{rundir.path}: no manifest.json; is this a run directory from `archetypes generate`?"
        )
    sources = [Path(a.source) for a in manifest.archetypes if a.source is not None]
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
    escalate: BackendConfig | None = None,
) -> CheckSummary:
    if not (run_dir / RECORDS).exists():
        raise UserError(f"{run_dir}: no records.jsonl to check")
    with RunDir(run_dir) as rundir:
        archetypes = _archetypes(rundir, specs)
        async with judging(
            rundir, judge_config, judge_mode, relax, escalate, prices_file
        ) as session:
            summary = await _check_all(
                rundir, archetypes, session.gatekeeper(), apply, session.policy.judge_model
            )
            summary.judge_passes = session.passes()
            if apply and session.policy.judge == "enforce":
                _record_judge(rundir, session.policy)
            return summary


async def _check_all(
    rundir: RunDir,
    archetypes: dict[str, Archetype],
    gatekeeper: Gatekeeper,
    apply: bool,
    judge_model: str | None,
) -> CheckSummary:
    records = list(rundir.records())
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
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", judge_model or OFFLINE).strip("-") or "judge"
    report = rundir.write_jsonl(f"checks/{slug}.jsonl", report_lines)
    if apply:
        for record, failure in dropped:
            reject = make_reject(record, CHECK_STEP, failure.reason, failure.detail, record.text)
            rundir.append_reject(reject)
        rundir.write_jsonl(RECORDS, [r.model_dump(mode="json") for r in kept])
    failed = Counter(failure.reason for _, failure in dropped)
    return CheckSummary(len(records), len(kept), failed, report, apply, judge_model)


def _record_judge(rundir: RunDir, policy: GatePolicy) -> None:
    """After `--apply` with an enforcing judge every kept document carries its passing verdict,
    so the manifest names that judge: `publish` and the dataset card read it there."""
    manifest = rundir.read_manifest()
    if manifest is None:
        return
    manifest.gates = {**manifest.gates, "judge": policy.describe()["judge"]}
    rundir.write_manifest(manifest)


def run_check(
    run_dir: Path,
    judge_config: BackendConfig,
    judge_mode: JudgeMode | None,
    relax: frozenset[str],
    specs: Sequence[Path] = (),
    apply: bool = False,
    prices_file: Path | None = None,
    escalate: BackendConfig | None = None,
) -> CheckSummary:
    """Synchronous entry point for the CLI."""
    return asyncio.run(
        recheck(run_dir, judge_config, judge_mode, relax, specs, apply, prices_file, escalate)
    )


def check_on_executor(
    run_dir: Path,
    options: ExecutorOptions,
    relax: frozenset[str],
    specs: Sequence[Path] = (),
    apply: bool = False,
) -> CheckSummary:
    """`archetypes check RUN --judge off --executor KIND`: the per-document gates on the
    executor (see the module docstring); their verdicts in checks/offline.jsonl, and with
    `apply` the failing records moved to rejects.jsonl streaming (generator/scale/apply.py)."""
    from generator.scale.apply import move_failing
    from generator.scale.steps import check_corpus

    if not (run_dir / RECORDS).exists():
        raise UserError(f"{run_dir}: no records.jsonl to check")
    options.require_runtime()
    with RunDir(run_dir) as rundir:
        report = rundir.path / "checks" / f"{OFFLINE}.jsonl"
        rundir.remove_work(WORK)  # a killed pass's tasks read records that may have changed
        work = rundir.work_dir(WORK).resolve()
        given = [Path(p).resolve() for p in specs]
        counts = check_corpus(rundir.path.resolve(), report, work, options, given, relax)
        passed = counts.pop("passed", 0)
        if apply and counts:  # nothing failed: records.jsonl stays untouched
            move_failing(rundir, report, CHECK_STEP)
        rundir.remove_work(WORK)
    return CheckSummary(passed + counts.total(), passed, counts, report, apply, None)
