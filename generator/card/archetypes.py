"""What the card says about each archetype: its summary and traits, from the spec the run was
generated from when it is still there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import UserError
from generator.resources import library_dir
from generator.stats import CorpusStats

if TYPE_CHECKING:
    from generator.archetype import Archetype


@dataclass
class ArchetypeDoc:
    id: str
    version: str
    spec_hash: str
    name: str | None = None
    summary: str | None = None
    traits: list[tuple[str, str]] = field(default_factory=list)
    note: str | None = None


def describe_archetypes(
    manifest: Mapping[str, Any] | None, stats: CorpusStats
) -> list[ArchetypeDoc]:
    """Each archetype's summary and traits, from the spec file the run recorded if it still has
    the run's spec hash, else from the starter library's spec of the same id and hash, else
    from whichever of the two still loads (with a note that it changed), else a note alone."""
    entries: list[dict[str, Any]] = []
    if manifest and isinstance(manifest.get("archetypes"), list):
        entries = [e for e in manifest["archetypes"] if isinstance(e, dict) and e.get("id")]
    # Archetypes that have records but no manifest entry (or no manifest at all).
    listed = {str(e["id"]) for e in entries}
    seen: dict[str, tuple[str, str]] = {}
    for (archetype_id, version, spec_hash), _ in sorted(
        stats.spec_hashes.items(), key=lambda kv: (-kv[1], kv[0])
    ):
        seen.setdefault(archetype_id, (version, spec_hash))
    entries += [
        {"id": a, "version": v, "spec_hash": h, "source": ""}
        for a, (v, h) in sorted(seen.items())
        if a not in listed
    ]
    return [_describe_archetype(entry) for entry in entries]


def _load_quietly(path: Path, archetype_id: str) -> Archetype | None:
    from generator.spec import load_spec

    if not path.is_file():
        return None
    try:
        archetype = load_spec(path)
    except UserError:
        return None
    return archetype if archetype.id == archetype_id else None


def _describe_archetype(entry: Mapping[str, Any]) -> ArchetypeDoc:
    archetype_id = str(entry["id"])
    doc = ArchetypeDoc(
        id=archetype_id,
        version=str(entry.get("version", "?")),
        spec_hash=str(entry.get("spec_hash", "?")),
    )
    source = Path(str(entry["source"])) if entry.get("source") else None
    library_path = library_dir() / f"{archetype_id}.yaml"
    recorded = _load_quietly(source, archetype_id) if source else None
    library = (
        _load_quietly(library_path, archetype_id)
        if source is None or library_path.resolve() != source.resolve()
        else None
    )
    # Only the file name is shown: the recorded path may name the user's home folder.
    name = source.name if source else f"{archetype_id}.yaml"
    state = "is gone" if recorded is None else "has changed since"
    current = recorded if recorded is not None else library
    if recorded is not None and recorded.spec_hash == doc.spec_hash:
        chosen = recorded
    elif library is not None and library.spec_hash == doc.spec_hash:
        chosen = library
        if source is not None:
            doc.note = (
                f"The spec file recorded for this run ({name}) {state}; the text below is "
                "from the starter library's spec, which has the run's spec hash."
            )
    elif current is not None:
        chosen = current
        doc.note = (
            f"The spec has changed since this run (spec hash now {current.spec_hash}, "
            f"{doc.spec_hash} when generated); the summary and traits below are the current "
            "ones, not necessarily those the documents were written from."
        )
    else:
        doc.note = (
            f"The spec file this run was generated from ({name}) is no longer available, "
            "so its summary and traits are not shown."
        )
        return doc
    doc.name = chosen.name
    doc.summary = " ".join(chosen.summary.split())
    doc.traits = [(t.id, " ".join(t.statement.split())) for t in chosen.traits]
    return doc
