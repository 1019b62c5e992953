"""`archetypes calibrate LABELS.jsonl`: how far the gate stack, judge included, agrees with
documents a person labelled.

Each line of LABELS is one document in the labelled format (`text`, `archetype_id`,
`trait_focus`, `genre`, `label` accept or reject, `reason`, optional `ai_name`; other keys such
as `id` and `note` are kept for the report or ignored). Every document is wrapped as a record
and sent through the gates a run uses, built by the same function (generator/session.py), the
whole set treated as one corpus so near-duplicates are caught as a run would catch them. The
judge is enforced (the question is what it would reject); `--judge off` runs the offline gates
alone.

The report, on screen and as JSON: the confusion matrix (reject is the positive class), the
share of each label reason rejected, backfire recall (the headline), the share of good
documents kept, Cohen's kappa between the labels and the gates, and the order-flip rate: each
judged document is judged again with the rubric in K other orders, and a flip is a verdict
(pass or fail) that differs from the one in the rubric's own order.

Backfire recall counts the documents labelled with a backfire reason (the seven flags, and the
reasons calibration/README.md maps onto them) that the gates rejected for a final reason: a
backfire flag, a trope, fabricated evidence. A rejection a rewrite could lift (a low score, an
anti-marker) does not count: in a run, such a document is rewritten once with the judge's
advice and judged again, so its backfire could still get through.

Reading the labels is generator/calibration_labels.py; the figures and the report are
generator/calibration_report.py.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

from generator.archetype import Archetype
from generator.backends.base import BackendConfig
from generator.calibration_labels import Label, load_labels
from generator.calibration_report import CalibrationReport, Flips, Outcome
from generator.gates import Gatekeeper, JudgeMode, Review
from generator.gates.judge import REORDERED, ask_judge
from generator.records import Judgement
from generator.rundir import RunDir
from generator.session import Judging, judging
from generator.spec import load_specs


async def calibrate(
    labels_path: Path,
    specs: Sequence[Path],
    judge: BackendConfig,
    mode: JudgeMode,
    escalate: BackendConfig | None = None,
    relax: frozenset[str] = frozenset(),
    permutations: int = 1,
    prices_file: Path | None = None,
    concurrency: int = 8,
) -> CalibrationReport:
    """Run the gate stack over the labelled documents and measure it (see the module
    docstring). Model answers are cached for this call only."""
    archetypes = {a.id: a for a in load_specs(specs)}
    labels = load_labels(labels_path, archetypes)
    with (
        tempfile.TemporaryDirectory(prefix="archetypes-calibrate-") as scratch,
        RunDir(Path(scratch)) as rundir,
    ):
        async with judging(rundir, judge, mode, relax, escalate, prices_file) as session:
            gatekeeper = session.gatekeeper()
            limit = asyncio.Semaphore(max(concurrency, 1))
            reviews = await asyncio.gather(
                *(_review(gatekeeper, label, archetypes, limit) for label in labels)
            )
            outcomes = [
                _keep_or_reject(gatekeeper, label, review)
                for label, review in zip(labels, reviews, strict=True)
            ]
            passes = session.passes()
            flips = None
            if session.judge is not None and permutations > 0:
                flips = await _order_flips(outcomes, archetypes, session, permutations, limit)
            return CalibrationReport(
                labels=labels_path,
                outcomes=outcomes,
                judge_model=session.policy.judge_model,
                escalate_model=session.policy.escalate_model,
                flips=flips,
                judge_passes=passes,
                cost_usd=session.cache.cost,
            )


async def _review(
    gatekeeper: Gatekeeper,
    label: Label,
    archetypes: dict[str, Archetype],
    limit: asyncio.Semaphore,
) -> Review:
    async with limit:
        record = label.record
        return await gatekeeper.review(record, archetypes[record.archetype_id], record.names)


def _keep_or_reject(gatekeeper: Gatekeeper, label: Label, review: Review) -> Outcome:
    """In file order, as a run keeps documents: a document that passed is checked once more
    against those kept before it (the reviews ran at once, so none saw another), then kept."""
    if review.passed:
        record = review.record
        late = gatekeeper.dedup.check(
            record.id, record.text, Gatekeeper.allowed_names(record, record.names)
        )
        if late.passed:
            gatekeeper.keep(record)
        else:
            review.failures.extend(late.failures)
    return Outcome(label, review)


def _rubric_order_verdict(judgement: Judgement) -> Judgement:
    """The judge's reading in the rubric's own order, among those kept on the record."""
    readings = [judgement, *judgement.other_verdicts]
    return next((j for j in readings if j.order == 0 and not j.escalated), judgement)


async def _order_flips(
    outcomes: list[Outcome],
    archetypes: dict[str, Archetype],
    session: Judging,
    permutations: int,
    limit: asyncio.Semaphore,
) -> Flips:
    """Each judged document read again in orders 1..K by the judge (not the stronger one);
    order 1 is the order control's, so those answers come from the cache when it ran."""
    flips = Flips(permutations)
    assert session.judge is not None
    call = session.judge.call

    async def permuted(outcome: Outcome, order: int) -> bool | None:
        record = outcome.review.record
        screen = record.checks.screen if record.checks else []
        async with limit:
            verdict = await ask_judge(
                call,
                record,
                archetypes[record.archetype_id],
                order=order,
                screen=screen,
                step="rejudge",
                max_reasks=session.policy.max_judge_reasks,
            )
        return None if verdict is None else verdict.passed

    judged = [o for o in outcomes if o.review.record.judge is not None]
    readings = await asyncio.gather(
        *(
            permuted(o, order)
            for o in judged
            for order in range(REORDERED, REORDERED + permutations)
        )
    )
    for index, outcome in enumerate(judged):
        judgement = outcome.review.record.judge
        assert judgement is not None
        base = _rubric_order_verdict(judgement).passed
        mine = readings[index * permutations : (index + 1) * permutations]
        flips.documents += 1
        changed = 0
        for passed in mine:
            if passed is None:
                flips.unreadable += 1
                continue
            flips.pairs += 1
            changed += passed != base
        flips.flipped += changed
        flips.documents_flipped += changed > 0
    return flips
