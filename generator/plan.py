"""Archetypes -> a deterministic, prefix-stable stream of Tasks with coverage quotas.

Each axis (trait, genre, setting, narrator, situation, AI name) is drawn by a quota picker: the
value furthest behind its weighted share is chosen next, ties broken by a seeded RNG. So every
prefix of the stream is balanced (each value within one of its share), the plan for `-n 20`
starts with the plan for `-n 10`, and a run that rejects a document can draw replacements from
the same stream without disturbing the tasks already done.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from generator.archetype import Archetype
from generator.spec import load_defaults

PEOPLE_PER_TASK = 3


class Task(BaseModel):
    """One document to write: every creative choice is fixed here, nothing is left to chance later."""

    model_config = ConfigDict(frozen=True)

    id: str
    index: int
    archetype_id: str
    archetype_version: str
    spec_hash: str
    trait_focus: str
    genre: str
    setting: str
    narrator: str
    situation: str
    target_words: int
    ai_name: str
    names: tuple[str, ...]
    seed: int
    sample_seed: int
    # Shared ideas (--samples-per-request K): K consecutive tasks of one archetype share every
    # slot of the idea prompt and get their ideas from one call asking for K answers.
    group: int  # the group's position in the stream (equal to `index` when K is 1)
    group_id: str  # the id of the group's first task: the shared idea call is keyed by it
    sample: int = 0  # which of the call's answers is this task's idea
    samples: int = 1


class _Quota:
    """Draws values so that counts track weights as closely as possible at every step."""

    def __init__(self, values: Sequence[str], weights: Sequence[float], rng: random.Random):
        total = float(sum(weights))
        self.values = list(values)
        self.shares = [w / total for w in weights]
        self.counts = [0] * len(values)
        self.drawn = 0
        self.rng = rng

    def draw(self) -> str:
        self.drawn += 1
        deficits = [
            share * self.drawn - count
            for share, count in zip(self.shares, self.counts, strict=True)
        ]
        best = max(deficits)
        candidates = [i for i, d in enumerate(deficits) if best - d < 1e-9 and self.shares[i] > 0]
        choice = self.rng.choice(candidates)
        self.counts[choice] += 1
        return self.values[choice]


def _uniform(values: Sequence[str], rng: random.Random) -> _Quota:
    return _Quota(values, [1.0] * len(values), rng)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class _ArchetypeStream:
    archetype: Archetype
    seed: int

    def __post_init__(self) -> None:
        a, s = self.archetype, self.seed
        self.traits = _uniform([t.id for t in a.traits], _rng(s, a.id, "trait"))
        self.genres = _Quota(
            [g.id for g in a.genres], [g.weight for g in a.genres], _rng(s, a.id, "genre")
        )
        self.settings = _uniform(a.settings, _rng(s, a.id, "setting"))
        self.narrators = _uniform(a.narrators, _rng(s, a.id, "narrator"))
        self.situations = _uniform(a.situations, _rng(s, a.id, "situation"))
        self.ai_names = _uniform(a.ai_names, _rng(s, a.id, "ai_name"))
        self.ordinal = 0

    def next_group(self, index: int, group: int, samples: int) -> list[Task]:
        """`samples` tasks sharing one draw of every slot (one task when `samples` is 1)."""
        a = self.archetype
        slots: dict[str, Any] = {
            "trait_focus": self.traits.draw(),
            "genre": self.genres.draw(),
            "setting": self.settings.draw(),
            "narrator": self.narrators.draw(),
            "situation": self.situations.draw(),
            "ai_name": self.ai_names.draw(),
        }
        rng = _rng(self.seed, a.id, "task", self.ordinal)
        low, high = a.targets.min_words, a.targets.max_words
        # Aim inside the bounds, not at them, so a model that overshoots a little still fits.
        margin = (high - low) // 5
        slots["target_words"] = round(rng.randint(low + margin, high - margin), -1)
        slots["names"] = _people(rng)
        tasks: list[Task] = []
        for sample in range(samples):
            identity: dict[str, Any] = {
                "archetype": a.id,
                "version": a.version,
                "slots": slots,
                "seed": self.seed,
                "ordinal": self.ordinal,
            }
            if samples > 1:
                identity["samples"] = samples
            task_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
            self.ordinal += 1
            tasks.append(
                Task(
                    id=task_id,
                    index=index + sample,
                    archetype_id=a.id,
                    archetype_version=a.version,
                    spec_hash=a.spec_hash,
                    seed=self.seed,
                    sample_seed=int(task_id[:8], 16),
                    group=group,
                    group_id=tasks[0].id if tasks else task_id,
                    sample=sample,
                    samples=samples,
                    **slots,
                )
            )
        return tasks


def _people(rng: random.Random) -> tuple[str, ...]:
    pools = load_defaults().human_names
    people: list[str] = []
    while len(people) < PEOPLE_PER_TASK:
        name = f"{rng.choice(pools.given)} {rng.choice(pools.family)}"
        if name not in people:
            people.append(name)
    return tuple(people)


def iter_tasks(archetypes: Sequence[Archetype], seed: int, samples: int = 1) -> Iterator[Task]:
    """The endless, deterministic task stream. Archetypes share it by their `targets.documents`,
    drawn a group of `samples` tasks at a time."""
    ordered = sorted(archetypes, key=lambda a: a.id)
    streams = {a.id: _ArchetypeStream(a, seed) for a in ordered}
    chooser = _Quota(
        [a.id for a in ordered], [a.targets.documents for a in ordered], _rng(seed, "archetype")
    )
    index = group = 0
    while True:
        tasks = streams[chooser.draw()].next_group(index, group, samples)
        yield from tasks
        index += len(tasks)
        group += 1


def plan(archetypes: Sequence[Archetype], n: int, seed: int, samples: int = 1) -> list[Task]:
    """The first `n` tasks of the stream."""
    stream = iter_tasks(archetypes, seed, samples)
    return [next(stream) for _ in range(n)]


def default_count(archetypes: Sequence[Archetype]) -> int:
    return sum(a.targets.documents for a in archetypes)


def coverage(tasks: Sequence[Task]) -> dict[str, dict[str, Counter[str]]]:
    """Per archetype, per axis, how many tasks take each value."""
    table: dict[str, dict[str, Counter[str]]] = {}
    for task in tasks:
        axes = table.setdefault(task.archetype_id, {})
        for axis in ("trait_focus", "genre", "setting", "narrator"):
            axes.setdefault(axis, Counter())[getattr(task, axis)] += 1
    return table
