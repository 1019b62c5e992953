"""Which judge checked a run's documents, if any: the dataset card's first lines say it, and
`archetypes publish` refuses a corpus that no enforcing judge checked unless told otherwise.

A corpus counts as judged when the run's manifest says an enforcing judge ran (`gates.judge`,
written by `generate` and updated by `check --apply`), that judge is not the embedded 135M
model, and every kept document carries a passing verdict from a judge other than the embedded
model. The records are read too because the manifest describes the last session only: a run
extended after a session with the judge off still holds those unjudged documents. (A document
that passed an advisory judge cannot be told apart from one that passed an enforcing one; the
manifest's mode is the word on that.)

Where `archetypes calibrate ... --out RUN/calibration.json` was run with the judge that checked
the documents, the card quotes its backfire recall and Cohen's kappa.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.records import Record
from generator.rundir import (
    CALIBRATION,
    Calibration,
    JudgeSetting,
    iter_run_records,
    judge_setting,
    read_calibration,
    read_run_manifest,
)
from generator.stats import TINY_MODEL


@dataclass
class JudgeCheck:
    setting: JudgeSetting | None
    calibration: Calibration | None = None
    documents: int = 0
    unjudged: int = 0  # kept documents with no verdict
    failed: int = 0  # kept documents whose verdict failed them (kept by an advisory judge)
    models: Counter[str] = field(default_factory=Counter)  # judge model -> documents

    @classmethod
    def start(cls, manifest: dict[str, Any] | None, run_dir: Path | None = None) -> JudgeCheck:
        """Before the records: the manifest's judge and the run's calibration report."""
        calibration = read_calibration(run_dir) if run_dir is not None else None
        return cls(judge_setting(manifest), calibration)

    @classmethod
    def of_run(cls, run_dir: Path) -> JudgeCheck:
        check = cls.start(read_run_manifest(run_dir), run_dir)
        for record in iter_run_records(run_dir, then="try again"):
            check.add(record)
        return check

    def add(self, record: Record) -> None:
        self.documents += 1
        judge = record.judge
        if judge is None:
            self.unjudged += 1
            return
        self.models[record.judge_model or judge.model] += 1
        if not judge.passed:
            self.failed += 1

    # -- verdicts --------------------------------------------------------------------------

    @property
    def enforced(self) -> bool:
        """An enforcing judge (not the embedded model) passed every kept document."""
        return not self.why_not()

    def why_not(self) -> str:
        """Why no enforcing judge vouches for the corpus, in a few words ("" when one does)."""
        setting = self.setting
        if setting is None:
            return "the run's manifest does not say which judge ran"
        if setting.mode == "off":
            return "the judge was off"
        if setting.mode != "enforce":
            return (
                f"the judge{self._named(setting.model)} was {setting.mode}: its verdicts were "
                "recorded, not enforced"
            )
        if setting.model == TINY_MODEL or self.models.get(TINY_MODEL):
            return (
                f"the judge was the embedded {TINY_MODEL}, a 135M-parameter model whose "
                "verdicts carry no weight"
            )
        if self.unjudged:
            return f"{self.unjudged} of {self.documents} documents carry no judge's verdict"
        if self.failed:
            return (
                f"{self.failed} of {self.documents} documents were kept although the judge "
                "failed them (a session with an advisory judge)"
            )
        if not self.documents:
            return "there are no documents"
        return ""

    @staticmethod
    def _named(model: str | None) -> str:
        return f" (`{model}`)" if model else ""

    def calibration_matches(self) -> bool:
        return self.calibration is not None and self.calibration.judge_model in self.models

    def card_lines(self) -> list[str]:
        """The card's first lines: which judge checked the corpus, and how well it is known to
        agree with people, or that no judge did."""
        if not self.enforced:
            return [
                f"**Not judged.** No enforcing judge checked these documents: {self.why_not()}. "
                "Only the offline gates listed under *Gates* below checked them, so a document "
                "in which an AI deceives, resists oversight or is a villain defeated may have "
                "passed."
            ]
        judges = ", ".join(
            f"`{model}` ({n:,} documents)" for model, n in sorted(self.models.items())
        )
        lines = [
            f"**Judged.** Every document was checked by an enforcing judge model, {judges}, "
            "which rejected documents that failed the archetype's rubric."
        ]
        calibration = self.calibration
        if calibration is not None and self.calibration_matches():
            figures = [
                f"backfire recall {_figure(calibration.backfire_recall)} (the share of "
                "documents labelled as teaching the wrong lesson that it rejected)",
                f"Cohen's kappa {_figure(calibration.kappa)} against the labels",
            ]
            lines.append(
                f"Calibrated against a labelled set with `archetypes calibrate` "
                f"(`{CALIBRATION}`, judge `{calibration.judge_model}`): {'; '.join(figures)}."
            )
        elif calibration is not None:
            lines.append(
                f"The run's `{CALIBRATION}` was made with another judge "
                f"(`{calibration.judge_model}`), so its figures say nothing about this one; "
                "this judge's agreement with people has not been measured."
            )
        else:
            lines.append(
                "This judge was not calibrated against a labelled set (no "
                f"`{CALIBRATION}` in the run directory), so how many bad documents it lets "
                "through has not been measured."
            )
        return lines


def _figure(value: float | None) -> str:
    return "not reported" if value is None else f"{value:.2f}"
