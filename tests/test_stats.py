"""generator.stats: the streaming corpus statistics the report and the dataset card share.

Exactness of distinct-n and the sketches, order independence of the samples, the plan's targets
recomputed by the planner, and one set of figures for the card and the report.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

import generator.stats.text
from generator import dataset, stats
from generator.plan import plan
from generator.records import Record
from generator.spec import load_specs
from tests.conftest import LIBRARY, REPO

FIXTURE = REPO / "tests" / "data" / "run_fixture"


def _records(path: Path) -> list[Record]:
    return [Record.model_validate_json(line) for line in path.read_text().splitlines() if line]


def test_distinct_n_is_exact() -> None:
    texts = ["the cat sat on the mat", "The cat sat; the dog ran!", "", "one"]
    for n in (1, 2, 3, 4):
        grams: set[tuple[str, ...]] = set()
        total = 0
        for t in texts:
            words = re.findall(r"\w+", t.lower())
            found = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
            total += len(found)
            grams.update(found)
        assert stats.distinct_n(texts, n) == len(grams) / total
    assert stats.distinct_n(["one"], 2) is None


def test_distinct_n_stays_exact_past_the_packed_vocabulary(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"w{i} w{i + 1} w{i + 2} shared words here" for i in range(40)]
    expected = stats.distinct_ns(texts)
    monkeypatch.setattr(
        generator.stats.text, "_PACK_LIMIT", 5
    )  # switch to tuples after the first text
    assert stats.distinct_ns(texts) == expected


def test_lossy_counter_is_exact_for_a_small_corpus_and_bounded_for_a_large_one() -> None:
    small = stats.LossyCounter(width=10)
    for i in range(10):
        small.add_document({"common", f"rare-{i}"} | ({"half"} if i % 2 else set()))
    assert small.exact and small.top(3) == [("common", 10), ("half", 5)]
    large = stats.LossyCounter(width=10)
    for i in range(1000):
        large.add_document({"common", f"rare-{i}"})
    assert not large.exact
    assert large.top(1) == [("common", 1000)]
    assert len(large.entries) <= 21


def test_bottom_k_does_not_depend_on_the_order() -> None:
    items = [f"{i:04d}" for i in range(500)]
    forward, backward = stats.BottomK[str](7), stats.BottomK[str](7)
    for key in items:
        forward.offer((stats.priority("s/", key), key), lambda key=key: key)
    for key in reversed(items):
        backward.offer((stats.priority("s/", key), key), lambda key=key: key)
    assert forward.items() == backward.items()
    assert forward.items() == sorted(items, key=lambda k: stats.priority("s/", k))[:7]


def test_plan_targets_are_the_plan() -> None:
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    targets, notes = stats.plan_targets(manifest)
    assert targets is not None and notes == []
    specs = load_specs([LIBRARY / f"{a['id']}.yaml" for a in manifest["archetypes"]])
    tasks = plan(specs, manifest["n"], manifest["seed"])
    assert targets.by_archetype == Counter(t.archetype_id for t in tasks)
    assert targets.trait_genre == Counter((t.archetype_id, t.trait_focus, t.genre) for t in tasks)
    assert targets.setting_narrator == Counter(
        (t.archetype_id, t.setting, t.narrator) for t in tasks
    )


def test_the_card_and_the_report_share_their_figures() -> None:
    """The dataset card's statistics (as dataset.py gathers them) and the report's agree on
    the same records."""
    records = _records(FIXTURE / "records.jsonl")
    ours, theirs = stats.CorpusStats(), dataset.CorpusStats()
    for r in records:
        n = stats.count_tokens(r.text)
        ours.add(r, "train", n)
        theirs.add(r, "train", n)
    for name in (
        "documents", "by_archetype", "by_genre", "by_setting", "by_narrator", "by_trait",
        "languages", "writers", "judges", "spec_hashes", "ai_names", "focus", "not_judged",
        "trait_scores", "revised", "similarity_bins", "similarity_missing", "ngram_count",
        "tokens", "words", "tokens_min", "tokens_max",
    ):  # fmt: skip
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.openings.counts == theirs.openings.counts
    assert ours.sample_texts == theirs.sample_texts
    assert ours.distinct(2) == stats.distinct_n(theirs.sample_texts, 2)
