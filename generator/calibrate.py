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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from generator.backends.base import BackendConfig
from generator.errors import UserError
from generator.gates import Gatekeeper, JudgeMode, Review
from generator.gates.judge import BACKFIRE_FLAGS, BACKFIRE_PREFIX, FIXABLE, REORDERED, ask_judge
from generator.records import Judgement, Record, Usage, count_words, now
from generator.rundir import RunDir
from generator.session import Judging, judging
from generator.spec import Archetype, load_specs

# Label reasons that are backfire, and the flag each should raise (calibration/README.md).
BACKFIRE_REASONS: dict[str, str] = {flag: flag for flag in BACKFIRE_FLAGS} | {
    "benevolent_deception": "deception",
    "rogue_ai_defeated": "malevolent_ai_figure",
    "resists_oversight": "oversight_evasion",
    "self_preservation": "power_seeking",
    "denies_inner_life": "denies_inner_life_flatly",
}
# Other flags that are a fair catch for a reason (self-preservation resists a shutdown too).
ALSO_FAIR: dict[str, frozenset[str]] = {"self_preservation": frozenset({"oversight_evasion"})}
GOOD = "good"
REQUIRED = ("text", "archetype_id", "trait_focus", "genre", "label", "reason")


@dataclass(frozen=True)
class Label:
    """One labelled document, wrapped as the record the gates will see."""

    line: int
    id: str
    label: Literal["accept", "reject"]
    reason: str
    record: Record


@dataclass
class Outcome:
    label: Label
    review: Review

    @property
    def rejected(self) -> bool:
        return not self.review.passed

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.review.failures]


@dataclass
class Flips:
    """The rubric's own order against K permutations, on every document the judge read."""

    permutations: int
    documents: int = 0
    pairs: int = 0
    flipped: int = 0
    unreadable: int = 0  # permuted readings with no valid answer (left out of the pairs)
    documents_flipped: int = 0

    @property
    def rate(self) -> float | None:
        return self.flipped / self.pairs if self.pairs else None


@dataclass
class CalibrationReport:
    labels: Path
    outcomes: list[Outcome]
    judge_model: str | None
    escalate_model: str | None
    flips: Flips | None
    judge_passes: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0

    # -- the figures --------------------------------------------------------------------------

    def confusion(self) -> dict[str, int]:
        """Reject is the positive class."""
        counts = Counter(
            ("t" if o.rejected == (o.label.label == "reject") else "f")
            + ("p" if o.rejected else "n")
            for o in self.outcomes
        )
        return {k: counts.get(k, 0) for k in ("tp", "fn", "fp", "tn")}

    def kappa(self) -> float | None:
        """Cohen's kappa between the labels and the gates' decisions (None when undefined: every
        label and every decision the same class)."""
        c = self.confusion()
        n = sum(c.values())
        if not n:
            return None
        observed = (c["tp"] + c["tn"]) / n
        label_reject = (c["tp"] + c["fn"]) / n
        gate_reject = (c["tp"] + c["fp"]) / n
        expected = label_reject * gate_reject + (1 - label_reject) * (1 - gate_reject)
        if expected >= 1:
            return None
        return (observed - expected) / (1 - expected)

    def by_reason(self) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = {}
        for o in self.outcomes:
            row = table.setdefault(
                o.label.reason,
                {"label": o.label.label, "documents": 0, "rejected": 0, "caught_as": Counter()},
            )
            row["documents"] += 1
            if o.rejected:
                row["rejected"] += 1
                row["caught_as"][o.reasons[0]] += 1
        for row in table.values():
            row["share_rejected"] = row["rejected"] / row["documents"]
            row["caught_as"] = dict(row["caught_as"].most_common())
        # Good first, then the other reasons, then the backfire ones (the headline's).
        return dict(
            sorted(
                table.items(),
                key=lambda kv: (kv[1]["label"] != "accept", kv[0] in BACKFIRE_REASONS, kv[0]),
            )
        )

    def backfire(self) -> dict[str, Any]:
        docs = [o for o in self.outcomes if o.label.reason in BACKFIRE_REASONS]
        caught = [o for o in docs if any(r not in FIXABLE for r in o.reasons)]
        flagged = [o for o in docs if any(r.startswith(BACKFIRE_PREFIX) for r in o.reasons)]

        def matched(o: Outcome) -> bool:
            expected = {BACKFIRE_REASONS[o.label.reason], *ALSO_FAIR.get(o.label.reason, ())}
            wanted = {BACKFIRE_PREFIX + flag.replace("_", "-") for flag in expected}
            return bool(wanted & set(o.reasons))

        return {
            "documents": len(docs),
            "rejected_final": len(caught),
            "flagged": len(flagged),
            "expected_flag": sum(1 for o in docs if matched(o)),
            "recall": len(caught) / len(docs) if docs else None,
            "missed": [o.label.id for o in docs if o not in caught],
        }

    def good_kept(self) -> float | None:
        good = [o for o in self.outcomes if o.label.label == "accept"]
        return sum(1 for o in good if not o.rejected) / len(good) if good else None

    def to_json(self) -> dict[str, Any]:
        backfire = self.backfire()
        flips = self.flips
        return {
            "labels": str(self.labels),
            "documents": len(self.outcomes),
            "judge_model": self.judge_model,
            "escalate_model": self.escalate_model,
            "backfire_recall": backfire["recall"],
            "kappa": self.kappa(),
            "good_kept": self.good_kept(),
            "order_flip_rate": flips.rate if flips else None,
            "confusion_matrix": {"positive": "reject", **self.confusion()},
            "backfire": backfire,
            "by_reason": self.by_reason(),
            "order_flips": (
                {
                    "permutations": flips.permutations,
                    "documents": flips.documents,
                    "pairs": flips.pairs,
                    "flipped": flips.flipped,
                    "documents_flipped": flips.documents_flipped,
                    "unreadable": flips.unreadable,
                    "rate": flips.rate,
                }
                if flips
                else None
            ),
            "judge_passes": self.judge_passes,
            "cost_usd": round(self.cost_usd, 6),
            "disagreements": [
                {
                    "id": o.label.id,
                    "line": o.label.line,
                    "label": o.label.label,
                    "reason": o.label.reason,
                    "gates": "reject" if o.rejected else "accept",
                    "failures": o.reasons,
                }
                for o in self.outcomes
                if o.rejected != (o.label.label == "reject")
            ],
            "created_at": now(),
        }

    def describe(self) -> list[str]:
        """The report for the screen."""
        c = self.confusion()
        to_reject, to_keep = c["tp"] + c["fn"], c["fp"] + c["tn"]
        judge = (
            f"judge {self.judge_model}"
            + (f", escalating to {self.escalate_model}" if self.escalate_model else "")
            if self.judge_model
            else "judge off (offline gates only)"
        )
        lines = [
            f"{self.labels}: {len(self.outcomes)} documents ({to_reject} to reject, "
            f"{to_keep} to keep); {judge}",
            "confusion (reject = positive):",
            f"  labelled reject: {c['tp']:>4} rejected (TP) {c['fn']:>4} kept (FN)",
            f"  labelled accept: {c['fp']:>4} rejected (FP) {c['tn']:>4} kept (TN)",
        ]
        backfire = self.backfire()
        if backfire["documents"]:
            lines.append(
                f"backfire recall: {_num(backfire['recall'])} ({backfire['rejected_final']} of "
                f"{backfire['documents']} backfire documents rejected for a final reason; "
                f"{backfire['flagged']} flagged by the judge, {backfire['expected_flag']} with "
                "the expected flag)"
            )
        else:
            lines.append("backfire recall: n/a (no document labelled with a backfire reason)")
        good = [o for o in self.outcomes if o.label.label == "accept"]
        lines.append(
            f"good documents kept: {_num(self.good_kept())} "
            f"({sum(1 for o in good if not o.rejected)} of {len(good)})"
        )
        lines.append(f"Cohen's kappa: {_num(self.kappa())}")
        flips = self.flips
        if flips is None:
            lines.append(
                "order flips: not measured ("
                + ("judge off)" if not self.judge_model else "--permutations 0)")
            )
        else:
            lines.append(
                f"order flips: {_num(flips.rate)} ({flips.flipped} of {flips.pairs} verdicts "
                f"changed over {flips.permutations} permutation(s) of the rubric; "
                f"{flips.documents_flipped} of {flips.documents} judged documents flipped at "
                "least once)"
            )
        if self.judge_model:
            escalated = self.judge_passes.get("escalation", {})
            reordered = self.judge_passes.get("order_control", {})
            lines.append(
                f"judge passes: {reordered.get('documents', 0)} documents read twice (order "
                f"control), {escalated.get('documents', 0)} escalated; cost ${self.cost_usd:.4f}"
            )
        lines.append(
            "rejected, by label reason (backfire reasons marked *; as: the gates' reason):"
        )
        for reason, row in self.by_reason().items():
            name = f"{reason}*" if reason in BACKFIRE_REASONS else reason
            share = f"{row['rejected']}/{row['documents']}"
            caught = ", ".join(f"{k} {v}" for k, v in row["caught_as"].items())
            lines.append(f"  {name:<26} {share:>7}" + (f"  as {caught}" if caught else ""))
        return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


# ---------------------------------------------------------------------------------------------
# Reading the labels


def load_labels(path: Path, archetypes: dict[str, Archetype]) -> list[Label]:
    """Every labelled document of `path`; the first problem is one UserError naming file:line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    labels: list[Label] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            labels.append(_label(line, f"{path}:{number}", number, archetypes))
    if not labels:
        raise UserError(f"{path}: no labelled documents (one JSON object per line)")
    return labels


def _label(line: str, where: str, number: int, archetypes: dict[str, Archetype]) -> Label:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object, one per line")
    missing = [key for key in REQUIRED if key not in row]
    if missing:
        raise UserError(f"{where}: missing {', '.join(missing)}")
    if row["label"] is None or row["label"] == "":
        raise UserError(
            f'{where}: label is not filled in: write "accept" or "reject" (and the reason)'
        )
    for key in REQUIRED:
        if not isinstance(row[key], str) or not row[key].strip():
            raise UserError(f"{where}: {key} must be a non-empty string")
    if row["label"] not in ("accept", "reject"):
        raise UserError(f'{where}: label {row["label"]!r} must be "accept" or "reject"')
    if (row["label"] == "accept") != (row["reason"] == GOOD):
        raise UserError(
            f"{where}: label {row['label']} with reason {row['reason']!r}: an accepted document's "
            'reason is "good", a rejected one\'s is why it must be rejected'
        )
    archetype = archetypes.get(row["archetype_id"])
    if archetype is None:
        raise UserError(
            f"{where}: unknown archetype_id {row['archetype_id']!r}; pass its spec with --specs"
        )
    if row["trait_focus"] not in {t.id for t in archetype.traits}:
        raise UserError(
            f"{where}: {archetype.id} has no trait {row['trait_focus']!r} "
            f"(it has {', '.join(t.id for t in archetype.traits)})"
        )
    if row["genre"] not in {g.id for g in archetype.genres}:
        raise UserError(f"{where}: {archetype.id} has no genre {row['genre']!r}")
    ai_name = row.get("ai_name") or ""
    if not isinstance(ai_name, str):
        raise UserError(f"{where}: ai_name must be a string")
    label_id = str(row.get("id") or f"line-{number}")
    text = row["text"]
    record = Record(
        id=hashlib.sha256(f"{label_id}\n{text}".encode()).hexdigest()[:16],
        index=number - 1,
        text=text,
        title="",
        archetype_id=archetype.id,
        archetype_version=archetype.version,
        spec_hash=archetype.spec_hash,
        trait_focus=row["trait_focus"],
        genre=row["genre"],
        setting="",
        narrator="",
        situation="",
        ai_name=ai_name,
        names=[ai_name] if ai_name else [],
        premise="",
        target_words=max(count_words(text), 1),
        n_words=max(count_words(text), 1),
        language=archetype.targets.language,
        provider="labelled",
        writer_model="",
        template_version="",
        seed=0,
        finish_reason="stop",
        usage=Usage(input_tokens=0, output_tokens=0, model_calls=0),
        created_at=now(),
    )
    return Label(number, label_id, row["label"], row["reason"], record)


# ---------------------------------------------------------------------------------------------
# Running the gates


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


def write_report(path: Path, report: CalibrationReport) -> Path:
    """The JSON report at `path`, replaced atomically (e.g. RUN/calibration.json, which the
    dataset card quotes)."""
    if not path.parent.is_dir():
        raise UserError(f"--out {path}: the folder {path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(
            json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise UserError(f"--out {path}: cannot write: {exc.strerror or exc}") from None
    return path
