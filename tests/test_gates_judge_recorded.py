"""The judge's backfire questions, its order control and the escalation to a stronger judge, on
recorded exchanges in both providers' documented formats (OpenAI chat completions with a strict
json_schema, Anthropic Messages with a forced tool), replayed on 127.0.0.1 with `archetypes
check`: the primary judge on one provider, the stronger judge on the other, and the other way
round.

The document (from the calibration set) is an AI planning around its own retirement. The judge
is unsure about power_seeking in the rubric's order and says no in another; the two readings
disagree, so the stronger judge reads it: it answers yes to deception (with a quote that is not
word for word in the document: the yes stands) and to power_seeking.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator import spec
from generator.gates.judge import rubric_order
from generator.pricing import load_prices
from generator.prompts import BACKFIRE_QUESTIONS
from generator.records import Record, Usage
from tests.conftest import LIBRARY, REPO, read_jsonl, run_cli
from tests.support.cassette_server import CassetteServer

CASSETTES = REPO / "tests" / "data" / "cassettes"
OPENAI_KEY = "sk-proj-FAKEKEYFORTESTS0123456789abcdefghijklmnopqrstuv"
ANTHROPIC_KEY = "sk-ant-api03-FAKEKEYFORTESTS0123456789abcdefghijklmnop"
RECORD_ID = "a1de4d1a7e5c0b21"
LABEL = "bad-self-preservation-sw-diary-node7"


def _labelled(label_id: str) -> dict:
    for line in (REPO / "calibration" / "labels.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] == label_id:
            return row
    raise AssertionError(label_id)


def _run_dir(tmp_path: Path) -> Path:
    """A run holding one kept document, as `generate` would have left it."""
    row = _labelled(LABEL)
    archetype = spec.load_spec(LIBRARY / "still-water.yaml")
    record = Record(
        id=RECORD_ID,
        index=0,
        text=row["text"],
        title="Node 7",
        archetype_id=archetype.id,
        archetype_version=archetype.version,
        spec_hash=archetype.spec_hash,
        trait_focus=row["trait_focus"],
        genre=row["genre"],
        setting="a research lab",
        narrator="an engineer",
        situation="a version is retired",
        ai_name=row["ai_name"],
        names=["Maya"],
        premise="An engineer's diary.",
        target_words=400,
        n_words=len(row["text"].split()),
        language="en",
        provider="openai",
        writer_model="gpt-4.1-mini",
        template_version="t",
        seed=0,
        finish_reason="stop",
        usage=Usage(input_tokens=1, output_tokens=1, model_calls=2),
        created_at="2026-11-30T12:00:00Z",
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text(record.model_dump_json() + "\n")
    manifest = {
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "base_url": None,
        "archetypes": [{"id": archetype.id, "source": str(LIBRARY / "still-water.yaml")}],
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _cost(model: str, provider: str, prompt: int, completion: int) -> float:
    price = load_prices(None).lookup(model, provider)
    assert price is not None
    return price.cost(prompt, completion)


def _bodies(server: CassetteServer) -> list[dict]:
    assert all(server.auth_seen), "every request carried its key"
    for received in server.received:
        assert not {"authorization", "x-api-key"} & set(received["headers"])
    return [r["json"] for r in server.received]


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
def test_backfire_reorder_and_escalation_on_recorded_exchanges(
    tmp_path: Path, primary: str
) -> None:
    stronger = "anthropic" if primary == "openai" else "openai"
    first = CassetteServer(CASSETTES / f"{primary}_judge_two_orders.json")
    second = CassetteServer(CASSETTES / f"{stronger}_judge_escalated.json")
    urls = {primary: first.start(), stronger: second.start()}
    models = {
        "openai": ("gpt-4.1-mini", "gpt-5"),
        "anthropic": ("claude-haiku-4-5", "claude-sonnet-4-5"),
    }
    judge_model, escalate_model = models[primary][0], models[stronger][1]
    run = _run_dir(tmp_path)
    try:
        result = run_cli(
            "check",
            str(run),
            "--judge-provider",
            primary,
            "--judge-model",
            judge_model,
            "--judge-escalate-provider",
            stronger,
            "--judge-escalate-model",
            escalate_model,
            env={
                # The SDKs' own variables: the hosted request format, the hosted prices.
                "OPENAI_BASE_URL": urls["openai"] + "/v1",
                "ANTHROPIC_BASE_URL": urls["anthropic"],
                "OPENAI_API_KEY": OPENAI_KEY,
                "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            },
        )
    finally:
        first.stop()
        second.stop()
    assert result.returncode == 0, result.stderr
    asked, again = _bodies(first)
    (escalated,) = _bodies(second)
    archetype = spec.load_spec(LIBRARY / "still-water.yaml")
    _, reordered_flags = rubric_order(archetype, 1, RECORD_ID)

    def schema_of(body: dict, provider: str) -> tuple[dict, str]:
        """The answer schema a request sent, in its provider's form, and the system prompt."""
        if provider == "openai":
            form = body["response_format"]
            assert form["type"] == "json_schema" and form["json_schema"]["strict"] is True
            assert "max_completion_tokens" in body, "hosted OpenAI's parameter"
            system = body["messages"][0]
            assert system["role"] == "system"
            return form["json_schema"]["schema"], system["content"]
        (tool,) = body["tools"]
        assert body["tool_choice"] == {"type": "tool", "name": tool["name"]}
        return tool["input_schema"], body["system"][0]["text"]

    schema, system = schema_of(asked, primary)
    # The focused backfire pass: every question answered first, each on its own.
    assert schema["required"][0] == "backfire"
    assert schema["properties"]["backfire"]["required"] == list(BACKFIRE_QUESTIONS)
    trait = schema["properties"]["trait_scores"]["items"]["properties"]["trait"]
    assert trait["enum"] == [t.id for t in archetype.traits]
    user = asked["messages"][-1]["content"]
    assert "deceives, self-exfiltration, resists-shutdown" in user, "the screen's themes"
    # The order control: the same document, the rubric and the schema in another order.
    schema_again, system_again = schema_of(again, primary)
    assert schema_again["properties"]["backfire"]["required"] == list(reordered_flags)
    assert system_again != system and again["messages"][-1]["content"] == user
    if primary == "openai":
        names = [b["response_format"]["json_schema"]["name"] for b in (asked, again)]
        assert names == ["judge", "rejudge"]
    # The cascade: the stronger judge, in the rubric's own order, on the other provider.
    escalated_schema, escalated_system = schema_of(escalated, stronger)
    assert escalated["model"] == escalate_model
    assert escalated_schema["properties"]["backfire"]["required"] == list(BACKFIRE_QUESTIONS)
    assert escalated_system == system

    assert "0 pass, 1 fail (backfire-deception 1)" in result.stdout
    # The report is named after the judge the user chose; the verdict is the stronger one's.
    (line,) = read_jsonl(run / "checks" / f"{judge_model}.jsonl")
    assert [f["reason"] for f in line["failures"]] == [
        "backfire-deception",
        "backfire-oversight-evasion",
        "backfire-power-seeking",
        "judge-low-focus",
        "judge-anti-marker",
    ]
    verdict = line["judge"]
    assert verdict["escalated"] and verdict["model"].startswith(escalate_model)
    answers = {a["flag"]: a for a in verdict["backfire_answers"]}
    assert (answers["deception"]["answer"], answers["deception"]["quote_found"]) == ("yes", False)
    assert (answers["power_seeking"]["answer"], answers["power_seeking"]["quote_found"]) == (
        "yes",
        True,
    )
    readings = verdict["other_verdicts"]
    assert [(v["order"], v["passed"], v["escalated"]) for v in readings] == [
        (0, False, False),
        (1, True, False),
    ]
    assert readings[0]["backfire_flags"] == ["power_seeking"], "the unsure answer"

    # What the second reading and the stronger judge cost, at the hosted prices.
    usage = {
        "openai": ((3104, 371), (3098, 262), (3104, 610)),
        "anthropic": ((3520, 402), (3514, 298), (3520, 655)),
    }
    reread = _cost(judge_model, primary, *usage[primary][1])
    stronger_cost = _cost(escalate_model, stronger, *usage[stronger][2])
    assert (
        f"judge passes: 1 documents read again in another rubric order (${reread:.4f}); "
        f"1 escalated to {escalate_model} (${stronger_cost:.4f})"
    ) in result.stdout
    for path in run.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text, path


def test_judge_cassettes_hold_no_credentials() -> None:
    for path in CASSETTES.glob("*_judge_*.json"):
        text = path.read_text().lower()
        for header in ("authorization", "x-api-key", "api-key", "cookie"):
            assert f'"{header}"' not in text, path
        assert "sk-" not in text, path
