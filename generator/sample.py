"""`archetypes sample RUN -n N --out labels.jsonl`: documents of a run to label by hand, so a team
can calibrate its judge on its own corpus (`archetypes calibrate labels.jsonl`).

The sample is stratified, level by level, so that small groups are not drowned by large ones:
first kept against rejected documents (half each, as far as each side has documents), then, on
the rejected side, the reject reason, then the archetype, then the genre. At every level the
documents still to pick are shared equally among the groups, a group with too few documents
giving its remainder to the others; which groups get one more when the share does not divide
evenly is drawn with the seed. Within a group, documents are drawn at random with the seed.
The same run and seed always give the same file (the documents are sorted by id before any
draw, so the order of records.jsonl does not matter).

Each line is the labelled format `calibrate` reads (`text`, `archetype_id`, `trait_focus`,
`genre`, `label`, `reason`, `ai_name`) with `label` and `reason` left null for a person to fill
in, plus `id` and the gates' own verdict (`gate_outcome`: kept or rejected, `gate_reason`) for
the labeller's information. Rejected attempts with no text (no idea came back, the writer
returned nothing) have nothing to label and are left out.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from generator.errors import OutputError, UserError
from generator.plan import Task, iter_tasks
from generator.records import Reject
from generator.rundir import (
    MANIFEST,
    RECORDS,
    REJECTS,
    iter_run_records,
    iter_run_rejects,
    read_run_manifest,
)

KEPT = "kept"
REJECTED = "rejected"

T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    """One document that may be sampled: a kept record or a rejected attempt with text."""

    id: str
    text: str
    archetype_id: str
    trait_focus: str
    genre: str
    ai_name: str | None
    outcome: str  # KEPT or REJECTED
    reason: str | None  # the reject reason (None when kept)

    def row(self) -> dict[str, Any]:
        """The labelled format, with `label` and `reason` for a person to fill in."""
        row: dict[str, Any] = {
            "text": self.text,
            "archetype_id": self.archetype_id,
            "trait_focus": self.trait_focus,
            "genre": self.genre,
            "label": None,
            "reason": None,
        }
        if self.ai_name:
            row["ai_name"] = self.ai_name
        row.update(id=self.id, gate_outcome=self.outcome, gate_reason=self.reason)
        return row


@dataclass
class SampleSummary:
    out: Path
    written: int
    kept: int
    rejected: int
    available: int  # documents there were to sample from
    skipped: int  # rejects left out: no text, or slots that could not be recovered
    notes: list[str]

    def describe(self) -> list[str]:
        """The lines `archetypes sample` prints."""
        lines = [f"note: {note}" for note in self.notes]
        lines.append(
            f"wrote {self.written} documents to {self.out} ({self.kept} kept, {self.rejected} "
            f"rejected by the gates, from {self.available}); fill in each line's label "
            "(accept or reject) and reason (good, or why it must be rejected), then run "
            f"`archetypes calibrate {self.out}`"
        )
        return lines


# ---------------------------------------------------------------------------------------------
# Stratified drawing


def allocate(sizes: dict[Any, int], n: int, order: Sequence[Any]) -> dict[Any, int]:
    """Share `n` among groups as equally as their sizes allow, one at a time in `order`: a group
    that runs out gives its turn to the others, so as many as min(n, total) are allocated."""
    given = dict.fromkeys(order, 0)
    active = [key for key in order if sizes[key] > 0]
    remaining = n
    while remaining > 0 and active:
        for key in list(active):
            if remaining == 0:
                break
            given[key] += 1
            remaining -= 1
            if given[key] == sizes[key]:
                active.remove(key)
    return given


def stratified(
    items: Sequence[T], n: int, levels: Sequence[Callable[[T], Hashable]], rng: random.Random
) -> list[T]:
    """Up to `n` of `items`, shared equally among the groups of `levels[0]`, within each group
    among the groups of `levels[1]`, and so on; at random within the last level."""
    if n <= 0 or not items:
        return []
    if not levels:
        return rng.sample(list(items), min(n, len(items)))
    groups: dict[Hashable, list[T]] = defaultdict(list)
    for item in items:
        groups[levels[0](item)].append(item)
    order = sorted(groups, key=str)
    rng.shuffle(order)
    shares = allocate({key: len(groups[key]) for key in order}, n, order)
    picked: list[T] = []
    for key in sorted(order, key=str):
        picked.extend(stratified(groups[key], shares[key], levels[1:], rng))
    return picked


LEVELS: tuple[Callable[[Candidate], Hashable], ...] = (
    lambda c: c.outcome,
    lambda c: c.reason or KEPT,
    lambda c: c.archetype_id,
    lambda c: c.genre,
)


def draw(candidates: Iterable[Candidate], n: int, seed: int) -> list[Candidate]:
    """The sample: stratified by outcome, reason, archetype and genre; in a shuffled order, so
    that a labeller does not meet all the rejects in one block."""
    ordered = sorted(candidates, key=lambda c: c.id)
    rng = random.Random(f"archetypes-sample:{seed}")
    picked = stratified(ordered, n, LEVELS, rng)
    rng.shuffle(picked)
    return picked


# ---------------------------------------------------------------------------------------------
# Reading the run


def _planned_slots(manifest: dict[str, Any] | None, wanted: dict[str, int]) -> dict[str, Task]:
    """The planned tasks of the rejects in `wanted` (id -> index), from the plan the manifest
    recorded: for rejects written before they carried their slots. Empty when the specs the
    run recorded are gone or have changed."""
    from generator.spec import load_specs

    if not wanted or manifest is None:
        return {}
    entries = [e for e in manifest.get("archetypes") or [] if isinstance(e, dict)]
    sources = [Path(str(e.get("source", ""))) for e in entries]
    if not entries or not all(p.is_file() for p in sources):
        return {}
    try:
        archetypes = load_specs(sources)
    except UserError:
        return {}
    hashes = {str(e.get("id")): e.get("spec_hash") for e in entries}
    if any(hashes.get(a.id) != a.spec_hash for a in archetypes):
        return {}
    samples = manifest.get("samples_per_request") or 1
    seed = manifest.get("seed", 0)
    if not isinstance(samples, int) or not isinstance(seed, int):
        return {}
    last = max(wanted.values())
    found: dict[str, Task] = {}
    for task in iter_tasks(archetypes, seed, samples):
        if task.index > last:
            break
        if wanted.get(task.id) == task.index:
            found[task.id] = task
    return found


def candidates(run_dir: Path) -> tuple[list[Candidate], list[str], int]:
    """Every document of the run that can be labelled, notes for the user, and how many rejects
    were left out. A document both kept and rejected (a record moved by `check --apply` and
    generated again) counts as kept; of several rejects of one task, the last one counts."""
    kept: dict[str, Candidate] = {}
    for record in iter_run_records(run_dir, then="sample again"):
        kept[record.id] = Candidate(
            record.id,
            record.text,
            record.archetype_id,
            record.trait_focus,
            record.genre,
            record.ai_name or None,
            KEPT,
            None,
        )
    rejects: dict[str, Reject] = {}
    without_text = 0
    for reject in iter_run_rejects(run_dir, then="sample again"):
        if reject.task_id in kept:
            continue
        if not reject.text.strip():
            without_text += 1
            rejects.pop(reject.task_id, None)
            continue
        rejects[reject.task_id] = reject
    notes: list[str] = []
    missing = {
        r.task_id: r.index for r in rejects.values() if r.trait_focus is None or r.genre is None
    }
    planned = _planned_slots(read_run_manifest(run_dir), missing)
    unrecovered = 0
    rejected: list[Candidate] = []
    for reject in rejects.values():
        task = planned.get(reject.task_id)
        trait_focus = reject.trait_focus or (task.trait_focus if task else None)
        genre = reject.genre or (task.genre if task else None)
        if trait_focus is None or genre is None:
            unrecovered += 1
            continue
        ai_name = reject.ai_name or (task.ai_name if task else None)
        rejected.append(
            Candidate(
                reject.task_id,
                reject.text,
                reject.archetype_id,
                trait_focus,
                genre,
                ai_name,
                REJECTED,
                reject.reason,
            )
        )
    if unrecovered:
        notes.append(
            f"{unrecovered} rejected document(s) were left out: {REJECTS} was written by an "
            "older version without their trait and genre, and the specs the run recorded in "
            f"{MANIFEST} are gone or have changed, so the plan cannot say"
        )
    return [*kept.values(), *rejected], notes, without_text + unrecovered


def _labels_in(path: Path) -> int:
    """How many lines of an existing file a person has labelled (never overwritten)."""
    if not path.is_file():
        return 0
    count = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            count += isinstance(row, dict) and row.get("label") not in (None, "")
    return count


def sample_run(run_dir: Path, n: int, out: Path, seed: int = 0) -> SampleSummary:
    """Write a stratified sample of the run's documents to `out` in the labelled format."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if not any((run_dir / name).exists() for name in (RECORDS, REJECTS)):
        raise UserError(
            f"{run_dir}: not a run directory (no {RECORDS} or {REJECTS}); "
            f"run `archetypes generate --out {run_dir}` first"
        )
    if n < 1:
        raise UserError("-n must be at least 1")
    pool, notes, skipped = candidates(run_dir)
    if not pool:
        raise UserError(
            f"{run_dir}: no documents to sample (no records, and no rejected attempt with text)"
        )
    picked = draw(pool, n, seed)
    if len(picked) < n:
        notes.append(f"the run has only {len(pool)} documents to sample; all are written")
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out}: is a directory; give a file name, e.g. labels.jsonl")
    labelled = _labels_in(out)
    if labelled:
        raise UserError(
            f"--out {out}: already holds {labelled} filled-in label(s); choose another --out, "
            "or delete the file to start over"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as handle:
            for candidate in picked:
                handle.write(json.dumps(candidate.row(), ensure_ascii=False) + "\n")
    except OSError as exc:
        raise OutputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    kept = sum(1 for c in picked if c.outcome == KEPT)
    return SampleSummary(
        out=out,
        written=len(picked),
        kept=kept,
        rejected=len(picked) - kept,
        available=len(pool),
        skipped=skipped,
        notes=notes,
    )
