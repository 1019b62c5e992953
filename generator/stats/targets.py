"""The plan's targets: what the run's plan asked for, recomputed by the planner from the
manifest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PlanTargets:
    """What the plan asked for: the first `n` tasks of the run's stream, counted per cell."""

    n: int
    seed: int
    by_archetype: Counter[str] = field(default_factory=Counter)
    trait_genre: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    setting_narrator: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # Every value each axis can take, in spec order (a value may be planned 0 times).
    axes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan_targets(manifest: Mapping[str, Any] | None) -> tuple[PlanTargets | None, list[str]]:
    """Recompute the run's plan from its manifest (archetypes' spec files, seed, n, and ideas
    per request, which groups the plan).

    Each spec is taken from the path the manifest recorded if it still has the run's spec hash,
    else from the starter library's spec of the same id and hash, else from whichever of the two
    still loads (with a note: the targets may then differ from the run's). Returns (None, notes)
    when the plan cannot be recomputed.
    """
    from generator.plan import plan

    if not manifest:
        return None, ["the run has no readable manifest.json, so the plan's targets are unknown"]
    entries = [e for e in manifest.get("archetypes") or [] if isinstance(e, dict) and e.get("id")]
    n, seed = manifest.get("n"), manifest.get("seed")
    if not entries or not isinstance(n, int) or not isinstance(seed, int) or n < 1:
        return None, ["the manifest does not record the archetypes, seed and n of the plan"]
    archetypes = []
    notes: list[str] = []
    for entry in entries:
        archetype, note = _spec_for(entry)
        if note:
            notes.append(note)
        if archetype is None:
            return None, notes
        archetypes.append(archetype)
    targets = PlanTargets(n=n, seed=seed, notes=notes)
    for archetype in archetypes:
        targets.axes[archetype.id] = {
            "trait_focus": [t.id for t in archetype.traits],
            "genre": [g.id for g in archetype.genres],
            "setting": list(archetype.settings),
            "narrator": list(archetype.narrators),
        }
    samples = manifest.get("samples_per_request") or 1
    for task in plan(archetypes, n, seed, samples if isinstance(samples, int) else 1):
        a = task.archetype_id
        targets.by_archetype[a] += 1
        targets.trait_genre[(a, task.trait_focus, task.genre)] += 1
        targets.setting_narrator[(a, task.setting, task.narrator)] += 1
    return targets, notes


def _spec_for(entry: Mapping[str, Any]) -> tuple[Any, str | None]:
    from generator.errors import UserError
    from generator.resources import library_dir
    from generator.spec import load_spec

    archetype_id = str(entry["id"])
    wanted = str(entry.get("spec_hash") or "")
    candidates: list[Path] = []
    if entry.get("source"):
        candidates.append(Path(str(entry["source"])))
    candidates.append(library_dir() / f"{archetype_id}.yaml")
    loaded = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            archetype = load_spec(path)
        except UserError:
            continue
        if archetype.id != archetype_id:
            continue
        if archetype.spec_hash == wanted:
            return archetype, None
        loaded.append(archetype)
    if loaded:
        return loaded[0], (
            f"the spec of {archetype_id} has changed since the run (spec hash "
            f"{loaded[0].spec_hash}, {wanted} when generated); its planned targets are "
            "recomputed from the current spec and may differ from the run's"
        )
    return None, (
        f"no spec file for {archetype_id} is available any more (neither the one the run "
        "recorded nor the starter library's), so the plan's targets cannot be recomputed"
    )
