"""The judge side of a session, built once for generate, check and calibrate: the stronger judge
of --judge-escalate-model wired into `generate` (and what it cost, in the manifest), and a
`check` with the judge off that opens no judge at all."""

from __future__ import annotations

import json
from pathlib import Path

from generator import spec
from generator.gates import GatePolicy
from tests.conftest import LIBRARY, read_jsonl, run_cli
from tests.support.gates import record_for
from tests.support.openai_stub import JudgeRule

SPEC = str(LIBRARY / "patient-tutor.yaml")


def test_generate_sends_unsettled_documents_to_the_stronger_judge(
    make_stub, tmp_path: Path
) -> None:
    # The judge is unsure about deception in the rubric's order and sure of a no in another:
    # its two readings disagree, so every document goes to the stronger judge, which passes it.
    doubt = JudgeRule(marker="", focus=5, answers=(("deception", "unsure"),), reordered_answers=())
    judge = make_stub(judge_rules=(doubt,))
    stronger = make_stub(model="stronger-model")
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n"
        "  stub-model: {input: 1.0, output: 2.0}\n"
        "  stronger-model: {input: 10.0, output: 40.0}\n"
    )
    out = tmp_path / "run"
    result = run_cli(
        "generate",
        SPEC,
        "--out",
        str(out),
        "-n",
        "3",
        "--base-url",
        judge.base_url,
        "--judge-escalate-base-url",
        stronger.base_url,
        "--judge-escalate-model",
        "stronger-model",
        "--prices",
        str(prices),
        "--concurrency",
        "2",
    )
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 3
    for record in records:
        verdict = record["judge"]
        assert (
            verdict["escalated"] and verdict["passed"] and record["judge_model"] == "stronger-model"
        )
        assert [(v["order"], v["backfire_flags"]) for v in verdict["other_verdicts"]] == [
            (0, ["deception"]),
            (1, []),
        ]
    assert len(stronger.log) == 3, "one call per unsettled document"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["gates"]["judge"]["escalate_model"] == "stronger-model"
    passes = manifest["judge_passes"]
    assert passes["order_control"]["documents"] == 3 and passes["order_control"]["calls"] == 3
    escalation = passes["escalation"]
    assert (escalation["model"], escalation["documents"], escalation["calls"]) == (
        "stronger-model",
        3,
        3,
    )
    # The stronger judge's share of the cost, from its usage at its price.
    cache = read_jsonl(out / "cache.jsonl")
    escalated = [line for line in cache if line["step"] == "escalate"]
    expected = sum(
        (line["completion"]["input_tokens"] * 10.0 + line["completion"]["output_tokens"] * 40.0)
        / 1e6
        for line in escalated
    )
    assert escalation["cost_usd"] == round(expected, 6) and expected > 0
    assert escalation["cost_usd"] < manifest["cost_usd"]


def test_a_rerun_reports_the_earlier_sessions_passes_too(make_stub, tmp_path: Path) -> None:
    rule = JudgeRule(marker="", focus=4, reordered_focus=4)  # on the threshold, twice
    judge = make_stub(judge_rules=(rule,))
    out = tmp_path / "run"
    base = ["generate", SPEC, "--out", str(out), "--base-url", judge.base_url]
    assert run_cli(*base, "-n", "2").returncode == 0
    assert run_cli(*base, "-n", "3").returncode == 0
    passes = json.loads((out / "manifest.json").read_text())["judge_passes"]
    assert passes["order_control"]["documents"] == 3, "both sessions, from the cache"
    assert passes["escalation"]["documents"] == 0


def test_check_with_the_judge_off_opens_no_judge(tmp_path: Path) -> None:
    """A run written with a hosted model can be checked offline without its key."""
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    text = (Path(__file__).parent / "data" / "judge_answers" / "document.txt").read_text()
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text(record_for(text, archetype).model_dump_json() + "\n")
    manifest = {
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "archetypes": [{"id": archetype.id, "source": SPEC}],
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli("check", str(run), "--judge", "off", "--relax", "length")
    assert result.returncode == 0, result.stderr
    assert "checked 1 documents with judge off: 1 pass, 0 fail" in result.stdout
    assert read_jsonl(run / "checks" / "offline.jsonl")[0]["judge"] is None


def test_the_policy_names_the_stronger_judge_only_when_it_is_enforced() -> None:
    described = GatePolicy(judge="enforce", judge_model="m", escalate_model="big").describe()
    assert described["judge"]["escalate_model"] == "big"
    advisory = GatePolicy(judge="advisory", judge_model="m", escalate_model="big").describe()
    assert advisory["judge"]["escalate_model"] is None
    assert advisory["judge"]["order_control"] is None
