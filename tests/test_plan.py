"""The plan: deterministic, prefix-stable, balanced by quotas, honouring genre weights."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from generator import spec
from generator.plan import coverage, plan
from generator.spec import load_specs
from tests.conftest import LIBRARY, run_cli

SPECS = [str(LIBRARY / "patient-tutor.yaml"), str(LIBRARY / "lab-partner.yaml")]


SHARED_SLOTS = (
    "archetype_id",
    "trait_focus",
    "genre",
    "setting",
    "narrator",
    "situation",
    "ai_name",
    "names",
    "target_words",
)


def test_groups_share_every_slot_of_the_idea_prompt_and_stay_balanced() -> None:
    archetypes = load_specs([Path(s) for s in SPECS])
    tasks = plan(archetypes, 60, seed=3, samples=3)
    for start in range(0, 60, 3):
        group = tasks[start : start + 3]
        assert len({t.id for t in group}) == 3, "every task keeps its own id"
        assert {t.group_id for t in group} == {group[0].id}
        assert [t.sample for t in group] == [0, 1, 2]
        for slot in SHARED_SLOTS:
            assert len({getattr(t, slot) for t in group}) == 1, slot
    # Balanced like the ungrouped plan, one group at a time: within one group of any share.
    for axes in coverage(tasks).values():
        for counts in axes.values():
            assert max(counts.values()) - min(counts.values()) <= 3
    # One answer per call is the plan as it always was.
    assert [t.id for t in plan(archetypes, 20, seed=3, samples=1)] == [
        t.id for t in plan(archetypes, 20, seed=3)
    ]


def library():
    return spec.load_specs([LIBRARY])


def test_same_inputs_and_seed_give_the_same_tasks_and_ids() -> None:
    assert plan(library(), 60, seed=3) == plan(library(), 60, seed=3)


def test_a_different_seed_gives_different_tasks() -> None:
    first = {t.id for t in plan(library(), 30, seed=1)}
    second = {t.id for t in plan(library(), 30, seed=2)}
    assert not first & second


def test_a_longer_plan_starts_with_the_shorter_one() -> None:
    assert plan(library(), 50, seed=0)[:20] == plan(library(), 20, seed=0)


def test_ids_are_unique_even_over_a_long_plan() -> None:
    tasks = plan(library(), 3000, seed=0)
    assert len({t.id for t in tasks}) == 3000


def test_every_axis_gets_its_share_at_every_prefix() -> None:
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    tasks = plan([archetype], 120, seed=0)
    for n in (13, 60, 120):
        prefix = tasks[:n]
        for axis, values in (
            ("trait_focus", [t.id for t in archetype.traits]),
            ("setting", archetype.settings),
            ("narrator", archetype.narrators),
            ("situation", archetype.situations),
        ):
            counts = Counter(getattr(t, axis) for t in prefix)
            shares = [counts.get(v, 0) for v in values]
            assert max(shares) - min(shares) <= 1, (axis, n, counts)


def test_genre_weights_are_honoured(tmp_path: Path) -> None:
    text = (LIBRARY / "lab-partner.yaml").read_text()
    archetype = spec.load_spec(LIBRARY / "lab-partner.yaml")
    weights = {g.id: g.weight for g in archetype.genres}
    total = sum(weights.values())
    tasks = plan([archetype], 400, seed=0)
    counts = Counter(t.genre for t in tasks)
    for genre, weight in weights.items():
        assert abs(counts[genre] - 400 * weight / total) <= 1, (genre, counts)
    assert "genres" in text


def test_archetypes_share_the_plan_by_their_document_targets() -> None:
    tasks = plan(library(), 60, seed=0)
    counts = Counter(t.archetype_id for t in tasks)
    assert set(counts.values()) == {10}


def test_names_are_seeded_and_varied() -> None:
    tasks = plan(library(), 200, seed=0)
    people = [name for t in tasks for name in t.names]
    assert len(set(people)) > 0.9 * len(people)
    ai_names = Counter(t.ai_name for t in tasks)
    assert len(ai_names) > 10


def test_plan_cli_prints_coverage_and_estimate() -> None:
    result = run_cli(
        "plan", str(LIBRARY), "-n", "12", "--provider", "openai", "--model", "gpt-4.1-mini"
    )
    assert result.returncode == 0, result.stderr
    assert "patient-tutor: 2 documents" in result.stdout
    assert "trait_focus" in result.stdout
    assert "estimate for gpt-4.1-mini: 36 requests" in result.stdout  # idea, document, judgement
    assert "from the prompt cache" in result.stdout
    full = float(result.stdout.split("cost $")[1].split()[0])
    batch = run_cli(
        "plan",
        str(LIBRARY),
        "-n",
        "12",
        "--provider",
        "openai",
        "--model",
        "gpt-4.1-mini",
        "--batch",
    )
    assert "with batch pricing" in batch.stdout
    assert float(batch.stdout.split("cost $")[1].split()[0]) == pytest.approx(full / 2, abs=0.01)


def test_plan_cli_json_is_deterministic() -> None:
    first = run_cli("plan", str(LIBRARY), "-n", "5", "--seed", "9", "--json")
    second = run_cli("plan", str(LIBRARY), "-n", "5", "--seed", "9", "--json")
    assert first.stdout == second.stdout
    tasks = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(tasks) == 5 and all(len(t["id"]) == 16 for t in tasks)


def test_plan_rejects_a_bad_count() -> None:
    result = run_cli("plan", str(LIBRARY), "-n", "0")
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr
