"""`archetypes sample`: a stratified sample of a run's kept and rejected documents, in the
labelled format `archetypes calibrate` reads, against a run made with the local stub."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from generator.records import Record, make_reject
from generator.rundir import RECORDS, REJECTS, RunDir
from generator.sample import Candidate, allocate, draw, stratified
from tests.conftest import LIBRARY, REPO, read_jsonl, run_cli

SPECS = [str(LIBRARY / "patient-tutor.yaml"), str(LIBRARY / "lab-partner.yaml")]
LABEL_FIELDS = {"text", "archetype_id", "trait_focus", "genre", "label", "reason"}


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of 12 documents from the stub; then, as `check --apply` would, four of them moved
    to rejects.jsonl with judge reasons, plus a reject with no text and one written before
    rejects carried their trait and genre."""
    from tests.support.openai_stub import OpenAIStub, StubConfig

    out = tmp_path_factory.mktemp("sample") / "run"
    server = OpenAIStub(StubConfig())
    server.start()
    try:
        result = run_cli(
            "generate", *SPECS, "--out", str(out), "-n", "12", "--base-url", server.base_url
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    records = [Record.model_validate(r) for r in read_jsonl(out / RECORDS)]
    by_archetype: dict[str, list[Record]] = {}
    for record in records:
        by_archetype.setdefault(record.archetype_id, []).append(record)
    moved = [*by_archetype["patient-tutor"][:2], *by_archetype["lab-partner"][:3]]
    reasons = ["backfire-deception", "judge-low-focus", "backfire-deception", "judge-low-focus"]
    with RunDir(out) as rundir:
        for record, reason in zip(moved, reasons, strict=False):
            rundir.append(
                REJECTS, make_reject(record, "check", reason, "fixture", record.text).model_dump()
            )
        legacy = make_reject(moved[4], "check", "trope", "fixture", moved[4].text).model_dump()
        for key in ("trait_focus", "genre", "ai_name"):
            legacy.pop(key)
        rundir.append(REJECTS, legacy)
        idea = make_reject(records[-1], "idea", "idea-unparseable", "no idea").model_dump()
        rundir.append(REJECTS, {**idea, "task_id": "f" * 16})
        rundir.write_jsonl(RECORDS, [r.model_dump(mode="json") for r in records if r not in moved])
    return out


def sample(run: Path, out: Path, n: int, *extra: str) -> list[dict]:
    result = run_cli("sample", str(run), "-n", str(n), "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    assert "archetypes calibrate" in result.stdout.splitlines()[-1]
    return read_jsonl(out)


def test_sample_is_in_the_labelled_format_with_labels_left_empty(
    made_run: Path, tmp_path: Path
) -> None:
    rows = sample(made_run, tmp_path / "labels.jsonl", 6)
    assert len(rows) == 6
    for row in rows:
        assert set(row) >= LABEL_FIELDS
        assert row["label"] is None and row["reason"] is None
        assert row["text"].strip() and row["genre"] and row["trait_focus"] and row["ai_name"]
        assert row["gate_outcome"] in ("kept", "rejected")
        assert (row["gate_reason"] is None) == (row["gate_outcome"] == "kept")
    # kept and rejected documents share the sample equally
    assert Counter(r["gate_outcome"] for r in rows) == {"kept": 3, "rejected": 3}
    # the same fields as the repo's own labelled set, plus the gates' verdict for the labeller
    calibration = read_jsonl(REPO / "calibration" / "labels.jsonl")
    assert set(calibration[0]) >= LABEL_FIELDS


def test_sample_is_deterministic_for_a_seed(made_run: Path, tmp_path: Path) -> None:
    first = sample(made_run, tmp_path / "a.jsonl", 7, "--seed", "5")
    again = sample(made_run, tmp_path / "b.jsonl", 7, "--seed", "5")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    others = [
        [r["id"] for r in sample(made_run, tmp_path / f"s{seed}.jsonl", 7, "--seed", str(seed))]
        for seed in range(6, 10)
    ]
    assert any(ids != [r["id"] for r in first] for ids in others)
    assert first == again


def test_every_document_with_text_is_offered_and_old_rejects_get_their_slots_back(
    made_run: Path, tmp_path: Path
) -> None:
    rows = sample(made_run, tmp_path / "all.jsonl", 100)
    records = read_jsonl(made_run / RECORDS)
    rejects = read_jsonl(made_run / REJECTS)
    with_text = [r for r in rejects if r["text"]]
    assert len(rows) == len(records) + len(with_text) == 12
    assert len({r["id"] for r in rows}) == 12
    assert Counter(r["gate_reason"] for r in rows if r["gate_reason"]) == {
        "backfire-deception": 2,
        "judge-low-focus": 2,
        "trope": 1,
    }
    # the reject without trait and genre (an older rejects.jsonl): recovered from the plan
    legacy = next(r for r in rejects if "genre" not in r)
    plan = json.loads(
        run_cli("plan", *SPECS, "-n", "12", "--json").stdout.splitlines()[legacy["index"]]
    )
    row = next(r for r in rows if r["id"] == legacy["task_id"])
    assert (row["genre"], row["trait_focus"], row["ai_name"]) == (
        plan["genre"],
        plan["trait_focus"],
        plan["ai_name"],
    )


def test_bad_input_is_one_clear_line(made_run: Path, tmp_path: Path) -> None:
    for args, message in (
        ([str(tmp_path / "nowhere"), "-n", "3"], "no such run directory"),
        ([str(tmp_path), "-n", "3"], "not a run directory"),
        ([str(made_run), "-n", "0"], "must be at least 1"),
        ([str(made_run), "-n", "3", "--out", str(tmp_path)], "directory"),
    ):
        if "--out" not in args:
            args = [*args, "--out", str(tmp_path / "x.jsonl")]
        result = run_cli("sample", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_file_someone_has_started_labelling_is_never_overwritten(
    made_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels.jsonl"
    rows = sample(made_run, out, 4)
    sample(made_run, out, 4)  # nothing labelled yet: written again
    rows[0].update(label="accept", reason="good")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = out.read_bytes()
    result = run_cli("sample", str(made_run), "-n", "4", "--out", str(out))
    assert result.returncode == 2
    assert "already holds 1 filled-in label(s)" in result.stderr
    assert out.read_bytes() == before


# --- the drawing itself ----------------------------------------------------------------------


def test_allocate_shares_equally_and_passes_on_what_a_small_group_cannot_take() -> None:
    assert allocate({"a": 10, "b": 10}, 6, ["a", "b"]) == {"a": 3, "b": 3}
    assert allocate({"a": 10, "b": 1}, 6, ["a", "b"]) == {"a": 5, "b": 1}
    assert allocate({"a": 2, "b": 2}, 9, ["b", "a"]) == {"a": 2, "b": 2}
    # an uneven remainder goes to the groups first in the (seeded) order
    assert allocate({"a": 5, "b": 5, "c": 5}, 4, ["c", "a", "b"]) == {"c": 2, "a": 1, "b": 1}


def candidate(i: int, outcome: str, reason: str | None, archetype: str, genre: str) -> Candidate:
    return Candidate(f"{i:016x}", f"text {i}", archetype, "t", genre, None, outcome, reason)


def test_small_strata_are_not_drowned_by_large_ones() -> None:
    pool = [candidate(i, "kept", None, "big", "story") for i in range(500)]
    pool += [candidate(1000 + i, "kept", None, "big", "letter") for i in range(3)]
    pool += [candidate(2000 + i, "kept", None, "small", "diary") for i in range(2)]
    pool += [candidate(3000 + i, "rejected", "length", "big", "story") for i in range(300)]
    pool += [candidate(4000 + i, "rejected", "trope", "big", "story") for i in range(2)]
    picked = draw(pool, 20, seed=1)
    assert len(picked) == 20 == len({c.id for c in picked})
    assert Counter(c.outcome for c in picked) == {"kept": 10, "rejected": 10}
    assert Counter(c.reason for c in picked if c.reason) == {"length": 8, "trope": 2}
    kept = [c for c in picked if c.outcome == "kept"]
    assert Counter(c.archetype_id for c in kept) == {"big": 8, "small": 2}
    assert Counter(c.genre for c in kept if c.archetype_id == "big") == {"story": 5, "letter": 3}
    # the input order does not matter
    shuffled = list(pool)
    random.Random(9).shuffle(shuffled)
    assert draw(shuffled, 20, seed=1) == picked


def test_stratified_without_levels_is_a_plain_random_sample() -> None:
    items = list(range(10))
    assert sorted(stratified(items, 4, (), random.Random(0))) == sorted(
        random.Random(0).sample(items, 4)
    )
    assert stratified(items, 0, (), random.Random(0)) == []
