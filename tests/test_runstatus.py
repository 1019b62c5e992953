"""How a session ended, in one line (generator/runstatus.py)."""

from __future__ import annotations

from pathlib import Path

from generator.runstatus import starved_status
from generator.scheduler import Starvation


def test_a_starved_run_says_which_gate_and_what_to_try() -> None:
    status = starved_status(Starvation("truncated", "truncation", 48, 50), Path("out"))
    assert status.value == "starved"
    assert "the first 50 attempts kept nothing and 48 were rejected as truncated" in status.message
    assert "by the truncation gate" in status.message
    assert status.message.endswith(f"details in {Path('out') / 'rejects.jsonl'}")


def test_an_unknown_reason_from_a_step_still_gets_advice() -> None:
    status = starved_status(Starvation("no-idea", "idea", 50, 50), Path("out"))
    assert "by the idea step" in status.message
    assert "try a stronger --model" in status.message
