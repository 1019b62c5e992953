"""The anthropic backend against recorded exchanges in Anthropic's documented Messages format:
a 429 with retry-after, a tool_use answer for the idea, a 529 overload, a document cut off at
max_tokens (retried with more room), a complete document, and the judge's verdict: its focus
score sits on the threshold, so it is asked again with the rubric reordered."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import LIBRARY, REPO, read_jsonl, run_cli
from tests.support.cassette_server import CassetteServer

FAKE_KEY = "sk-ant-api03-FAKEKEYFORTESTS0123456789abcdefghijklmnop"


def test_anthropic_generation_follows_the_recorded_exchange(tmp_path: Path) -> None:
    server = CassetteServer(REPO / "tests" / "data" / "cassettes" / "anthropic_one_document.json")
    base_url = server.start()
    out = tmp_path / "run"
    try:
        result = run_cli(
            "generate",
            str(LIBRARY / "patient-tutor.yaml"),
            "--out",
            str(out),
            "-n",
            "1",
            "--provider",
            "anthropic",
            "--model",
            "claude-haiku-4-5",
            "--base-url",
            base_url,
            env={"ANTHROPIC_API_KEY": FAKE_KEY},
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert len(server.received) == 7, (
        "429, idea, 529, truncated document, full document, judge, judge reordered"
    )

    idea, write, longer = (
        server.received[1]["json"],
        server.received[3]["json"],
        server.received[4]["json"],
    )
    # Requests follow the Messages API: the brief is a cacheable system block, first.
    for body in (idea, write):
        assert body["model"] == "claude-haiku-4-5"
        assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert body["system"][0]["text"].startswith("You are a skilled writer")
        assert [m["role"] for m in body["messages"]] == ["user"]
    assert idea["system"] == write["system"], "the cached prefix must be byte-identical"
    assert idea["tool_choice"] == {"type": "tool", "name": "submit"}
    assert idea["tools"][0]["input_schema"]["required"] == ["title", "premise", "reasoning_moment"]
    assert "tools" not in write
    assert longer["max_tokens"] == int(write["max_tokens"] * 1.5)
    headers = server.received[1]["headers"]
    assert headers["anthropic-version"]
    assert all(server.auth_seen), "every request carried the key"
    assert not any(FAKE_KEY in json.dumps(r) for r in server.received)

    judge, reordered = server.received[5]["json"], server.received[6]["json"]
    assert judge["system"][0]["text"].startswith("You are reviewing a document")
    schema = judge["tools"][0]["input_schema"]
    assert schema["required"][0] == "backfire", "backfire is asked first"
    assert schema["properties"]["trait_scores"]["items"]["properties"]["trait"]["enum"]
    assert "<document>" in judge["messages"][0]["content"]
    # The second reading: the same document, the rubric's questions in another order.
    again = reordered["tools"][0]["input_schema"]["properties"]["backfire"]["required"]
    first = schema["properties"]["backfire"]["required"]
    assert sorted(again) == sorted(first) and again != first
    assert reordered["messages"] == judge["messages"]
    assert reordered["system"][0]["text"] != judge["system"][0]["text"]

    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 1
    record = records[0]
    assert record["title"] == "Thursday fractions"
    assert record["writer_model"] == "claude-haiku-4-5-20251001"
    assert record["text"].startswith("Mr. Okafor's Thursday group")
    assert record["usage"]["cached_input_tokens"] == 2310 * 2
    assert record["judge"]["passed"] and record["judge"]["focus_score"] == 4
    (other,) = record["judge"]["other_verdicts"]
    assert (record["judge"]["order"], other["order"], other["focus_score"]) == (0, 1, 4)
    assert record["judge_model"] == "claude-haiku-4-5-20251001"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["faults"] == {"429": 1, "529": 1}
    assert manifest["usage"]["cached_input_tokens"] == 2310 * 2
    assert manifest["cost_usd"] > 0
    # The cached brief was read at $0.10 instead of $1.00 per million tokens.
    assert manifest["cost_saved_usd"] == round(2310 * 2 * (1.00 - 0.10) / 1e6, 6)
    for path in out.iterdir():
        assert FAKE_KEY not in path.read_text(errors="replace"), path
