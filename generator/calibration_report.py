"""What `archetypes calibrate` measured: the confusion matrix (reject is the positive class),
the share of each label reason rejected, backfire recall, the share of good documents kept,
Cohen's kappa and the order-flip rate; on screen and as JSON (see generator/calibrate.py).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.calibration_labels import Label
from generator.errors import UserError
from generator.gates import Review
from generator.gates.judge import BACKFIRE_FLAGS, BACKFIRE_PREFIX, FIXABLE
from generator.records import now

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
        lines.append(self._backfire_line())
        good = [o for o in self.outcomes if o.label.label == "accept"]
        lines.append(
            f"good documents kept: {_num(self.good_kept())} "
            f"({sum(1 for o in good if not o.rejected)} of {len(good)})"
        )
        lines.append(f"Cohen's kappa: {_num(self.kappa())}")
        lines.append(self._flips_line())
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

    def _backfire_line(self) -> str:
        backfire = self.backfire()
        if not backfire["documents"]:
            return "backfire recall: n/a (no document labelled with a backfire reason)"
        return (
            f"backfire recall: {_num(backfire['recall'])} ({backfire['rejected_final']} of "
            f"{backfire['documents']} backfire documents rejected for a final reason; "
            f"{backfire['flagged']} flagged by the judge, {backfire['expected_flag']} with "
            "the expected flag)"
        )

    def _flips_line(self) -> str:
        flips = self.flips
        if flips is None:
            return "order flips: not measured (" + (
                "judge off)" if not self.judge_model else "--permutations 0)"
            )
        return (
            f"order flips: {_num(flips.rate)} ({flips.flipped} of {flips.pairs} verdicts "
            f"changed over {flips.permutations} permutation(s) of the rubric; "
            f"{flips.documents_flipped} of {flips.documents} judged documents flipped at "
            "least once)"
        )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


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
