"""The hand-labelled documents `archetypes calibrate` reads, one JSON object a line.

Each line is one document in the labelled format (`text`, `archetype_id`, `trait_focus`,
`genre`, `label` accept or reject, `reason`, optional `ai_name`; other keys such as `id` and
`note` are kept for the report or ignored), wrapped as the record the gates will see.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from generator.archetype import Archetype
from generator.errors import UserError
from generator.records import Record, Usage, count_words, now

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
    row = _row(line, where)
    archetype = _archetype(row, where, archetypes)
    ai_name = row.get("ai_name") or ""
    if not isinstance(ai_name, str):
        raise UserError(f"{where}: ai_name must be a string")
    label_id = str(row.get("id") or f"line-{number}")
    record = _record(row, label_id, number, archetype, ai_name)
    return Label(number, label_id, row["label"], row["reason"], record)


def _row(line: str, where: str) -> dict[str, Any]:
    """One line as a JSON object with every required key a non-empty string and a label that
    agrees with its reason."""
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
    return row


def _archetype(row: dict[str, Any], where: str, archetypes: dict[str, Archetype]) -> Archetype:
    """The archetype the row names, which must have the row's trait and genre."""
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
    return archetype


def _record(
    row: dict[str, Any], label_id: str, number: int, archetype: Archetype, ai_name: str
) -> Record:
    """The record a run would have made; a labelled document has no plan slots, so those are
    empty, and its id hashes the label's id with the text so an edited text is a new document."""
    text = row["text"]
    return Record(
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
