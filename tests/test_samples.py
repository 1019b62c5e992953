"""Several answers per request (--samples-per-request K): groups of K tasks share one idea call
asking for K answers (n=K), an answer that nearly repeats an earlier one of its call is asked for
again on its own, and a server that ignores n costs nothing but the saving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.calls import near_repeat
from generator.plan import coverage, plan
from generator.spec import load_specs
from tests.conftest import LIBRARY, read_jsonl, run_cli

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


def generate(out: Path, base_url: str, *args: str):
    return run_cli(
        "generate",
        *SPECS,
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--model",
        "stub-model",
        "--no-progress",
        *args,
    )


def idea_bodies(stub) -> list[dict]:
    return [
        b
        for b in stub.bodies
        if "response_format" in b and "trait_scores" not in json.dumps(b["response_format"])
    ]


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


def test_a_group_pays_one_idea_call_for_all_its_ideas(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True)
    out = tmp_path / "run"
    result = generate(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    ideas = idea_bodies(stub)
    assert [b.get("n") for b in ideas] == [4, 4], "two groups of four, one call each"
    assert len(stub.log) == 2 + 8 + 8, "ideas, documents, judgements"
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 8
    assert len({r["title"] for r in records}) == 8, "every document has an idea of its own"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples_per_request"] == 4
    assert manifest["shared_idea_answers"] == {"used": 8}
    # The call's usage is split over its answers, so nothing is lost or counted twice.
    cache = read_jsonl(out / "cache.jsonl")
    paid_ideas = [c for c in cache if c["step"] == "idea"]
    assert len(paid_ideas) == 8
    stub_prompt_tokens = [
        sum(len(str(m["content"])) for m in b["messages"]) // 4 for b in idea_bodies(stub)
    ]
    assert sum(c["completion"]["input_tokens"] for c in paid_ideas) == sum(stub_prompt_tokens)

    # Extending the run keeps every answer already paid for.
    before = len(stub.log)
    again = generate(out, stub.base_url, "-n", "12", "--samples-per-request", "4")
    assert again.returncode == 0, again.stderr
    assert len(stub.log) - before == 1 + 4 + 4
    assert len(read_jsonl(out / "records.jsonl")) == 12


def test_answers_that_repeat_each_other_are_asked_for_again_alone(
    make_stub, tmp_path: Path
) -> None:
    stub = make_stub(keep_bodies=True, samples="repeat")
    out = tmp_path / "run"
    result = generate(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert [b.get("n") for b in idea_bodies(stub)] == [4, 4] + [None] * 6
    records = read_jsonl(out / "records.jsonl")
    assert len({r["title"] for r in records}) == 8
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shared_idea_answers"] == {"used": 2, "similar": 6}


def test_a_server_that_ignores_n_still_gets_every_idea(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True, samples="ignore")
    out = tmp_path / "run"
    result = generate(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 8
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shared_idea_answers"] == {"used": 2, "missing": 6}


def test_a_server_that_refuses_n_is_asked_one_idea_at_a_time(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True, samples="refuse")
    out = tmp_path / "run"
    result = generate(out, stub.base_url, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 8
    refused = [b for b in idea_bodies(stub) if b.get("n")]
    assert len(refused) <= 2, "after a refusal the run stops asking for several answers"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shared_idea_answers"] == {"refused": 8}


def test_shards_keep_groups_whole_and_merge_into_the_plan(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True)
    out = tmp_path / "run"
    for index in (0, 1):
        result = generate(
            out, stub.base_url, "-n", "12", "--samples-per-request", "3", "--shard", f"{index}/2"
        )
        assert result.returncode == 0, result.stderr
    assert [b.get("n") for b in idea_bodies(stub)] == [3, 3, 3, 3], "one call per group"
    merged = tmp_path / "merged"
    assert run_cli("merge", str(out), "--out", str(merged)).returncode == 0
    expected = plan(load_specs([Path(s) for s in SPECS]), 12, seed=0, samples=3)
    assert [r["id"] for r in read_jsonl(merged / "records.jsonl")] == [t.id for t in expected]


def test_resuming_with_another_sample_count_is_refused(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate(out, stub.base_url, "-n", "2").returncode == 0
    result = generate(out, stub.base_url, "-n", "4", "--samples-per-request", "2")
    assert result.returncode == 2
    assert "samples_per_request=1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ("--provider", "anthropic", "--model", "claude-haiku-4-5"),
            {"ANTHROPIC_API_KEY": "x"},
            "at most 1 answer",
        ),
        (("--batch",), {}, "does not work with --batch"),
        (("--samples-per-request", "0"), {}, "--samples-per-request"),
    ],
)
def test_impossible_sample_requests_are_one_clear_line(
    stub, tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    base = () if "--provider" in args else ("--base-url", stub.base_url, "--model", "stub-model")
    result = run_cli(
        "generate",
        *SPECS,
        "--out",
        str(tmp_path / "run"),
        "-n",
        "4",
        *base,
        "--samples-per-request",
        "4",
        *args,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not stub.log, "nothing is sent before the options are checked"


def test_plan_estimate_counts_one_idea_request_per_group() -> None:
    result = run_cli("plan", *SPECS, "-n", "8", "--samples-per-request", "4")
    assert result.returncode == 0, result.stderr
    assert "18 requests" in result.stdout
    single = run_cli("plan", *SPECS, "-n", "8")
    assert "24 requests" in single.stdout


def test_near_repeat_tells_rewordings_from_new_ideas() -> None:
    a = "A tutor in a small village library helps a boy with fractions before his exam."
    assert near_repeat(a, a)
    assert near_repeat(a, a + " He passes.")
    assert not near_repeat(a, "A harbour pilot radios the night ferry about fog on the river.")
